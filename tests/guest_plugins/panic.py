"""Loaded with -p in the guest: panics the kernel through sysrq before any test runs."""
from __future__ import annotations

from .guard import require_guest


def pytest_sessionstart(session) -> None:
    require_guest("panic the kernel")
    with open("/proc/sys/kernel/sysrq", "w") as f:
        f.write("1")
    with open("/proc/sysrq-trigger", "w") as f:
        f.write("c")
