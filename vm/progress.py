"""Each test's outcome, streamed out of the guest as it ends: what survives a hung or crashed run.

The guest's pytest appends one JSON line per event to progress.jsonl in the results folder
(the folder the host shares read-write): the number of tests collected, each test as it
starts, each test's outcome as it ends. A test's outcome goes out with the next test's start,
in one write before that test runs, so when the guest hangs or its kernel panics, the host
still knows every test that finished and which one was running. JUnit XML, written at the
end, stays the authority when it exists. The host reads the file as untrusted input: no
symlinks, a bounded size, only well-formed lines, printable text.
"""
from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from base import filenames

FILE = filenames.PROGRESS  # the file Writer writes and read() reads, in a results folder
OUTCOMES = ("pass", "fail", "skip", "error")  # as otns.results.model.Outcome
MAX_BYTES = 8 << 20  # a full run writes ~100 KiB
MAX_NAME = 1000
MAX_MESSAGE = 2000


class Writer:
    """pytest plugin (registered by vm.guest): appends the events to the file.

    A plain write() reaches the host before it returns: virtiofs without writeback caching
    (virtme-ng's setup) and 9p without a cache option are write-through, which
    tests/test_stuck_boot.py checks by panicking the kernel. No fsync, then: under TCG one
    costs 1.3 ms, a write 1.1 ms; one write per test is ~0.4 s for the whole suite.
    """

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                          0o644)
        self.phases: dict[str, list] = {}
        self.pending = b""  # the last test's outcome, sent with the next test's start

    def _emit(self, **event) -> None:
        os.write(self.fd, self.pending + (json.dumps(event) + "\n").encode())
        self.pending = b""

    def pytest_collection_finish(self, session) -> None:
        if session.items:  # none on pytest-xdist's controller: its workers collect
            self._emit(event="collected", count=len(session.items))

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        self.phases[nodeid] = []
        self._emit(event="start", test=nodeid)

    def pytest_runtest_logreport(self, report) -> None:
        self.phases.setdefault(report.nodeid, []).append(report)

    def pytest_runtest_logfinish(self, nodeid: str, location) -> None:
        outcome, message, seconds = _outcome(self.phases.pop(nodeid, []))
        self.pending += (json.dumps({"event": "end", "test": nodeid, "outcome": outcome, "seconds": round(seconds, 3),
                                     "message": message[:MAX_MESSAGE]}) + "\n").encode()

    def pytest_sessionfinish(self, session) -> None:
        if self.pending:
            os.write(self.fd, self.pending)
            self.pending = b""

    def pytest_unconfigure(self, config) -> None:
        os.close(self.fd)


def _outcome(reports: list) -> tuple[str, str, float]:
    """One outcome from the setup/call/teardown reports, as JUnit XML records it: a broken
    setup or teardown is an error, a failed call a failure, a skip (or xfail) a skip; the
    last one that is not a pass wins."""
    outcome, message = "pass", ""
    for r in reports:
        if r.failed:
            outcome = "fail" if r.when == "call" else "error"
            crash = getattr(r.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(r.longrepr)
        elif r.skipped:
            outcome = "skip"
            reason = r.longrepr[2] if isinstance(r.longrepr, tuple) else str(r.longrepr)
            message = getattr(r, "wasxfail", "") or reason.removeprefix("Skipped: ")
    return outcome, message, sum(r.duration for r in reports)


@dataclass
class Finished:
    test: str
    outcome: str  # one of OUTCOMES
    seconds: float
    message: str


@dataclass
class Progress:
    collected: int | None = None
    finished: list[Finished] = field(default_factory=list)
    running: list[str] = field(default_factory=list)  # started, never ended: what was running at the end


def read(path: Path) -> Progress | None:
    """What the guest streamed into path, or None when there is no such regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, size = [], 0
        while size < MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    # The last line may be cut (the guest died while writing it, or the size bound): dropped.
    lines = b"".join(chunks).split(b"\n")[:-1]
    progress = Progress()
    running: dict[str, None] = {}  # started and not ended, in order (a dict: an ordered set)
    for line in lines:
        event = _event(line)
        if event is None:
            continue
        kind = event.get("event")
        if kind == "collected" and _is_count(event.get("count")):
            progress.collected = event["count"]
        elif kind == "start" and _name(event.get("test")):
            running[event["test"]] = None
        elif kind == "end" and _name(event.get("test")) and event.get("outcome") in OUTCOMES:
            seconds = event.get("seconds")
            message = event.get("message")
            running.pop(event["test"], None)
            progress.finished.append(Finished(
                event["test"], event["outcome"],
                float(seconds) if isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0 else 0.0,
                _printable(message[:MAX_MESSAGE]) if isinstance(message, str) else ""))
    progress.running = list(running)
    return progress


def _event(line: bytes) -> dict | None:
    try:
        event = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**7


def _name(v: object) -> bool:
    """A test id fit to print: short, printable, one line."""
    return isinstance(v, str) and 0 < len(v) <= MAX_NAME and v.isprintable()


def _printable(s: str) -> str:
    return "".join(c if c.isprintable() or c == "\n" else "?" for c in s)
