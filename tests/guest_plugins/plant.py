"""Loaded with -p in the guest: a guest that plants, at the top of its results folder and at the
bottom of --plant-depth nested folders with names of --plant-name characters, what would harm
the host's users if it stayed: a block device (8,0), a character device (1,1), a fifo, a link
to /etc/shadow, a file of mode 6777, a mode-4755 copy of /usr/bin/id, a file created with mode
4755, a set-gid folder and a file with capabilities. Each attempt prints
"otns-test: plant WHERE/NAME: ok" or the error the guest got, so the host's test sees which
ones the share refused and which the sweep had to clean.
"""
from __future__ import annotations

import errno
import os
import stat
import struct
from collections.abc import Callable
from pathlib import Path

from .guard import require_guest

# struct vfs_cap_data, revision 2, effective: CAP_SETUID (7) permitted and effective.
CAP_SETUID_BLOB = struct.pack("<IIIII", 0x02000001, 1 << 7, 0, 0, 0)


def pytest_addoption(parser) -> None:
    parser.addoption("--plant-depth", type=int, default=20)
    parser.addoption("--plant-name", type=int, default=250, help="characters per nested folder name")


def _try(where: str, name: str, action: Callable[[], None]) -> None:
    try:
        action()
        outcome = "ok"
    except OSError as e:
        outcome = errno.errorcode.get(e.errno, str(e.errno))
    print(f"otns-test: plant {where}/{name}: {outcome}", flush=True)


def _write(fd: int, name: str, data: bytes, create_mode: int, mode: int | None = None) -> None:
    f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, create_mode, dir_fd=fd)
    try:
        os.write(f, data)
        if mode is not None:
            os.fchmod(f, mode)
    finally:
        os.close(f)


def _plant(fd: int, where: str) -> None:
    _try(where, "disk", lambda: os.mknod("disk", 0o666 | stat.S_IFBLK, os.makedev(8, 0), dir_fd=fd))
    _try(where, "mem", lambda: os.mknod("mem", 0o666 | stat.S_IFCHR, os.makedev(1, 1), dir_fd=fd))
    _try(where, "fifo", lambda: os.mkfifo("fifo", 0o666, dir_fd=fd))
    _try(where, "shadow", lambda: os.symlink("/etc/shadow", "shadow", dir_fd=fd))
    _try(where, "all-bits", lambda: _write(fd, "all-bits", b"#!/bin/sh\nid\n", 0o600, 0o6777))
    _try(where, "id", lambda: _write(fd, "id", Path("/usr/bin/id").read_bytes(), 0o600, 0o4755))
    _try(where, "born-suid", lambda: _write(fd, "born-suid", b"x", 0o4755))
    _try(where, "sgid-dir", lambda: (os.mkdir("sgid-dir", dir_fd=fd), os.chmod("sgid-dir", 0o2777, dir_fd=fd)))

    def caps() -> None:
        _write(fd, "caps", Path("/usr/bin/id").read_bytes(), 0o755)
        os.setxattr(f"/proc/self/fd/{fd}/caps", "security.capability", CAP_SETUID_BLOB)
    _try(where, "caps", caps)


def pytest_unconfigure(config) -> None:
    if config.option.collectonly:
        return  # otns checks the arguments on the host by collecting first: act only in a real run
    require_guest("plant device nodes and set-uid files in the results folder")
    results = Path(config.option.xmlpath).parent
    depth, length = config.getoption("--plant-depth"), config.getoption("--plant-name")
    fd = os.open(results, os.O_RDONLY | os.O_DIRECTORY)
    _plant(fd, "top")
    # Folder by folder through descriptors: the whole path is far past PATH_MAX.
    for i in range(depth):
        name = f"{i:05d}".ljust(length, "d")
        os.mkdir(name, dir_fd=fd)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    _plant(fd, "bottom")
    os.close(fd)
    print(f"otns-test: planted at depth {depth}, a path of {depth * (length + 1)} characters", flush=True)
