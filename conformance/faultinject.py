"""Failing the Nth allocation of one system call: the kernel's fault injection, through fail-nth.

With CONFIG_FAULT_INJECTION, writing N to /proc/thread-self/fail-nth makes the Nth fault point the
thread passes from then on fail, whatever the probabilities (lib/fault-inject.c, should_fail_ex());
with CONFIG_FAILSLAB every slab allocation is such a point, once debugfs's failslab/ignore-gfp-wait
is N (by default an allocation that may sleep, GFP_KERNEL, is left alone: mm/failslab.c). Reading
the file after the call gives what is left of N: 0 when the Nth point was reached and failed.
N = 1, 2, ... so fails each allocation of a call in turn, until the call ends before the Nth.
Stands alone: it runs in the guest.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from . import kconfig

FAIL_NTH = "/proc/thread-self/fail-nth"
FAILSLAB = "/sys/kernel/debug/failslab"
NEEDS = ("CONFIG_FAULT_INJECTION", "CONFIG_FAILSLAB", "CONFIG_FAULT_INJECTION_DEBUG_FS")
# A namespace copy of a small tree takes a few dozen allocations; more than this is a kernel
# that does not stop (or a fail-nth that never counts down).
MAX_ALLOCATIONS = 600


@dataclass(frozen=True)
class Attempt:
    n: int  # the allocation failed on purpose (1: the call's first)
    fired: bool  # the call reached its Nth allocation, which failed
    result: int  # what the call returned (an fd, 0), or -1
    err: int  # its errno, 0 when it succeeded


def missing() -> str | None:
    """Why fail-nth cannot be used here (None: it can), checked against the kernel's config:
    an option the config has but the running kernel does not show is not a reason to skip."""
    have = os.path.exists(FAIL_NTH) and os.path.isdir(FAILSLAB)
    built = kconfig.built_with(kconfig.known(), *NEEDS)
    if have:
        return None
    if built:
        raise AssertionError(f"the kernel's config has {', '.join(NEEDS)}, but {FAIL_NTH} or {FAILSLAB} is "
                             "missing: the fault-injection interface the config promises is not there")
    if built is None:
        return (f"no {FAIL_NTH} and {FAILSLAB}: the kernel was built without fault injection "
                "(its config is unknown to otns, so this is unchecked)")
    # Worded without "lacks": that word is kept for a missing feature (tests/test_run_boot.py).
    return f"built without fail-nth fault injection: the kernel's config does not set all of {', '.join(NEEDS)}"


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


@contextmanager
def failslab_counts_sleeping_allocations() -> Iterator[None]:
    """Make failslab count GFP_KERNEL allocations (nearly all of the mount code's) and print no
    stack trace per injected failure (a console line per failure is slow under TCG); put both
    back after. The probability stays 0: no other task sees a failure."""
    saved = {name: open(f"{FAILSLAB}/{name}").read().strip() for name in ("ignore-gfp-wait", "verbose")}
    try:
        _write(f"{FAILSLAB}/ignore-gfp-wait", "N")
        _write(f"{FAILSLAB}/verbose", "0")
        yield
    finally:
        for name, value in saved.items():
            _write(f"{FAILSLAB}/{name}", value)


def sweep(prepare: Callable[[], object], call: Callable[[object], int],
          check: Callable[[Attempt, object], None]) -> list[Attempt]:
    """Fail the 1st, 2nd, ... allocation of call(prepare()) in turn; check(attempt, prepared)
    after each. Ends with the first attempt whose Nth allocation was never reached (the call
    ran whole), which check sees too. Run in the thread that opened nothing else in between:
    from the write of N to the call, every allocation of this thread counts."""
    fd = os.open(FAIL_NTH, os.O_RDWR | os.O_CLOEXEC)
    attempts: list[Attempt] = []
    try:
        for n in range(1, MAX_ALLOCATIONS + 1):
            prepared = prepare()
            os.pwrite(fd, str(n).encode(), 0)
            try:
                result, err = call(prepared), 0
            except OSError as e:
                result, err = -1, e.errno or errno.EIO
            left = int(os.pread(fd, 32, 0) or b"0")
            if left:
                os.pwrite(fd, b"0", 0)  # not reached: disarm before anything else allocates
            attempt = Attempt(n, left == 0, result, err)
            attempts.append(attempt)
            check(attempt, prepared)
            if not attempt.fired:
                return attempts
    finally:
        os.pwrite(fd, b"0", 0)
        os.close(fd)
    raise AssertionError(f"the call still allocated after {MAX_ALLOCATIONS} failed allocations in a row")
