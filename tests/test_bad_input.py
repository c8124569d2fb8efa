"""Bad input: one clear line on stderr, a non-zero exit, no traceback, nothing half-written."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import copy_truncated


def assert_one_line_error(r, code: int, *needles: str) -> None:
    assert r.code == code, (r.code, r.stderr)
    assert "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("otns: error:")]
    assert len(errors) == 1, r.stderr
    for n in needles:
        assert n in errors[0], errors[0]


def test_missing_kernel_file(otns):
    # A real process, as the user runs it (most usage tests call otns in-process).
    assert_one_line_error(otns("run", "--kernel", "/no/such/vmlinuz", process=True), 2, "not found", "/no/such/vmlinuz")


def test_not_a_kernel(otns):
    assert_one_line_error(otns("run", "--kernel", "/etc/hostname"), 2, "not an x86 Linux kernel image")


def test_truncated_kernel(otns, cached_image, tmp_path):
    bad = copy_truncated(cached_image, tmp_path / "vmlinuz-truncated")
    assert_one_line_error(otns("run", "--kernel", str(bad)), 2, "truncated")


def test_folder_that_is_not_a_tree(otns, tmp_path):
    assert_one_line_error(otns("run", "--kernel", str(tmp_path)), 2, "not a built kernel tree")


def test_unknown_spec(otns):
    assert_one_line_error(otns("run", "--kernel", "no-such-release-1.2.3"), 2, "unknown kernel spec")


def test_unknown_debian_version_names_neighbours(otns):
    r = otns("run", "--kernel", "debian:7.0.5")
    assert_one_line_error(r, 2, "no Debian kernel matches version '7.0.5'", "near:")
    near = r.stderr.split("near:")[1]
    assert "7.0.4" in near  # the versions on either side, read from the live index


def test_kernel_without_virtiofs_or_9p(otns, cached_image, tmp_path):
    # A real image whose config (found beside it, as in a Debian package) says it has
    # neither transport: refused before booting.
    img = tmp_path / "boot" / cached_image.name
    img.parent.mkdir()
    img.write_bytes(cached_image.read_bytes())
    release = _release_of(cached_image)
    config = next(cached_image.parent.glob("config*")).read_text()
    for opt in ("CONFIG_VIRTIO_FS", "CONFIG_9P_FS", "CONFIG_NET_9P_VIRTIO"):
        config = config.replace(f"{opt}=y", f"# {opt} is not set").replace(f"{opt}=m", f"# {opt} is not set")
    (tmp_path / "boot" / f"config-{release}").write_text(config)
    img = img.rename(tmp_path / "boot" / f"vmlinuz-{release}")
    r = otns("run", "--kernel", str(img))
    assert_one_line_error(r, 2, "neither virtiofs", "9p")
    assert not (r.results / "console.log").exists(), "it booted anyway"


def _release_of(image: Path) -> str:
    from kernels.image import inspect_image
    return inspect_image(image).release


def test_archive_unreachable(otns, tmp_path):
    # A fresh cache and a mirror nobody answers on: no index to fall back on.
    r = otns("kernels", "list", cache=tmp_path / "cache", results=False,
             env={"OTNS_DEBIAN_MIRROR": "http://127.0.0.1:9/debian", "OTNS_DEBIAN_SECURITY_MIRROR": ""})
    assert_one_line_error(r, 3, "cannot reach Debian's archive")
    assert not (tmp_path / "cache" / "apt" / "updated").exists()


def test_disk_full(otns, cache_dir, tmp_path, host_mount_table):
    # A cache on a tmpfs just big enough for a copy of the real index: no kernel fits.
    small = Path(tempfile.mkdtemp(prefix="otns-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "otns-test-full", str(small)], check=True)
    try:
        shutil.copytree(cache_dir / "apt", small / "apt", ignore=shutil.ignore_patterns("cache"))
        subprocess.run(["mount", "-o", "remount,size=" + str(_used_kib(small) + 4096) + "k", str(small)], check=True)
        r = otns("run", "--kernel", "debian:7.1", cache=small)
        assert_one_line_error(r, 3, "not enough free disk")
        assert not any(p.name.startswith(".tmp-") for p in (small / "kernels").glob("*")), "half-written kernel left"
        assert not [p for p in (small / "kernels").glob("*") if (p / "meta.json").exists()]
    finally:
        subprocess.run(["umount", str(small)], check=False)
        os.rmdir(small)


def _used_kib(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize // 1024


@pytest.mark.parametrize("args, needle", [
    (["run", "--cpus", "0", "--kernel", "host"], "--cpus"),
    (["run", "--timeout", "-1", "--kernel", "host"], "--timeout"),
    (["run", "--kernel", "debian:"], "needs a version"),
])
def test_bad_options(otns, args, needle):
    assert_one_line_error(otns(*args), 2, needle)


def test_dry_run_boots_nothing(otns, cached_image):
    r = otns("run", "--dry-run")
    assert r.code == 0, r.stderr
    vng, qemu = r.stdout.splitlines()[:2]
    assert vng.startswith("vng -r ") and "--exec" in vng and "--rwdir" in vng
    assert "qemu-system-x86_64" in qemu and "-kernel" in qemu
    assert not r.results.exists(), "a dry run made the results folder"
