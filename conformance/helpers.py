"""Helpers that keep the test process untouched: work happens in forked children.

A child may unshare, setns, setuid or mount as it likes; its mount namespace dies with it,
so the caller's mount table (the host's, with --kernel host) never changes.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import struct
import tempfile
import traceback
from collections.abc import Callable

from . import syscalls as k

NOBODY = 65534


def in_child(fn: Callable[[], object]) -> object:
    """Run fn in a forked child and return its result.

    An exception in the child is re-raised in the parent as AssertionError with its text.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            payload = ("ok", fn())
        except BaseException as e:  # report everything, including assertion failures
            payload = ("err", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        try:
            data = pickle.dumps(payload)
        except Exception as e:
            data = pickle.dumps(("err", f"unpicklable result: {e}"))
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise AssertionError(f"child died without a result (wait status {status})")
    kind, value = pickle.loads(data)
    if kind == "err":
        raise AssertionError(value)
    return value


def private_mount_ns() -> None:
    """In a child: a mount namespace of its own in which nothing propagates back."""
    k.unshare(k.CLONE_NEWNS)
    k.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)


def slave_mount_ns() -> None:
    """In a child: a mount namespace of its own, receiving but never sending propagation."""
    k.unshare(k.CLONE_NEWNS)
    k.mount(None, "/", None, k.MS_REC | k.MS_SLAVE)


def write_file(path: str, text: str, dir_fd: int | None = None) -> None:
    fd = os.open(path, os.O_WRONLY, dir_fd=dir_fd)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enter_userns(proc_fd: int | None = None) -> None:
    """In a child: a new user namespace (only), mapping the caller's ids to root in it.

    The caller's mount namespace stays owned by the parent user namespace: the caller
    becomes "foreign" to it (SEMANTICS.md rule 8). proc_fd: an fd on procfs, for a caller
    whose root has none (see pivot_into_tmpfs).
    """
    uid, gid = os.getuid(), os.getgid()
    k.unshare(k.CLONE_NEWUSER)
    where = "self" if proc_fd is not None else "/proc/self"
    write_file(f"{where}/uid_map", f"0 {uid} 1", proc_fd)
    write_file(f"{where}/setgroups", "deny", proc_fd)
    write_file(f"{where}/gid_map", f"0 {gid} 1", proc_fd)


_CAP_V3 = 0x20080522
_NR_CAPGET, _NR_CAPSET = 125, 126


def drop_effective_caps() -> None:
    """Clear the effective capability set (permitted stays, as upstream's caps_down())."""
    libc = k.libc
    header = ctypes.create_string_buffer(struct.pack("<Ii", _CAP_V3, 0))
    data = (ctypes.c_uint32 * 6)()
    if libc.syscall(_NR_CAPGET, header, data) < 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[0] = data[3] = 0  # effective, low and high words
    if libc.syscall(_NR_CAPSET, header, data) < 0:
        raise OSError(ctypes.get_errno(), "capset")


def become_nobody() -> None:
    """Drop to an unprivileged uid: no capabilities anywhere."""
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def scratch_tmpfs(parent: str | None = None) -> str:
    """In a child with a private mount namespace: a fresh tmpfs on a new directory."""
    path = tempfile.mkdtemp(prefix="otns-", dir=parent)
    k.mount("otns", path, "tmpfs", 0, "size=4m")
    return path


def pivot_into_tmpfs() -> int:
    """In a child with a private mount namespace: make a bare tmpfs the root, nothing below it.

    Used where the rules depend on "/" having no submounts. Returns an fd that keeps the old
    procfs reachable (for enter_userns), since the new root has none.
    """
    proc_fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY)
    new_root = tempfile.mkdtemp(prefix="otns-root-")
    k.mount("otns-root", new_root, "tmpfs", 0, "size=4m")
    os.mkdir(os.path.join(new_root, "old"))
    if k.libc.syscall(155, new_root.encode(), os.path.join(new_root, "old").encode()) < 0:  # pivot_root
        raise OSError(ctypes.get_errno(), "pivot_root")
    os.chdir("/")
    k.umount2("/old", k.MNT_DETACH)
    os.rmdir("/old")
    return proc_fd


def ns_inode(path: str) -> int:
    return os.stat(path).st_ino


def fd_kind(fd: int) -> str:
    """mntns (an nsfs mount namespace fd), detached (a mount not in our namespace: a clone),
    or opath (an O_PATH fd on a mount of ours)."""
    link = os.readlink(f"/proc/self/fd/{fd}")
    if link.startswith("mnt:["):
        return "mntns"
    with open(f"/proc/self/fdinfo/{fd}") as f:
        info = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    mnt_id = info["mnt_id"].strip()
    with open("/proc/self/mountinfo") as f:
        ours = {line.split()[0] for line in f}
    return "opath" if mnt_id in ours else "detached"


def enter_userns_and_mntns() -> None:
    """In a child: root of a new user namespace that owns a new mount namespace (one
    unshare(CLONE_NEWUSER | CLONE_NEWNS)). The caller is not foreign there; every mount copied
    into the new namespace from the old one is locked."""
    uid, gid = os.getuid(), os.getgid()
    k.unshare(k.CLONE_NEWUSER | k.CLONE_NEWNS)
    write_file("/proc/self/uid_map", f"0 {uid} 1")
    write_file("/proc/self/setgroups", "deny")
    write_file("/proc/self/gid_map", f"0 {gid} 1")
