"""Loaded with -p in the guest: the tests whose id contains --otns-stuck=TEXT never finish, as
with a kernel that never answers a syscall.

By default such a test waits in a forked child on a pipe nobody writes: the guest's per-test
limit must fail it and the suite go on. With --otns-stuck-wedge the test process first blocks
SIGALRM and then waits itself, as a process stuck in the kernel would: no limit inside the
guest can end that, only the host's --timeout (which must keep every test that finished).
"""
from __future__ import annotations

import os
import signal

import pytest

from conformance.helpers import in_child

from .guard import require_guest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--otns-stuck", default=None, help="block the tests whose id contains this")
    parser.addoption("--otns-stuck-wedge", action="store_true", help="block so that no per-test limit ends it")


def _wait_forever() -> None:
    r, w = os.pipe()  # we hold the write end: the read never returns
    os.read(r, 1)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    text = item.config.getoption("--otns-stuck")
    if not text or text not in item.nodeid:
        return
    require_guest("block a test")
    print(f"\notns-test: blocking {item.nodeid}", flush=True)
    if item.config.getoption("--otns-stuck-wedge"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        _wait_forever()
    in_child(_wait_forever)
