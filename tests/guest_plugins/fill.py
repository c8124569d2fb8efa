"""Loaded with -p in the guest: fills the disk that holds the results folder (through the
share) before any test runs, as a full disk on the host would; the run must end with one line
that names the path, and keep what was written."""
from __future__ import annotations

import errno
import os
from pathlib import Path

from .guard import require_guest


def pytest_sessionstart(session) -> None:
    if session.config.option.collectonly:
        return  # otns checks the arguments on the host by collecting first: act only in a real run
    require_guest("fill the host's disk")
    filler = Path(session.config.option.xmlpath).parent / "filler"
    block = b"\0" * (1 << 20)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while True:
            os.write(fd, block)
            os.fsync(fd)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    print("otns-test: disk filled", flush=True)
