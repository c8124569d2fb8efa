"""Loaded with -p in the guest: the suite never finishes, as with a kernel that deadlocks a test."""
from __future__ import annotations

import time

from .guard import require_guest


def pytest_sessionstart(session) -> None:
    if session.config.option.collectonly:
        return  # otns checks the arguments on the host by collecting first: act only in a real run
    require_guest("hang the guest")
    print("otns-test: hanging now", flush=True)
    while True:
        time.sleep(3600)
