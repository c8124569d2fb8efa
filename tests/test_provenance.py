"""The image a build leaves must carry the kernel it linked, and the kernel that boots must be
that image: the compiler wrapper (kernels/bin/otns-cc), the image proof (kernels/provenance.py)
and the check of the booted banner (otns.run.execute.not_the_image). No boot: real ccache and gcc on
small files, real Debian images from the tests' cache, and bzImages laid out by hand."""
from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from kernels import build, provenance
from kernels.local import LocalKernel
from otns.run.execute import check_tree_image, not_the_image

needs_compilers = pytest.mark.skipif(not (shutil.which("ccache") and shutil.which("gcc")),
                                     reason="ccache and gcc are installed by scripts/setup --build or --dev")


# --- the compiler wrapper -------------------------------------------------------------------

SOURCES = {
    # piggy.S's shape: the binary comes in by name, the text names only sizes.
    "piggy.S": '.section .rodata\n.globl payload\npayload:\n.incbin "blob.bin"\n',
    # kernel/configs.c's shape: inline assembly in a C file.
    "configs.c": 'asm(".section .rodata\\n.globl cfg\\ncfg:\\n.incbin \\"blob.bin\\"\\n");\n',
}


def _compile(folder: Path, cc: list[str], source: str, env: dict[str, str]) -> bytes:
    obj = folder / "out.o"
    obj.unlink(missing_ok=True)
    # -Wp,-MMD as kbuild passes it: that is what puts ccache's depend mode to work.
    subprocess.run([*cc, "-Wp,-MMD,.out.o.d", "-c", "-o", str(obj), source], cwd=folder, env=env, check=True,
                   capture_output=True)
    r = subprocess.run(["objcopy", "-O", "binary", "-j", ".rodata", str(obj), "/dev/stdout"],
                       capture_output=True, check=True)
    return r.stdout


@pytest.fixture
def ccache_env(tmp_path: Path, cache_dir: Path) -> dict[str, str]:
    # As kernels.build sets it: depend mode, a base folder; a private ccache folder.
    return {**os.environ, "CCACHE_DIR": str(tmp_path / "ccache"), "CCACHE_BASEDIR": str(tmp_path),
            "CCACHE_DEPEND": "1", "PATH": f"{build.compiler_dir(cache_dir)}{os.pathsep}{os.environ['PATH']}"}


@needs_compilers
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_plain_ccache_hands_back_an_old_incbin_and_otns_cc_does_not(tmp_path, ccache_env, source):
    (tmp_path / source).write_text(SOURCES[source])
    blob = tmp_path / "blob.bin"
    seen = {}
    for cc in (["ccache", "gcc"], ["otns-cc"]):
        shutil.rmtree(tmp_path / "ccache", ignore_errors=True)
        blob.write_bytes(b"A" * 64)
        first = _compile(tmp_path, cc, source, ccache_env)
        blob.write_bytes(b"B" * 64)  # same size, same source text: only the binary changed
        seen[cc[0]] = (first, _compile(tmp_path, cc, source, ccache_env))
    # The trap is real on this machine: ccache cannot see the included file...
    assert seen["ccache"][0] == seen["ccache"][1] == b"A" * 64
    # ...and the wrapper assembles it anew.
    assert seen["otns-cc"] == (b"A" * 64, b"B" * 64)


@needs_compilers
def test_otns_cc_keeps_ccache_for_plain_c(tmp_path, ccache_env):
    (tmp_path / "plain.c").write_text("int answer(void) { return 42; }\n")
    for _ in range(2):
        _compile(tmp_path, ["otns-cc"], "plain.c", ccache_env)
    stats = subprocess.run(["ccache", "--print-stats"], env=ccache_env, capture_output=True, text=True, check=True)
    counters = dict(line.split("\t", 1) for line in stats.stdout.splitlines() if "\t" in line)
    assert int(counters["direct_cache_hit"]) + int(counters.get("preprocessed_cache_hit", 0)) == 1


def test_the_wrapper_is_installed_executable_and_follows_its_source(tmp_path):
    folder = build.compiler_dir(tmp_path)
    wrapper = folder / "otns-cc"
    assert os.access(wrapper, os.X_OK) and wrapper.read_bytes() == build.COMPILER.read_bytes()
    wrapper.write_text("#!/bin/sh\nexec false\n")  # an older otns's, or tampered with
    assert build.compiler_dir(tmp_path).joinpath("otns-cc").read_bytes() == build.COMPILER.read_bytes()


