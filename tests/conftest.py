"""Shared fixtures for the project's own tests: the otns command, the cache, real kernels."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from otns.paths import REPO_ROOT, default_cache_dir

# The default kernel of `otns run` and the newest Debian kernel without the feature.
DEFAULT_SPEC = "debian:latest"
ABSENT_SPEC = "debian:6.19.14"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    results: Path | None

    @property
    def summary(self) -> dict:
        assert self.results is not None, "no results folder"
        return json.loads((self.results / "summary.json").read_text())

    @property
    def last_line(self) -> str:
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        return lines[-1] if lines else ""


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The real cache, so kernels fetched once serve every test (and later runs)."""
    d = Path(os.environ.get("OTNS_TEST_CACHE", default_cache_dir()))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def otns(cache_dir: Path, tmp_path: Path):
    """Run the real otns command line; results go to a fresh folder per call."""
    counter = {"n": 0}

    def run(*args: str, results: bool = True, timeout: float = 900, cache: Path | None = None,
            env: dict | None = None) -> Run:
        counter["n"] += 1
        folder = tmp_path / f"results-{counter['n']}" if results else None
        cmd = [sys.executable, "-m", "otns.cli", "--cache-dir", str(cache or cache_dir), *args]
        if folder is not None and args and args[0] == "run":
            cmd[cmd.index("run") + 1:cmd.index("run") + 1] = ["--results", str(folder)]
        p = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, **(env or {})})
        return Run(p.returncode, p.stdout, p.stderr, folder)

    return run


@pytest.fixture(scope="session")
def cached_image(cache_dir: Path) -> Path:
    """A real Debian kernel image on disk (the default kernel, fetched through otns itself)."""
    from kernels import catalog, fetch
    from kernels.debian import resolve
    apt, kernels = catalog.load(cache_dir, notice=lambda m: None)
    local = fetch.fetch(cache_dir, apt, resolve(kernels, DEFAULT_SPEC.split(":", 1)[1], "cloud"), show_progress=False)
    assert local.image is not None
    return local.image


LINUX_SOURCE = "linux-source-7.2"


@pytest.fixture(scope="session")
def linux_source(cache_dir: Path) -> Path:
    """Debian's linux-source-7.2 tarball (7.2.13), fetched once through the project's private apt
    and kept in the cache; renamed into place whole, so a killed fetch leaves nothing half-written."""
    import tempfile
    from kernels.apt import PrivateApt
    dest = cache_dir / "sources"
    tarball = dest / f"{LINUX_SOURCE}.tar.xz"
    if tarball.is_file():
        return tarball
    dest.mkdir(parents=True, exist_ok=True)
    apt = PrivateApt(cache_dir / "apt")
    apt.update()
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest) as tmp:
        r = subprocess.run(["apt-get", *apt.options(), "-q", "download", LINUX_SOURCE], cwd=tmp,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        deb = next(Path(tmp).glob(f"{LINUX_SOURCE}_*.deb"))
        member = f"./usr/src/{LINUX_SOURCE}.tar.xz"
        deb_tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", tmp, "--strip-components=3", member], stdin=deb_tar.stdout, check=True)
        deb_tar.stdout.close()
        assert deb_tar.wait() == 0
        os.replace(Path(tmp) / tarball.name, tarball)
    return tarball


# Every process this test session starts inherits this tag, so the checks below see only our
# own VMs, never another user's QEMU on the same machine (orphans keep their environment).
SESSION_TAG = f"OTNS_TEST_SESSION={os.getpid()}-{time.time_ns()}"
os.environ["OTNS_TEST_SESSION"] = SESSION_TAG.split("=", 1)[1]


def _ours(pid: str) -> bool:
    try:
        return SESSION_TAG.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def qemu_processes() -> list[str]:
    """QEMU and virtiofsd processes started by this test session (pid and command line)."""
    out = subprocess.run(["pgrep", "-a", "-f", "qemu-system|virtiofsd"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if "pgrep" not in ln and _ours(ln.split()[0])]


@pytest.fixture
def no_stray_vms():
    """Fail a test that leaves QEMU or virtiofsd behind (and clean up ours anyway)."""
    before = set(qemu_processes())
    yield
    after = [p for p in qemu_processes() if p not in before]
    for line in after:
        subprocess.run(["kill", "-9", line.split()[0]], check=False)
    assert not after, f"left behind: {after}"


def have_root() -> bool:
    return os.geteuid() == 0


def copy_truncated(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


__all__ = ["Run", "DEFAULT_SPEC", "ABSENT_SPEC", "qemu_processes", "copy_truncated", "have_root", "shutil"]
