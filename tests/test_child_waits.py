"""Every wait of the conformance suite on a child is bounded, and a stuck test fails alone.

Real processes on this machine (no VM): conformance.helpers forks, and pytest runs with
pytest-timeout as the guest runs it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conformance import helpers, probe
from otns.paths import REPO_ROOT
from vm import guest


def _group_alive(pgid: int, grace: float = 2.0) -> bool:
    """Whether a live (not zombie) process is left in the group, after a grace period for
    SIGKILL to take effect."""
    deadline = time.monotonic() + grace
    while True:
        alive = False
        for entry in Path("/proc").iterdir():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            alive = alive or (int(fields[3]) == pgid and fields[0] != "Z")
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_in_child_returns_and_reraises() -> None:
    assert helpers.in_child(lambda: {"a": 1}) == {"a": 1}
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        helpers.in_child(lambda: 1 / 0)


def test_in_child_result_larger_than_a_pipe() -> None:
    # The child writes with os.write, which may take part of its buffer: all of it arrives.
    big = os.urandom(3 << 20)
    assert helpers.in_child(lambda: big) == big


def test_a_child_whose_parent_stopped_reading_never_returns() -> None:
    """A forked child that cannot report (its parent closed the pipe, as an interrupted wait does)
    exits; it must never return into the test process's code, which it shares after the fork."""
    r, w = os.pipe()
    os.close(r)
    pid = os.fork()
    if pid == 0:
        try:
            helpers._child_main(lambda: "a result", w)
        finally:
            os._exit(99)  # reached only if _child_main returned or raised
    os.close(w)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 71


def _sleeper(pid_file: Path):
    """A child that forks a grandchild, says who it is, and sleeps (as a stuck test would)."""
    def child():
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        pid_file.write_text(str(os.getpid()))
        time.sleep(600)
    return child


def test_stuck_child_is_killed_with_what_it_forked(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(helpers.ChildTimeout, match=r"child timed out after 1 s in a forked child: killed"):
        helpers.in_child(_sleeper(tmp_path / "pid"), timeout=1)
    assert time.monotonic() - start < 5
    assert not _group_alive(int((tmp_path / "pid").read_text())), "the grandchild outlived the call"


def test_a_grandchild_holding_the_pipe_does_not_block() -> None:
    def child():
        if os.fork() == 0:  # inherits the result pipe and keeps it open
            time.sleep(600)
            os._exit(0)
        return os.getpid()
    start = time.monotonic()
    pid = helpers.in_child(child)
    assert time.monotonic() - start < 5
    assert not _group_alive(pid), "the grandchild outlived the call"


def test_a_grandchild_that_falls_out_of_fn_neither_reports_nor_runs_on() -> None:
    def child():
        pid = os.fork()
        if pid == 0:
            raise RuntimeError("the grandchild's failure, not the child's")
        return os.waitstatus_to_exitcode(helpers.wait_child(pid))
    assert helpers.in_child(child) == 70


def test_an_interrupted_wait_kills_the_child(tmp_path: Path) -> None:
    """What pytest-timeout's signal method does to a test waiting in in_child."""
    class Limit(Exception):
        pass

    def on_alarm(signum, frame):
        raise Limit()
    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1)
        with pytest.raises(Limit):
            helpers.in_child(_sleeper(tmp_path / "pid"))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not _group_alive(int((tmp_path / "pid").read_text())), "the child outlived the interrupted wait"


def test_wait_child_is_bounded() -> None:
    pid = os.fork()
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    with pytest.raises(helpers.ChildTimeout, match="timed out after 0.5 s: killed"):
        helpers.wait_child(pid, timeout=0.5)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped


def test_fd_from_child() -> None:
    fd = helpers.fd_from_child(lambda: os.open("/", os.O_PATH))
    try:
        assert os.path.samestat(os.fstat(fd), os.stat("/"))
    finally:
        os.close(fd)
    start = time.monotonic()
    with pytest.raises(AssertionError, match="FileNotFoundError"):
        helpers.fd_from_child(lambda: os.open("/nonexistent-otns", os.O_PATH))
    assert time.monotonic() - start < 5


@pytest.mark.skipif(os.geteuid() != 0, reason="the conformance test mounts: it needs root")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnknownMarkWarning")  # conformance/'s own marks
def test_foreign_copy_test_fails_fast_when_the_copy_fails() -> None:
    """When the foreign caller's open_tree() failed, this test once hung the run for good: it must fail, at once."""
    from conformance.test_propagation import test_foreign_copy_is_a_slave
    if probe.open_tree_namespace().present:
        test_foreign_copy_is_a_slave()  # a kernel with the feature: it passes
        return
    start = time.monotonic()  # this kernel lacks the flag: the foreign copy fails with EINVAL
    with pytest.raises(AssertionError, match="a foreign caller's recursive copy gave EINVAL"):
        test_foreign_copy_is_a_slave()
    assert time.monotonic() - start < 10


STUCK_TESTS = """
    import os
    from conformance.helpers import in_child

    def block():
        r, w = os.pipe()
        os.read(r, 1)

    def test_blocked_in_a_forked_child():
        in_child(block)

    def test_blocked_itself():
        block()

    def test_after():
        pass
"""


def test_per_test_limit_in_forked_children(tmp_path: Path) -> None:
    """The guest's per-test limit (pytest-timeout, signal method) fails a test blocked in a forked
    child or in itself, and the session goes on; the blocked child does not outlive its test."""
    assert "--timeout-method=signal" in guest.pytest_args(tmp_path, [])
    (tmp_path / "test_stuck.py").write_text(textwrap.dedent(STUCK_TESTS))
    args = [str(tmp_path), "-p", "pytest_timeout", "--timeout=1", "--timeout-method=signal", "-p", "no:cacheprovider"]
    start = time.monotonic()
    # Output to a file, not a pipe: a child left behind would hold a pipe open.
    with open(tmp_path / "out", "w") as out:
        subprocess.run([sys.executable, "-m", "pytest", *args], cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                       timeout=60, env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(REPO_ROOT)})
    text = (tmp_path / "out").read_text()
    assert time.monotonic() - start < 30
    assert "2 failed, 1 passed" in text, text
    assert text.count("Timeout (>1.0s) from pytest-timeout") >= 2, text
    left = [line for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
            if str(tmp_path) in line]
    assert not left, left
