"""External commands with a time limit and a one-line error.

Each command runs in a session of its own, dies with otns (PR_SET_PDEATHSIG: a `kill -9` of
otns does not leave apt downloading), and its output goes to temporary files rather than
pipes, so a helper it left behind (apt's fetch methods) cannot keep otns waiting for the end
of a pipe. When it ends or its time is up, whatever is left of its process group is killed.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .errors import InfraError

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child before exec: SIGKILL when otns dies."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def kill_group(proc: subprocess.Popen) -> None:
    """The command and whatever it started in its session: killed, the command reaped."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def start(cmd: list[str], what: str, **kwargs) -> subprocess.Popen:
    """Popen in a session of its own that dies with otns; a missing program is an InfraError."""
    try:
        return subprocess.Popen(cmd, start_new_session=True, preexec_fn=die_with_parent, **kwargs)
    except FileNotFoundError:
        raise InfraError(f"cannot {what}: {cmd[0]} is not installed (run the README's setup)") from None


def run(cmd: list[str], what: str, timeout: float, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run cmd to its end (at most `timeout` seconds): its exit code and text output.
    InfraError, naming `what` (for example "update Debian's index"), when it is not installed or
    takes longer; the caller judges the exit code."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = start(cmd, what, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd, env=env)
        began = time.monotonic()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InfraError(f"cannot {what}: {Path(cmd[0]).name} did not finish within {timeout:.0f} s "
                             f"(stopped after {time.monotonic() - began:.0f} s)") from None
        finally:
            kill_group(proc)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, proc.returncode, out.read().decode("utf-8", "replace"),
                                           err.read().decode("utf-8", "replace"))
