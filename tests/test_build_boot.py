"""`otns build` and `otns bisect-run` on real kernel trees: Debian's linux-source tarball, and
the same source as a git checkout laid out as `apt-get source linux` leaves it.

The first build of a tree (kernels/otns.config) costs about 5 minutes on 2 idle cores
(docs/environment.md has the figures); the tree is unpacked into the cache
and built there, with ccache, so later runs on the same machine are incremental, and a second
checkout of the same source mostly hits ccache.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from otns.paths import REPO_ROOT

from .conftest import otns_command

pytestmark = pytest.mark.boot

PASSING = "conformance/test_core.py::test_recursive_alone_is_einval"
ENOTDIR_TEST = "conformance/test_paths.py::test_path_kind[regular-file]"
# The check that makes OPEN_TREE_NAMESPACE refuse a non-directory (fs/namespace.c, 7.2).
ENOTDIR_CHECK = "\tif (unlikely(!d_can_lookup(path->dentry)))\n\t\treturn ERR_PTR(-ENOTDIR);\n"


def otns(cache_dir: Path, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run(otns_command(*args, cache=cache_dir), cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def tarball(linux_source: Path) -> Path:
    return linux_source


@pytest.fixture(scope="module")
def built_tree(cache_dir: Path, tarball: Path) -> Path:
    r = otns(cache_dir, "build", str(tarball))
    assert r.returncode == 0, r.stderr
    tree = Path(r.stderr.split("otns run --kernel ")[1].split()[0])
    assert (tree / "arch/x86/boot/bzImage").is_file()
    return tree


def test_the_built_config_holds_every_option_of_the_fragment(built_tree):
    # 7.2's Kconfig takes every line of kernels/otns.config: no notice, nothing forced away.
    from kernels import build
    assert build._unmet(built_tree / ".config", build.fragment()) == []
    # What the fragment leaves out is off, and SMP without ACPI reads the MP table.
    have = build._settings(built_tree / ".config")
    assert all(have.get(k, "n") == "n" for k in ("CONFIG_ACPI", "CONFIG_IO_URING", "CONFIG_BLOCK", "CONFIG_VT"))
    assert have["CONFIG_X86_MPPARSE"] == "y"


def test_incremental_build_after_one_change_is_quick(cache_dir, built_tree):
    touched = built_tree / "fs" / "nsfs.c"
    touched.touch()
    start = time.monotonic()
    r = otns(cache_dir, "build", str(built_tree))
    took = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert took < 600, f"an incremental build took {took:.0f} s"


def test_built_kernel_boots_and_conforms_on_a_test(cache_dir, built_tree, tmp_path):
    r = otns(cache_dir, "run", "--kernel", str(built_tree), "--cpus", "2", "-k", "recursive_alone or unknown_flag_bit",
             "--results", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    assert "CONFORMS" in r.stdout, r.stdout + r.stderr  # the verdict is on stdout
    # No ACPI: the guest's two CPUs come from SeaBIOS's MP table, one socket each (vm/boot.py).
    assert json.loads((tmp_path / "r" / "guest.json").read_text())["cpus"] == 2


# Builds whose banner never changes (as reproducible builds set it): two builds of the same source
# are then the same bytes, so piggy.S, which names only the compressed kernel's sizes, is too.
REPRODUCIBLE = {"KBUILD_BUILD_TIMESTAMP": "Mon Dec  7 00:00:00 UTC 2026", "KBUILD_BUILD_VERSION": "1",
                "KBUILD_BUILD_USER": "otns", "KBUILD_BUILD_HOST": "otns"}
COMPRESSED = "arch/x86/boot/compressed"


def payload_of(piggy_o: Path) -> bytes:
    """The compressed kernel an assembled piggy.o carries (what the bzImage will boot)."""
    r = subprocess.run(["objcopy", "-O", "binary", "-j", ".rodata..compressed", str(piggy_o), "/dev/stdout"],
                       capture_output=True, check=True)
    return r.stdout


def assemble_piggy_with_plain_ccache(tree: Path, cache_dir: Path) -> bytes:
    """Run kbuild's own command for piggy.o as an older otns did (CC=ccache gcc, same ccache,
    same settings); return the payload it gives. The tree's piggy.o is left as it was."""
    cmd = (tree / COMPRESSED / ".piggy.o.cmd").read_text().splitlines()[0].split(" := ", 1)[1]
    assert cmd.startswith("otns-cc ")
    obj, kept = tree / COMPRESSED / "piggy.o", tree / COMPRESSED / "piggy.o.kept"
    obj.replace(kept)
    try:
        env = {**os.environ, "CCACHE_DIR": str(cache_dir / "ccache"), "CCACHE_BASEDIR": str(tree), "CCACHE_DEPEND": "1"}
        subprocess.run(["sh", "-c", "ccache gcc " + cmd.removeprefix("otns-cc ")], cwd=tree, env=env, check=True)
        return payload_of(obj)
    finally:
        kept.replace(obj)
        (tree / COMPRESSED / ".piggy.o.d").unlink(missing_ok=True)


