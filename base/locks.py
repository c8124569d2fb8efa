"""One lock file per shared thing in the cache (apt's folder, a kernel being fetched, the
tools folder): two otns runs wait for each other there instead of clashing. The kernel drops
an flock when its holder dies, so a killed run never leaves a stale lock behind."""
from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(path: Path, waiting: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created with its folder) while the block runs.

    `waiting`, when given, is printed once if another run holds the lock, so a wait is explained.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        yield
