"""Loaded with -p in the guest: panics the kernel through sysrq before any test runs."""
from __future__ import annotations

from .guard import require_guest


def pytest_sessionstart(session) -> None:
    if session.config.option.collectonly:
        return  # otns checks the arguments on the host by collecting first: act only in a real run
    require_guest("panic the kernel")
    with open("/proc/sys/kernel/sysrq", "w") as f:
        f.write("1")
    with open("/proc/sysrq-trigger", "w") as f:
        f.write("c")