# --- the image proof ------------------------------------------------------------------------

RELEASE = "7.2.13"
BY = "(root@builder)"
COMPILER = "(gcc (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40)"


def banner(build_no: int, when: str) -> bytes:
    return f"Linux version {RELEASE} {BY} {COMPILER} #{build_no} SMP PREEMPT_DYNAMIC {when}".encode()


def kernel_bytes(build_no: int, when: str, code: bytes = b"pristine") -> bytes:
    # As since 6.1: init/version.o's banner without a build number, then the linked one.
    unnumbered = f"Linux version {RELEASE} {BY} {COMPILER} # SMP PREEMPT_DYNAMIC Mon Dec  7 09:00:00 UTC 2026".encode()
    return b"\x7fELF" + b"\0" * 100 + unnumbered + b"\n\0" + code * 40 + banner(build_no, when) + b"\n\0" * 2


def bzimage(payload: bytes, header: str) -> bytes:
    """An x86 bzImage as the boot protocol lays it out: boot sector, setup with its header
    (version string pointer, payload offset and length), then the protected-mode part."""
    setup_sects = 4
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1F1] = setup_sects
    setup[0x1FE:0x200] = b"\x55\xaa"
    setup[0x202:0x206] = b"HdrS"
    version_at = 0x400
    struct.pack_into("<H", setup, 0x20E, version_at - 0x200)
    setup[version_at:version_at + len(header) + 1] = header.encode() + b"\0"
    payload_offset = 0x100
    struct.pack_into("<II", setup, 0x248, payload_offset, len(payload))
    body = b"\x90" * payload_offset + payload + b"\0" * 64
    body += b"\0" * (-len(body) % 16)  # syssize counts 16-byte paragraphs
    struct.pack_into("<I", setup, 0x1F4, len(body) // 16)
    return bytes(setup) + body


def built_tree(root: Path, image_build: int, vmlinux_build: int, header_build: int | None = None,
               image_code: bytes = b"pristine", vmlinux_code: bytes = b"pristine") -> Path:
    """A tree as a build leaves it: vmlinux, what the build compresses of it (the stripped kernel
    and its relocations), and the bzImage, whose payload may hold another build's kernel."""
    when = {93: "Mon Dec  7 12:56:02 UTC 2026", 101: "Mon Dec  7 13:01:19 UTC 2026"}
    tree = root / "linux"
    (tree / "arch/x86/boot/compressed").mkdir(parents=True)
    linked = kernel_bytes(vmlinux_build, when[vmlinux_build], vmlinux_code)
    (tree / "vmlinux").write_bytes(linked + b"\0symbols and sections objcopy strips")
    relocs = b"\x10\x20\x30\x40" * 8
    (tree / "arch/x86/boot/compressed/vmlinux.bin").write_bytes(linked)
    (tree / "arch/x86/boot/compressed/vmlinux.relocs").write_bytes(relocs)
    hb = header_build or image_build
    header = f"{RELEASE} {BY} #{hb} SMP PREEMPT_DYNAMIC {when[hb]}"
    carried = kernel_bytes(image_build, when[image_build], image_code) + relocs
    payload = gzip.compress(carried, mtime=0) + b"\x01\x02\x03\x04"
    (tree / "arch/x86/boot/bzImage").write_bytes(bzimage(payload, header))
    return tree


def test_an_image_that_carries_its_vmlinux_is_proven(tmp_path):
    proof = provenance.prove(built_tree(tmp_path, 101, 101))
    assert proof.compression == "gzip" and "#101 SMP" in proof.banner


def test_an_image_carrying_an_earlier_build_is_refused(tmp_path):
    # The header (setup, rebuilt) says #101, the payload (a stale piggy.o) is #93.
    with pytest.raises(provenance.StaleImage, match="does not carry the kernel the tree linked.*differs from"):
        provenance.prove(built_tree(tmp_path, 93, 101, header_build=101))


def test_without_the_stripped_kernel_the_banners_still_tell_builds_apart(tmp_path):
    tree = built_tree(tmp_path, 93, 101, header_build=101)
    for part in ("vmlinux.bin", "vmlinux.relocs"):
        (tree / "arch/x86/boot/compressed" / part).unlink()
    with pytest.raises(provenance.StaleImage, match=r"boots 7\.2\.13 '#93 .*12:56:02.*vmlinux is 7\.2\.13 '#101"):
        provenance.prove(tree)


def test_a_reproducible_build_with_the_same_banner_is_still_told_apart(tmp_path):
    # KBUILD_BUILD_TIMESTAMP and KBUILD_BUILD_VERSION fixed: two builds print the same banner.
    with pytest.raises(provenance.StaleImage, match="differs from"):
        provenance.prove(built_tree(tmp_path, 101, 101, image_code=b"pristine", vmlinux_code=b"faulty!!"))


def test_a_stripped_kernel_older_than_vmlinux_is_refused(tmp_path):
    tree = built_tree(tmp_path, 101, 101)
    os.utime(tree / "arch/x86/boot/compressed/vmlinux.bin", (1, 1))
    with pytest.raises(provenance.StaleImage, match="older than"):
        provenance.prove(tree)


def test_a_header_from_another_build_than_its_payload_is_refused(tmp_path):
    with pytest.raises(provenance.StaleImage, match="header names another build"):
        provenance.prove(built_tree(tmp_path, 101, 101, header_build=93))


def test_a_payload_that_does_not_unpack_is_refused(tmp_path):
    tree = built_tree(tmp_path, 101, 101)
    image = tree / "arch/x86/boot/bzImage"
    data = bytearray(image.read_bytes())
    data[-200:-100] = b"\xff" * 100  # inside the gzip stream
    image.write_bytes(bytes(data))
    with pytest.raises(provenance.StaleImage):
        provenance.prove(tree)


def test_a_real_debian_image_unpacks_to_the_build_its_header_names(cached_image):
    data = cached_image.read_bytes()
    kernel, kind = provenance.decompress(provenance.bzimage_payload(data))
    banners = provenance.banners_of(kernel)
    header = provenance.header_version(data)
    assert kind in ("zstd", "xz", "gzip") and len(kernel) > 10 << 20
    assert provenance.same_build(header, banners[-1].decode())
    assert not provenance.same_build(header.replace("#1 ", "#2 "), banners[-1].decode())


def test_run_refuses_a_tree_whose_image_is_stale_and_warns_when_sources_are_newer(tmp_path):
    notices: list[str] = []
    check_tree_image(built_tree(tmp_path / "good", 101, 101), notices.append)
    assert notices == []
    from base.errors import BadInput
    with pytest.raises(BadInput, match="does not carry the kernel the tree linked.*otns build"):
        check_tree_image(built_tree(tmp_path / "stale", 93, 101, header_build=101), notices.append)
    tree = built_tree(tmp_path / "edited", 101, 101)
    source = tree / "fs" / "namespace.c"
    source.parent.mkdir()
    source.write_text("/* edited after the build */\n")
    later = (tree / "arch/x86/boot/bzImage").stat().st_mtime + 5
    os.utime(source, (later, later))
    check_tree_image(tree, notices.append)
    assert len(notices) == 1 and "fs/namespace.c changed after" in notices[0]


CONSOLE = ("virtme: waiting for virtiofsd to start\n"
           "[    0.000000] Linux version 7.2.13 (root@builder) (gcc (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld "
           "(GNU Binutils for Debian) 2.40) #93 SMP PREEMPT_DYNAMIC Mon Dec  7 12:56:02 UTC 2026\n"
           "[    0.000000] Command line: earlyprintk=serial,ttyS0,115200\n")


def test_a_boot_of_another_build_than_the_image_is_named(tmp_path):
    tree = built_tree(tmp_path, 101, 101)
    kernel = LocalKernel(image=tree / "arch/x86/boot/bzImage", release=RELEASE, source="test")
    why = not_the_image(kernel, CONSOLE)
    assert "is not" in why and "#93" in why and "#101" in why
    assert not_the_image(kernel, CONSOLE.replace("#93", "#101").replace("12:56:02", "13:01:19")) == ""
    assert not_the_image(kernel, "no banner at all (a quiet console)\n") == ""
