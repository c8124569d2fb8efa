#!/usr/bin/env python3
"""Wait, with a bound, until no other process holds apt's or dpkg's locks (scripts/setup calls it
before apt-get). A fresh cloud VM often runs unattended-upgrades or cloud-init's apt at first
boot; apt-get would fail at once with "Could not get lock".

apt and dpkg take these locks with fcntl (F_SETLK), so a test lock of the same kind sees them;
it is released at once. Standard library only: it runs before the project's venv exists.

Exit 0 when the locks are free, 1 (one line on stderr) when the bound passed first.
"""
from __future__ import annotations

import argparse
import errno
import fcntl
import os
import struct
import sys
import time

LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock",
         "/var/cache/apt/archives/lock")


def holder(path: str) -> int | None:
    """The pid holding `path`'s fcntl lock, 0 when held but the holder is unknown, None when free
    (or absent: nothing can hold a lock on a file that is not there)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        # F_GETLK: who would block a write lock (struct flock: type, whence, start, len, pid).
        probe = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        try:
            got = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
        except OSError as e:
            return 0 if e.errno in (errno.EACCES, errno.EAGAIN) else None
        kind, _, _, _, pid = struct.unpack("hhqqi", got)
        return None if kind == fcntl.F_UNLCK else pid
    finally:
        os.close(fd)


def who(pid: int) -> str:
    if not pid:
        return "another process"
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f"process {pid} ({f.read().strip()})"
    except OSError:
        return f"process {pid}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds to wait at most (default: %(default)s)")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between looks (default: %(default)s)")
    ap.add_argument("locks", nargs="*", default=list(LOCKS), help="lock files (default: apt's and dpkg's)")
    args = ap.parse_args(argv)
    deadline = time.monotonic() + args.timeout
    said = None
    while True:
        held = next(((p, pid) for p in args.locks if (pid := holder(p)) is not None), None)
        if held is None:
            return 0
        path, pid = held
        if time.monotonic() >= deadline:
            print(f"scripts/setup: {who(pid)} still holds {path} after {args.timeout:.0f} s; "
                  f"wait for it to finish (or stop it) and run scripts/setup again", file=sys.stderr)
            return 1
        if said != (path, pid):  # one line per holder, not one per look
            print(f"scripts/setup: waiting for {who(pid)} to release {path} "
                  f"(at most {args.timeout:.0f} s)", file=sys.stderr)
            said = (path, pid)
        time.sleep(min(args.every, max(deadline - time.monotonic(), 0.0)))


if __name__ == "__main__":
    sys.exit(main())
