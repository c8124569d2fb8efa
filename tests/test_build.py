"""`otns build` and `otns bisect-run` on a real kernel tree: Debian's linux-source tarball.

The first build of a tree costs ~25 minutes on 2 cores; the tree is unpacked into the cache
and built there, with ccache, so later runs on the same machine are incremental.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernels.apt import PrivateApt
from otns.paths import REPO_ROOT

pytestmark = pytest.mark.boot

SOURCE_PACKAGE = "linux-source-7.2"
PASSING = "conformance/test_core.py::test_recursive_alone_is_einval"


def otns(cache_dir: Path, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otns.cli", "--cache-dir", str(cache_dir), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tarball(cache_dir: Path) -> Path:
    """Debian's source tarball, fetched through the project's private apt (kept in the cache)."""
    dest = cache_dir / "sources"
    found = sorted(dest.glob("linux-source-*.tar.xz"))
    if found:
        return found[-1]
    dest.mkdir(parents=True, exist_ok=True)
    apt = PrivateApt(cache_dir / "apt")
    apt.update()
    r = subprocess.run(["apt-get", *apt.options(), "-q", "download", SOURCE_PACKAGE], cwd=dest,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    deb = next(dest.glob(f"{SOURCE_PACKAGE}_*.deb"))
    subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -x -C {dest} --strip-components=3 "
                   f"./usr/src/{SOURCE_PACKAGE}.tar.xz", shell=True, check=True)
    deb.unlink()
    return next(dest.glob("linux-source-*.tar.xz"))


@pytest.fixture(scope="module")
def built_tree(cache_dir: Path, tarball: Path) -> Path:
    r = otns(cache_dir, "build", str(tarball))
    assert r.returncode == 0, r.stderr
    tree = Path(r.stderr.split("otns run --kernel ")[1].split()[0])
    assert (tree / "arch/x86/boot/bzImage").is_file()
    return tree


def test_incremental_build_after_one_change_is_quick(cache_dir, built_tree):
    touched = built_tree / "fs" / "nsfs.c"
    touched.touch()
    start = time.monotonic()
    r = otns(cache_dir, "build", str(built_tree))
    took = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert took < 600, f"an incremental build took {took:.0f} s"


def test_built_kernel_boots_and_conforms_on_a_test(cache_dir, built_tree, tmp_path):
    r = otns(cache_dir, "run", "--kernel", str(built_tree), "-k", "recursive_alone or unknown_flag_bit",
             "--results", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    assert "CONFORMS" in r.stderr


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
