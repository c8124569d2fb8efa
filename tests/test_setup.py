"""scripts/setup: it waits (bounded) for another apt holding the dpkg lock, and a re-run only checks."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from otns.paths import REPO_ROOT

WAIT = REPO_ROOT / "scripts" / "apt_lock_wait.py"


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    """A process holding an fcntl lock on `path` as apt and dpkg do, for `seconds`."""
    code = ("import fcntl, sys, time\nf = open(sys.argv[1], 'w')\nfcntl.lockf(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\ntime.sleep(float(sys.argv[2]))\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _wait(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(WAIT), "--every", "0.2", *args], capture_output=True, text=True,
                          timeout=60)


def test_waits_until_the_lock_is_released(tmp_path: Path) -> None:
    lock = tmp_path / "lock-frontend"
    holder = _hold(lock, 2)
    start = time.monotonic()
    done = _wait("--timeout", "30", str(lock))
    waited = time.monotonic() - start
    holder.wait()
    assert done.returncode == 0, done.stderr
    assert 1.0 < waited < 20, f"waited {waited:.1f} s for a lock held 2 s"
    # One line naming the holder, not one per look.
    assert done.stderr.count("\n") == 1 and f"process {holder.pid} (python" in done.stderr, done.stderr


def test_gives_up_after_the_bound_with_one_line(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    holder = _hold(lock, 30)
    try:
        done = _wait("--timeout", "1", str(lock))
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert f"process {holder.pid}" in last and "still holds" in last and "Traceback" not in done.stderr


def test_free_or_absent_locks_pass_at_once(tmp_path: Path) -> None:
    (tmp_path / "free").touch()
    done = _wait("--timeout", "0", str(tmp_path / "free"), str(tmp_path / "absent"))
    assert (done.returncode, done.stderr) == (0, "")


def test_a_rerun_only_checks() -> None:
    """After one run, a second prints its one "ready" line: no pip, no setuptools warnings, the
    venv's stamp untouched."""
    mode = "--dev"  # the project's own tests run from a --dev venv
    first = subprocess.run([str(REPO_ROOT / "scripts" / "setup"), mode], capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-2000:]
    stamp = REPO_ROOT / ".venv" / ".otns-setup"
    before = stamp.stat().st_mtime_ns
    again = subprocess.run([str(REPO_ROOT / "scripts" / "setup"), mode], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stderr == "" and again.stdout.count("\n") == 1 and again.stdout.startswith("scripts/setup: ready"), \
        again.stdout + again.stderr
    assert stamp.stat().st_mtime_ns == before