def test_one_line_edits_always_boot_the_edited_code(cache_dir, built_tree, tmp_path):
    """The stale-piggy.o trap, set on purpose: ccache is taught that the faulty kernel's piggy.S
    gives the pristine kernel; the next faulty build must still boot the fault."""
    env = {**os.environ, **REPRODUCIBLE}
    source = built_tree / "fs" / "namespace.c"
    pristine = source.read_text()
    assert ENOTDIR_CHECK in pristine
    piggy = built_tree / COMPRESSED / "piggy.S"

    def build_and_run(name: str) -> int:
        b = subprocess.run(otns_command("build", str(built_tree), cache=cache_dir), cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=1800)
        assert b.returncode == 0, b.stderr
        r = otns(cache_dir, "run", "--kernel", str(built_tree), "-k", ENOTDIR_TEST.split("::")[1],
                 "--results", str(tmp_path / name))
        assert r.returncode in (0, 1), r.stderr
        return r.returncode

    try:
        source.write_text(pristine.replace(ENOTDIR_CHECK, ""))
        assert build_and_run("fault") == 1  # the faulty kernel lets the test fail
        faulty_piggy = piggy.read_text()
        source.write_text(pristine)
        assert build_and_run("pristine") == 0
        pristine_payload = (built_tree / COMPRESSED / "vmlinux.bin.gz").read_bytes()
        # Arm the trap: the faulty piggy.S's text, assembled beside the pristine payload.
        piggy_text, piggy_times = piggy.read_text(), piggy.stat()
        piggy.write_text(faulty_piggy)
        assert assemble_piggy_with_plain_ccache(built_tree, cache_dir) == pristine_payload
        piggy.write_text(piggy_text)
        os.utime(piggy, ns=(piggy_times.st_atime_ns, piggy_times.st_mtime_ns))

        source.write_text(pristine.replace(ENOTDIR_CHECK, ""))
        assert build_and_run("fault-again") == 1  # the fault again, and it is what boots
        assert piggy.read_text() == faulty_piggy, "the rebuild's piggy.S differs: the trap was not set"
        faulty_payload = (built_tree / COMPRESSED / "vmlinux.bin.gz").read_bytes()
        assert faulty_payload != pristine_payload
        assert payload_of(built_tree / COMPRESSED / "piggy.o") == faulty_payload
        # ...where CC=ccache gcc would have booted the pristine kernel: the trap was real.
        assert assemble_piggy_with_plain_ccache(built_tree, cache_dir) == pristine_payload
    finally:
        source.write_text(pristine)
        assert otns(cache_dir, "build", str(built_tree)).returncode == 0


@pytest.mark.parametrize("args, code", [
    ([PASSING], 0),  # passes: good
    ([PASSING, "--bad-outcome", "pass"], 1),  # passing is what we call bad here
    (["conformance/test_core.py::test_no_such_test"], 125),  # the test could not run: skip
])
def test_bisect_run_exit_codes(cache_dir, built_tree, args, code):
    r = otns(cache_dir, "bisect-run", *args, "--tree", str(built_tree), "--no-build")
    assert r.returncode == code, r.stderr


def test_bisect_run_without_a_tree_is_skip(cache_dir, built_tree, tmp_path):
    r = otns(cache_dir, "bisect-run", PASSING, "--tree", str(tmp_path))  # no tree there at all
    assert r.returncode == 125, r.stderr


