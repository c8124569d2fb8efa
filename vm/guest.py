"""Runs inside the guest: make a writable /tmp, run the conformance suite, leave results.

Started by vm.boot as `python -m vm.guest --results DIR -- [pytest args]`. Everything it
writes goes to DIR, the one folder the host shares read-write.
"""
from __future__ import annotations

import sys

BUNDLE = None  # the guest's bytecode bundle (vm.bytecode), when it has one
if __name__ == "__main__":  # the guest: import from that bundle from here on
    from vm import bytecode
    BUNDLE = bytecode.install()

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from base import filenames
from vm import progress

CONFORMANCE = Path(__file__).resolve().parent.parent / "conformance"
ROOT = CONFORMANCE.parent  # the folder pytest runs in (pytest_args)
# The guest's first line on the console; the host (vm.boot) watches for it to know the kernel
# reached user space.
USERSPACE_MARK = "otns-guest: user space reached"
# Builtin pytest plugins the suite never uses; each costs import time, which TCG multiplies ~30x.
UNUSED_PLUGINS = ("doctest", "pastebin", "legacypath", "setupplan", "setuponly", "stepwise",
                  "debugging", "recwarn", "logging")
# Every test's time limit (pytest-timeout; `-- --timeout=N` overrides it). The slowest test takes
# ~3 s under TCG. The signal method raises in the test process, interrupting the syscall it waits
# in (conformance.helpers then kills the child it waited for) and the suite goes on; the thread
# method ends the whole session and leaves a blocked child behind.
TEST_SECONDS = 60


def add_site_packages() -> None:
    """The guest runs python -S: site's start-up (.pth files and all) costs ~0.5 s under TCG.
    Only the environment's own site-packages is needed; the checkout is the working folder.
    Under -S, sys.prefix is the base interpreter's, so the venv is found from sys.executable."""
    if not sys.flags.no_site:
        return
    venv = Path(sys.executable).parent.parent
    if not (venv / "pyvenv.cfg").is_file():
        import site
        site.main()  # not a virtual environment: the normal start-up
        return
    v = sys.version_info
    sys.path.append(str(venv / "lib" / f"python{v.major}.{v.minor}" / "site-packages"))


def writable(path: str) -> bool:
    try:
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False


def prepare_tmp(results: Path) -> None:
    """Without overlayfs (a module-less kernel) the host's /tmp is read-only in the guest."""
    if writable("/tmp"):
        return
    # A tmpfs on /tmp would hide what lives there: the results folder, or otns itself when it
    # is installed in a virtual environment under /tmp, or the host's bytecode (vm.pycache).
    # Use a folder under /run instead.
    needed = (results, Path(sys.executable).parent.parent, CONFORMANCE, Path(sys.pycache_prefix or "/"))
    if any(str(p).startswith("/tmp/") for p in needed):
        os.makedirs("/run/otns-tmp", exist_ok=True)
        os.environ["TMPDIR"] = "/run/otns-tmp"
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "otns-tmp", "/tmp"], check=True)


def pytest_args(results: Path, extra: list[str]) -> list[str]:
    # Node ids (conformance/test_x.py::test_y) select tests themselves, as does a file of them
    # (@FILE, one argument a line: pytest reads it; the kernel's command line is too short for
    # a long list); otherwise the whole suite.
    selected = any(a.startswith(("conformance/", str(CONFORMANCE), "@")) for a in extra)
    # --rootdir: node ids are conformance/test_x.py::... wherever otns is installed. pytest
    # expands $NAME in it, so it is given as "." and pytest runs in that folder (ROOT).
    args = [*([] if selected else [str(CONFORMANCE)]), "--rootdir=.",
            "-p", "no:cacheprovider", "-o", "junit_family=xunit2",
            f"--junitxml={results / filenames.JUNIT}", f"--otns-features={results / filenames.FEATURES}",
            # -rfE, not s: the host counts skips once per reason (otns.digest), rather than a
            # SKIPPED line each between the last failure and the verdict.
            "-rfE", *[x for name in UNUSED_PLUGINS for x in ("-p", f"no:{name}")],
            "-p", "pytest_timeout", f"--timeout={TEST_SECONDS}", "--timeout-method=signal"]
    # Plugin autoload is off for speed; load xdist only when parallelism is asked for.
    if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in extra):
        args += ["-p", "xdist.plugin"]
    return args + extra


# Where a kernel built with CONFIG_GCOV_KERNEL shows its counters (debugfs, which the guest's
# init mounts): a tree mirroring the build folder, one .gcda per profiled object, and a reset.
GCOV_ROOT = Path("/sys/kernel/debug/gcov")


def reset_gcov() -> None:
    """Zero the counters, so the coverage is the suite's and not the boot's (a kernel without
    gcov has no such folder: save_gcov then finds nothing, which the host reports)."""
    if GCOV_ROOT.is_dir():
        (GCOV_ROOT / "reset").write_text("1")


def save_gcov(results: Path) -> int:
    """Copy every .gcda file under the gcov folder into results/gcov/ (same relative paths)."""
    saved = 0
    for folder, _, files in os.walk(GCOV_ROOT):
        for name in files:
            if name.endswith(".gcda"):
                src = Path(folder) / name
                dest = results / filenames.GCOV / src.relative_to(GCOV_ROOT)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(src.read_bytes())
                saved += 1
    return saved


def uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def main(argv: list[str] | None = None) -> int:
    start, booted = time.monotonic(), uptime()
    add_site_packages()
    ap = argparse.ArgumentParser(prog="vm.guest")
    ap.add_argument("--results", required=True, type=Path)
    ap.add_argument("--announce", action="store_true", help="tell the host that the boot is over")
    ap.add_argument("--gcov", action="store_true", help="keep the kernel's gcov counters of the suite")
    ap.add_argument("pytest_args", nargs=argparse.REMAINDER)
    ns = ap.parse_args(argv)
    if ns.announce:
        # stderr reaches the host's console log, not the live output.
        print(f"{USERSPACE_MARK} at {booted:.1f} s", file=sys.stderr, flush=True)
    extra = ns.pytest_args[1:] if ns.pytest_args[:1] == ["--"] else ns.pytest_args
    prepare_tmp(ns.results)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    os.chdir(ROOT)  # pytest_args' --rootdir=.
    import pytest

    imported = time.monotonic()
    if ns.gcov:
        reset_gcov()
    rc = int(pytest.main(pytest_args(ns.results, extra), plugins=[progress.Writer(ns.results / filenames.PROGRESS)]))
    gcov_files = save_gcov(ns.results) if ns.gcov else None
    # uptime_at_start: kernel start to this script (boot and init); the rest is the suite's cost.
    info = {"release": platform.release(), "pytest_exit": rc, "uptime_at_start": booted,
            "pytest_import_seconds": imported - start, "suite_seconds": time.monotonic() - start,
            "cpus": os.cpu_count(), "pytest_path": pytest.__file__,
            # modules imported from the host's bytecode bundle (vm.bytecode); None: no bundle
            "bundled_modules": len(BUNDLE.served) if BUNDLE else None,
            "gcov_files": gcov_files}
    tmp = ns.results / (filenames.GUEST + ".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(ns.results / filenames.GUEST)
    sys.stdout.flush()
    return rc


if __name__ == "__main__":
    code = main()
    # Everything is written and closed; skip Python's own shutdown, which tears down every
    # module one by one (0.1-0.3 s under TCG, docs/environment.md).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
