"""Loaded with -p in the guest: the tests whose id contains --otns-stuck=TEXT never finish, as
with a kernel that never answers a syscall (--otns-stuck-how says how):

- child (default): the test waits in a forked child on a pipe nobody writes; the guest's
  per-test limit must fail it and the suite go on.
- wedge: the test process blocks SIGALRM and then waits itself, as a process stuck in the
  kernel would: no limit inside the guest can end that, only the host's --timeout (which must
  keep every test that finished).
- panic: the kernel panics (sysrq) in the middle of the run; the tests that finished before
  must still be reported.
"""
from __future__ import annotations

import os
import signal

import pytest

from conformance.helpers import in_child

from .guard import require_guest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--otns-stuck", default=None, help="block the tests whose id contains this")
    parser.addoption("--otns-stuck-how", choices=("child", "wedge", "panic"), default="child")


def _wait_forever() -> None:
    r, w = os.pipe()  # we hold the write end: the read never returns
    os.read(r, 1)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    text = item.config.getoption("--otns-stuck")
    if not text or text not in item.nodeid:
        return
    require_guest("block a test")
    how = item.config.getoption("--otns-stuck-how")
    print(f"\notns-test: blocking {item.nodeid} ({how})", flush=True)
    if how == "panic":
        with open("/proc/sys/kernel/sysrq", "w") as f:
            f.write("1")
        with open("/proc/sysrq-trigger", "w") as f:
            f.write("c")
    if how == "wedge":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        _wait_forever()
    in_child(_wait_forever)
