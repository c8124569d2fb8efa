"""Thin ctypes wrappers for the mount-namespace syscalls (x86_64 numbers)."""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

NR_OPEN_TREE = 428
NR_SETNS = 308
NR_OPEN_TREE_ATTR = 467

AT_FDCWD = -100
OPEN_TREE_CLONE = 0x1
OPEN_TREE_NAMESPACE = 0x2
OPEN_TREE_CLOEXEC = os.O_CLOEXEC  # 0x80000
AT_SYMLINK_NOFOLLOW = 0x100
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
KNOWN_FLAGS = (OPEN_TREE_CLONE | OPEN_TREE_NAMESPACE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW
               | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_RECURSIVE)

CLONE_NEWNS = 0x00020000

NS_GET_USERNS = 0xB701
NS_GET_NSTYPE = 0xB703
NS_GET_MNTNS_ID = 0x8008B705


def _check(ret: int) -> int:
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return ret


def open_tree(dfd: int, path: str | bytes | None, flags: int) -> int:
    """open_tree(2); path None passes a NULL pointer."""
    p = None if path is None else (path.encode() if isinstance(path, str) else path)
    return _check(libc.syscall(NR_OPEN_TREE, ctypes.c_int(dfd), p, ctypes.c_uint(flags)))


def setns(fd: int, nstype: int) -> None:
    _check(libc.syscall(NR_SETNS, ctypes.c_int(fd), ctypes.c_int(nstype)))


def ns_ioctl(fd: int, request: int) -> int:
    return fcntl.ioctl(fd, request)


def mntns_id(fd: int) -> int:
    buf = bytearray(8)
    fcntl.ioctl(fd, NS_GET_MNTNS_ID, buf)
    return int.from_bytes(buf, "little")


def errno_of(fn, *args) -> int:
    """Call fn; 0 if it succeeded (closing any fd it returned), else the errno."""
    try:
        fd = fn(*args)
    except OSError as e:
        return e.errno
    if isinstance(fd, int) and fd >= 0:
        os.close(fd)
    return 0


def errname(e: int) -> str:
    return "success" if e == 0 else errno.errorcode.get(e, str(e))
