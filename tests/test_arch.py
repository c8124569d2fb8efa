"""kernels/arch.py is the one place that knows the architecture: every entry is complete, the host
picks its entry, and the code paths that boot, fetch and name kernels read it (a made-up second
entry changes what they do, with no other edit)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from kernels import arch, debian
from kernels.apt import PrivateApt
from kernels.arch import ARCHES, Arch, Flavour, UnsupportedArch, host
from kernels.local import LocalKernel
from otns.paths import REPO_ROOT
from vm import virtiofsd
from vm.boot import BootRequest, vng_command

# A second architecture as it would be written: only used here, to show the code reads the entry.
ARM64 = Arch(machine="aarch64", debian="arm64", kernel="arm64", image="arch/arm64/boot/Image",
             image_format="Image", flavours=(Flavour("cloud", "cloud-arm64", False), Flavour("arm64", "arm64", True)),
             qemu="qemu-system-aarch64", tcg_qemu_opts="-accel tcg,thread=multi", multiarch="aarch64-linux-gnu",
             loader="ld-linux-aarch64.so.1", kcidb="arm64")


@pytest.mark.parametrize("entry", ARCHES, ids=lambda a: a.debian)
def test_every_entry_is_complete(entry: Arch):
    for f in dataclasses.fields(Arch):
        assert getattr(entry, f.name), f"{entry.debian}: {f.name} is empty"
    assert entry.image.startswith(f"arch/{entry.kernel}/boot/") and entry.image.endswith(entry.image_format)
    assert entry.qemu.startswith("qemu-system-") and entry.multiarch.startswith(entry.machine)
    names = [f.name for f in entry.flavours]
    assert len(set(names)) == len(names) and len({f.suffix for f in entry.flavours}) == len(names)
    assert all(f.suffix.endswith(entry.debian) for f in entry.flavours)
    from kernels.image import _HEADER_READERS
    assert entry.image_format in _HEADER_READERS, f"no header reader for {entry.image_format}"
    assert host(entry.machine) is entry


def test_this_host_is_amd64():
    assert host() is arch.AMD64 and debian.FLAVOURS == ("cloud", "amd64")


def test_an_unsupported_host_is_one_line():
    with pytest.raises(UnsupportedArch) as e:
        host("riscv64")
    assert str(e.value) == ("otns runs on x86_64 hosts only; this one is riscv64 "
                            "(kernels/arch.py has no entry for it)")


def test_an_unsupported_host_stops_the_cli_with_one_line(tmp_path):
    """The whole command line on a host of another architecture: one line, exit 3, no traceback."""
    code = ("import platform, sys; platform.machine = lambda: 'riscv64'; from otns.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, "--cache-dir", str(tmp_path / "cache"), "run", "--dry-run",
                        "--results", str(tmp_path / "r"), "--kernel", "debian:7.3.4"],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["otns: error: otns runs on x86_64 hosts only; this one is riscv64 "
                                             "(kernels/arch.py has no entry for it)"], r.stderr


def _request(tmp_path: Path, accel: str) -> BootRequest:
    return BootRequest(kernel=LocalKernel(image=tmp_path / "vmlinuz", release="x", source="test"),
                       command="true", rwdir=tmp_path, console_log=tmp_path / "console.log", accel=accel)


def test_the_vng_command_for_amd64_is_todays(tmp_path):
    assert vng_command(_request(tmp_path, "tcg")) == [
        "vng", "-r", str(tmp_path / "vmlinuz"), "--verbose", "--cpus", "2", "--memory", "1G",
        "--rwdir", f"/run/otns-results={tmp_path / '.otns-guest' / 'rw'}", "--qemu-opts=-smp sockets=2",
        "--disable-kvm", "--qemu-opts=-accel tcg,thread=single",
        "--append", "loglevel=5 oops=panic", "--exec", "true"]
    assert "--qemu-opts=-accel tcg,thread=single" not in vng_command(_request(tmp_path, "kvm"))


def test_the_code_reads_the_entry(tmp_path, monkeypatch):
    """With a second entry as the host's, the same code boots, fetches and names arm64 kernels."""
    monkeypatch.setattr(arch, "ARCHES", (arch.AMD64, ARM64))
    monkeypatch.setattr(arch.platform, "machine", lambda: "aarch64")
    assert "--qemu-opts=-accel tcg,thread=multi" in vng_command(_request(tmp_path, "tcg"))
    assert 'exec "$R/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1"' in virtiofsd.wrapper_script(Path("/r"))
    opts = PrivateApt(tmp_path).options()
    assert "APT::Architecture=arm64" in opts and "APT::Architectures=arm64" in opts

    def stanza(name: str) -> str:
        return f"Package: {name}\nVersion: 7.2.13-1\nSize: 9000000\nInstalled-Size: 90000\nFilename: pool/{name}.deb\n"
    index = "\n".join(stanza(n) for n in (
        "linux-binary-7.2.13+deb14-cloud-arm64", "linux-base-7.2.13+deb14-cloud-arm64",
        "linux-binary-7.2.13+deb14-arm64", "linux-modules-7.2.13+deb14-arm64", "linux-base-7.2.13+deb14-arm64",
        "linux-binary-7.2.13+deb14-rt-arm64", "linux-binary-7.2.13+deb14-cloud-amd64"))
    kernels = debian.parse_index({"sid": index})
    assert sorted((k.flavour, k.release) for k in kernels) == [
        ("arm64", "7.2.13+deb14-arm64"), ("cloud", "7.2.13+deb14-cloud-arm64")]
    generic = next(k for k in kernels if k.flavour == "arm64")
    assert [p.name for p in generic.packages()] == [
        "linux-binary-7.2.13+deb14-arm64", "linux-base-7.2.13+deb14-arm64", "linux-modules-7.2.13+deb14-arm64"]
    from kernels import build
    tree = tmp_path / "tree"
    for d in ("arch/arm64", "kernel"):
        (tree / d).mkdir(parents=True)
    (tree / "Makefile").touch()
    assert build.find_tree(tree, tmp_path) == tree
    (tree / "arch/arm64/boot").mkdir()
    (tree / "arch/arm64/boot/Image").touch()
    from kernels.spec import parse_spec
    assert parse_spec(str(tree)).kind == "tree"
    assert parse_spec("debian:7.2", "arm64").flavour == "arm64"


def test_flavour_help_names_the_entrys_flavours():
    from otns.commands.common import FLAVOUR_HELP, flavour_help
    assert FLAVOUR_HELP == flavour_help(arch.AMD64) == (
        "Debian kernel flavour: cloud (virtio built in) or amd64 (generic, drivers as modules) (default: cloud)")
    assert flavour_help(ARM64) == (
        "Debian kernel flavour: cloud (virtio built in) or arm64 (generic, drivers as modules) (default: cloud)")