def test_bisect_run_build_failure_is_skip(cache_dir, tmp_path):
    # A tree whose build breaks (as a commit in the middle of a bisect may): skip, not bad.
    tree = tmp_path / "broken"
    for d in ("arch/x86", "kernel"):
        (tree / d).mkdir(parents=True)
    (tree / "Makefile").write_text("all:\n\t@echo 'this commit does not build' >&2; exit 2\n%:\n\t@exit 2\n")
    r = otns(cache_dir, "bisect-run", PASSING, "--tree", str(tree))
    assert r.returncode == 125, r.stderr
    assert "kernel build failed" in r.stderr


def git(tree: Path, *args: str) -> str:
    r = subprocess.run(["git", "-c", "user.name=otns", "-c", "user.email=otns@localhost", *args], cwd=tree,
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, f"git {' '.join(args)}: {r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def source_folder(tmp_path_factory, tarball: Path, built_tree: Path) -> Path:
    """The tarball's source as `apt-get source linux` leaves it: the tree in linux-X.Y.Z/ inside a
    folder (this machine's mirror serves no source packages, so it is laid out from the tarball),
    and made a git checkout with the source as its first commit. built_tree first: its build
    fills ccache, which this second copy of the same source then hits."""
    folder = tmp_path_factory.mktemp("apt-source")
    tree = folder / "linux-7.2.13"
    tree.mkdir()
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(tree), "--strip-components=1"], check=True)
    # Debian's .gitignore ignores every top-level path (its packaging repository holds only
    # debian/); drop that block so the checkout is like upstream's: source tracked, builds ignored.
    ignore = tree / ".gitignore"
    ignore.write_text(ignore.read_text().split("#\n# Debian packaging")[0])
    git(tree, "init", "-q")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "A: Debian's linux-source-7.2")
    return folder


def test_build_of_an_apt_get_source_folder(cache_dir, source_folder):
    start = time.monotonic()
    r = otns(cache_dir, "build", str(source_folder))
    took = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    tree = source_folder / "linux-7.2.13"
    assert (tree / "arch/x86/boot/bzImage").is_file()
    assert f"otns run --kernel {tree}" in r.stderr
    print(f"build of a second checkout of the same source: {took:.0f} s")


def test_git_bisect_run_finds_the_commit_that_dropped_enotdir(cache_dir, source_folder):
    """A real `git bisect run otns bisect-run`: A good, B drops the ENOTDIR check, C harmless."""
    tree = source_folder / "linux-7.2.13"
    namespace_c = tree / "fs" / "namespace.c"
    text = namespace_c.read_text()
    assert ENOTDIR_CHECK in text
    namespace_c.write_text(text.replace(ENOTDIR_CHECK, ""))
    git(tree, "commit", "-q", "-am", "B: drop the ENOTDIR check")
    bad = git(tree, "rev-parse", "HEAD").strip()
    with open(tree / "README", "a") as f:
        f.write("\nA harmless change.\n")
    git(tree, "commit", "-q", "-am", "C: harmless")
    git(tree, "bisect", "start", "HEAD", "HEAD~2")
    try:
        r = subprocess.run(["git", "bisect", "run", *otns_command("bisect-run", ENOTDIR_TEST, "--tree", str(tree),
                                                                   cache=cache_dir)],
                           cwd=tree, capture_output=True, text=True, timeout=3600,
                           env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"{bad} is the first bad commit" in r.stdout, r.stdout
    finally:
        git(tree, "bisect", "reset")


def test_bisect_run_on_a_tree_that_builds_but_does_not_boot_is_skip(cache_dir, source_folder):
    tree = source_folder / "linux-7.2.13"
    main_c = tree / "init" / "main.c"
    text = main_c.read_text()
    hook = "static int __ref kernel_init(void *unused)\n{\n"
    assert hook in text
    main_c.write_text(text.replace(hook, hook + '\tpanic("otns test: this commit does not boot");\n'))
    try:
        r = otns(cache_dir, "bisect-run", PASSING, "--tree", str(tree))
        assert r.returncode == 125, r.stderr
        assert "CRASHED" in r.stderr and "-> skip" in r.stderr, r.stderr
    finally:
        git(tree, "checkout", "--", "init/main.c")
