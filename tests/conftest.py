"""Shared fixtures for the project's own tests: the otns command, the cache, real kernels."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from base.locks import locked
from otns.paths import REPO_ROOT, default_cache_dir

try:
    from hypothesis import settings
except ImportError:  # the dev extra is not installed: the fuzz modules say so themselves
    settings = None
if settings is not None:
    # The fuzz tests' depth. "fast" (the default) keeps the fast tier under 30 s; the README's full
    # test command (and so CI) passes --hypothesis-profile=deep. Loaded here, before the test
    # modules build their settings from it.
    settings.register_profile("fast", max_examples=25)
    settings.register_profile("deep", max_examples=200)
    settings.load_profile("fast")

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
        """The verdict: the last line of stdout (`otns run | tail -1`), or of stderr when the run
        printed nothing on stdout (it stopped before the suite)."""
        lines = [ln for ln in self.stdout.splitlines() if ln.strip()] or \
            [ln for ln in self.stderr.splitlines() if ln.strip()]
        return lines[-1] if lines else ""


def cache_for_tests() -> Path:
    """The tests' own cache: $OTNS_TEST_CACHE, or otns-tests beside the user's otns cache.

    Never the user's cache (~/.cache/otns): a test may plant odd files, fill a disk or kill a
    fetch, and the user's kernels must not see it. It persists between sessions: each kernel
    is fetched once per machine (on CI's fresh machine, once per run, as before: every test and
    the boot tier share this one folder). The first session on a machine pays for it, measured on
    2026-11-28 on a busy 2-core machine: the fast tier's first run took 85 s instead of 35 s (the
    Debian index, 65 MB; two cloud kernels, ~15 MB and 8-16 s each; virtiofsd, 17 MB); the boot
    tier adds about ten kernels, Debian's 7.2 source (157 MB) and its first build (~13 min).
    Copying or linking the user's kernels instead would save those downloads once, but tie the
    tests to another cache's layout and, with hard links, let a test write through into the
    user's files. $OTNS_TEST_CACHE=~/.cache/otns shares the user's cache on purpose.
    (test_faults reads Debian's 7.2 source from the user's cache when it is there, writing nothing.)
    """
    d = Path(os.environ.get("OTNS_TEST_CACHE") or default_cache_dir().with_name("otns-tests"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def host_mount_table(cache_dir: Path) -> Iterator[None]:
    """Held by every test that changes or compares the host's mount table: under pytest-xdist
    one test's tmpfs must not show up in another's before/after comparison."""
    with locked(cache_dir / "host-mount-table.lock"):
        yield


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The tests' own cache (see cache_for_tests), shared by every test of the session."""
    return cache_for_tests()


def otns_argv(*args: str, cache: Path | None = None) -> list[str]:
    """otns's arguments, on the tests' cache (or `cache`)."""
    return ["--cache-dir", str(cache or cache_for_tests()), *args]


def otns_command(*args: str, cache: Path | None = None) -> list[str]:
    """The command line that runs this checkout's otns as a real process: the one place tests build it."""
    return [sys.executable, "-m", "otns.cli", *otns_argv(*args, cache=cache)]


def run_in_process(argv: list[str], capfd: pytest.CaptureFixture, env: dict | None = None) -> tuple[int, str, str]:
    """`otns.cli.main(argv)` in this process (a real one costs ~0.3 s of CPU just to start): its
    exit code and what it wrote to stdout and stderr, its children's output included."""
    from otns.cli import main
    saved_env, saved_cwd, saved_term = dict(os.environ), os.getcwd(), signal.getsignal(signal.SIGTERM)
    os.environ.update(env or {})
    os.chdir(REPO_ROOT)
    capfd.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code if isinstance(e.code, int) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        signal.signal(signal.SIGTERM, saved_term)
    out, err = capfd.readouterr()
    return code, out, err


@pytest.fixture(scope="session", autouse=True)
def collect_once():
    """otns checks pytest arguments by collecting conformance/ on the host (`pytest --collect-only`
    in a child, ~0.5 s of CPU); the answer depends only on the arguments, so in-process otns calls
    reuse it within the session, as one real otns process calls it once."""
    from otns.run import preflight
    real, answers = preflight.collect, {}

    def collect(extra: list[str], cache_dir: Path | None = None) -> tuple[int, str]:
        key = (tuple(extra), cache_dir)  # with a cache folder, collecting also leaves the guest's bytecode there
        if key not in answers:
            answers[key] = real(extra, cache_dir)
        return answers[key]
    preflight.collect = collect
    yield
    preflight.collect = real


@pytest.fixture
def otns(cache_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture, request: pytest.FixtureRequest):
    """Run the otns command line; results go to a fresh folder per call.

    Boot tests (and calls with process=True) start a real process; the others call
    `otns.cli.main` in this process, since what they check (usage errors, refusals, dry runs)
    does not need one."""
    counter = {"n": 0}
    boots = request.node.get_closest_marker("boot") is not None

    def run(*args: str, results: bool = True, timeout: float = 900, cache: Path | None = None,
            env: dict | None = None, process: bool | None = None) -> Run:
        counter["n"] += 1
        folder = tmp_path / f"results-{counter['n']}" if results else None
        argv = list(args)
        if folder is not None and args and args[0] == "run":
            argv[1:1] = ["--results", str(folder)]
        if not (boots if process is None else process):
            return Run(*run_in_process(otns_argv(*argv, cache=cache or cache_dir), capfd, env), folder)
        p = subprocess.run(otns_command(*argv, cache=cache or cache_dir), cwd=REPO_ROOT, capture_output=True,
                           text=True, timeout=timeout, env={**os.environ, **(env or {})})
        return Run(p.returncode, p.stdout, p.stderr, folder)

    return run


@pytest.fixture(scope="session")
def cached_image(cache_dir: Path) -> Path:
    """A real Debian kernel image on disk (the default kernel, fetched through otns itself), and
    virtiofsd as a real run leaves it in the cache: without it every dry run waits ~6 s for vng
    to give up on the system's old virtiofsd (Debian 12)."""
    from base.locks import locked
    from kernels import catalog, fetch
    from kernels.debian import resolve
    from vm import virtiofsd
    apt, kernels = catalog.load(cache_dir, notice=lambda m: None)
    local = fetch.fetch(cache_dir, apt, resolve(kernels, DEFAULT_SPEC.split(":", 1)[1], "cloud"), show_progress=False)
    with locked(cache_dir / "tools.lock"):
        virtiofsd.ensure(cache_dir, apt)
    assert local.image is not None
    return local.image


LINUX_SOURCE = "linux-source-7.2"


@pytest.fixture(scope="session")
def linux_source(cache_dir: Path) -> Path:
    """Debian's linux-source-7.2 tarball (7.2.13), fetched once by otns itself (`debian-source:7.2`,
    kernels/source.py) and kept in the cache."""
    from kernels import source
    return source.fetch(f"{source.PREFIX}{LINUX_SOURCE.removeprefix('linux-source-')}", cache_dir)


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


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(profile: Path, *args: str) -> str:
    """Headless Chromium with a throw-away profile, reaching for nothing on the network; its stdout.
    A test that needs it fails (not skips) when it is missing: scripts/setup --dev installs it."""
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: scripts/setup --dev installs it")
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120).stdout
