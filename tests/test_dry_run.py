"""--dry-run changes nothing but the cache's index: no download, no results folder, no tools."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CACHED = "debian:7.2.13"


def _snapshot(cache: Path) -> dict[str, tuple[int, int]]:
    """Every path of the cache but the index (apt/), with its size and modification time."""
    out = {}
    for root, dirs, files in os.walk(cache):
        rel = Path(root).relative_to(cache)
        if rel.parts[:1] == ("apt",):
            continue
        for name in dirs + files:
            st = os.lstat(Path(root) / name)
            out[str(rel / name)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def private_cache(cache_dir: Path, cached_image: Path, tmp_path: Path) -> Path:
    """A cache holding the index and one kernel of the tests' cache (hard links: nothing is copied)."""
    from kernels import catalog, fetch
    from kernels.debian import resolve
    apt, kernels = catalog.load(cache_dir, notice=lambda m: None)
    kernel = resolve(kernels, CACHED.split(":")[1], "cloud")
    fetch.fetch(cache_dir, apt, kernel, show_progress=False)
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir / "apt", cache / "apt", ignore=shutil.ignore_patterns("cache", "lock"))
    (cache / "kernels").mkdir()
    subprocess.run(["cp", "-al", str(fetch.cached_folder(cache_dir, kernel)), str(cache / "kernels")], check=True)
    if (cache_dir / "tools").is_dir():
        subprocess.run(["cp", "-al", str(cache_dir / "tools"), str(cache)], check=True)
    return cache


def test_dry_run_of_a_cached_kernel_writes_nothing(otns, private_cache, tmp_path):
    before = _snapshot(private_cache)
    scratch = tmp_path / "tmp"  # its own TMPDIR: other otns runs on the machine use /tmp
    scratch.mkdir()
    # A real process: the one dry run here that shows what a user's command leaves behind.
    r = otns("run", "--kernel", CACHED, "--dry-run", cache=private_cache, env={"TMPDIR": str(scratch)}, process=True)
    assert r.code == 0, r.stderr
    vng, qemu = r.stdout.splitlines()[:2]
    assert vng.startswith("vng -r ") and f"--rwdir /run/otns-results={r.results}" in vng
    # QEMU's line names vng's private stage (safe-named links, gone once it is printed).
    assert "qemu-system-x86_64" in qemu and "GUEST_RESULTS" not in qemu
    assert not r.results.exists(), "a dry run made the results folder"
    assert _snapshot(private_cache) == before
    assert not list(scratch.glob("otns-dry-run-*"))


def test_dry_run_of_a_kernel_not_cached_fetches_nothing(otns, private_cache):
    before = _snapshot(private_cache)
    r = otns("run", "--kernel", "debian:7.2.12", "--dry-run", cache=private_cache)
    assert r.code == 0, r.stderr
    assert r.stdout.startswith("would fetch Debian 7.2.12-") and " MB" in r.stdout, r.stdout
    assert not r.results.exists()
    assert _snapshot(private_cache) == before, "the dry run wrote into the cache"


@pytest.mark.parametrize("args, cpus", [
    (["--accel", "tcg"], 1),  # one host thread runs every vCPU: one is faster (otns.options.default_cpus)
    (["--accel", "kvm"], 2),  # each vCPU is a host thread
    (["--accel", "tcg", "--cpus", "3"], 3),  # the user's own count wins
])
def test_vcpus_follow_the_accelerator_unless_given(otns, private_cache, args, cpus):
    r = otns("run", "--kernel", CACHED, "--dry-run", *args, cache=private_cache)
    assert r.code == 0, r.stderr
    vng, qemu = r.stdout.splitlines()[:2]
    assert f" --cpus {cpus} " in vng and f"'--qemu-opts=-smp sockets={cpus}'" in vng
    assert f" -smp {cpus} " in qemu
