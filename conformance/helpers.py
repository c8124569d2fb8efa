"""Helpers that keep the test process untouched: work happens in forked children.

A child may unshare, setns, setuid or mount as it likes; its mount namespace dies with it,
so the caller's mount table (the host's, with --kernel host) never changes.
"""
from __future__ import annotations

import ctypes
import errno
import os
import pickle
import resource
import select
import signal
import socket
import struct
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

import pytest

from . import syscalls as k

NOBODY = 65534


# A child still running after this is stuck: the longest one (10,000 open_tree cycles) takes
# about 3 s under TCG. pytest's per-test limit in the guest is longer, so a stuck child is
# reported by the wait that was blocked on it.
CHILD_SECONDS = 45.0
_KILL_SECONDS = 5.0  # for a killed child to be gone (one stuck in the kernel may never be)


class ChildTimeout(AssertionError):
    """A forked child did not finish in time: the test fails (the kernel did not do what it waited for)."""


T = TypeVar("T")


def in_child(fn: Callable[[], T], timeout: float = CHILD_SECONDS,
             spawn: Callable[[], int] = os.fork) -> T:
    """Run fn in a forked child and return its result.

    An exception in the child is re-raised in the parent as AssertionError with its text.
    The wait is bounded: a child still running after timeout seconds, or when the parent is
    interrupted (pytest's per-test limit), is killed with everything it forked.
    spawn makes the child (0 in it, its pid in the parent): os.fork, or a clone3 call.
    """
    # Everything the wait needs is made before the fork. While the child lives, every page
    # either process writes is copied first; under TCG that fault costs more than the Python
    # work around it, so neither side does anything between fork and exit that it can do before.
    r, w = os.pipe()
    poller = select.poll()
    poller.register(r, select.POLLIN)
    deadline = time.monotonic() + timeout
    try:
        pid = spawn()
    except BaseException:
        os.close(r)
        os.close(w)
        raise
    if pid == 0:
        os.close(r)
        _child_main(fn, w)
    os.close(w)
    try:
        data, status = _collect(pid, r, poller, deadline, timeout, fn)
    finally:
        os.close(r)
    if not data:
        raise AssertionError(f"child died without a result ({_status_text(status)})")
    kind, value = pickle.loads(data)
    if kind == "err":
        raise AssertionError(value)
    return value


def in_clone3(flags: int, fn: Callable[[], T]) -> T:
    """in_child, with the child made by clone3(flags) (new namespaces from its first instruction)."""
    return in_child(fn, spawn=lambda: k.clone3(flags))


def _child_main(fn: Callable[[], object], w: int) -> NoReturn:
    me = os.getpid()
    try:
        os.setpgid(0, 0)  # a group of its own, so that what it forks is killed with it
        payload = ("ok", fn())
    except BaseException as e:  # report everything, including assertion failures
        payload = ("err", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
    if os.getpid() != me:
        os._exit(70)  # a process fn forked came back out of fn: it must neither report nor run on
    try:
        data = pickle.dumps(payload)
    except Exception as e:
        data = pickle.dumps(("err", f"unpicklable result: {e}"))
    view = memoryview(data)  # os.write, not a file object: fewer pages touched (see in_child)
    try:
        while view:
            view = view[os.write(w, view):]
    except OSError:
        os._exit(71)  # the parent stopped reading (it was interrupted): never return into its code
    os._exit(0)


def _collect(pid: int, r: int, poller: select.poll, deadline: float, timeout: float,
             fn: Callable) -> tuple[bytes, int]:
    """Read the child's result until it exits (not until EOF: something it forked may hold the
    pipe), then reap it. On a timeout or an exception here, kill it and re-raise."""
    with _watched(pid) as pidfd:
        chunks: list[bytes] = []
        poller.register(pidfd, select.POLLIN)
        exited = False
        while not exited:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildTimeout(f"{fn.__qualname__} timed out after {timeout:g} s in a forked child: "
                                   f"{stop_child(pid, pidfd)}")
            for fd, _ in poller.poll(left * 1000):
                if fd == pidfd:
                    exited = True
                elif not _read_some(r, chunks):
                    poller.unregister(r)
        os.set_blocking(r, False)
        while _read_some(r, chunks):
            pass
        _kill_group(pid)  # strays it forked; its pid cannot be reused before it is reaped
        _, status = os.waitpid(pid, 0)
        return b"".join(chunks), status


@contextmanager
def _watched(pid: int) -> Iterator[int]:
    """A pidfd on a child of ours for the block. If the block raises (an interrupted wait:
    pytest's per-test limit, Ctrl-C), the child is killed with its group first; a ChildTimeout
    has already stopped it."""
    pidfd = os.pidfd_open(pid)
    try:
        yield pidfd
    except ChildTimeout:
        raise
    except BaseException:
        stop_child(pid, pidfd)
        raise
    finally:
        os.close(pidfd)


def _read_some(fd: int, chunks: list[bytes]) -> bool:
    try:
        chunk = os.read(fd, 1 << 16)
    except BlockingIOError:
        return False
    chunks.append(chunk)
    return bool(chunk)


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def stop_child(pid: int, pidfd: int | None = None) -> str:
    """Kill a child of ours (and its process group) and reap it, waiting a bounded time.
    Says what happened; a child stuck in the kernel may not die, and is then left behind."""
    _kill_group(pid)
    try:
        own = pidfd is None
        if own:
            pidfd = os.pidfd_open(pid)
        try:
            select.select([pidfd], [], [], _KILL_SECONDS)
        finally:
            if own:
                os.close(pidfd)
        done, _ = os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, ProcessLookupError):  # already reaped
        return "killed"
    return "killed" if done else f"it did not die within {_KILL_SECONDS:g} s of SIGKILL (stuck in the kernel)"


def wait_child(pid: int, timeout: float = CHILD_SECONDS) -> int:
    """waitpid for a child a test forked itself, bounded: a child still running after timeout
    seconds (or when the wait is interrupted) is killed and the test fails. The wait status."""
    with _watched(pid) as pidfd:
        if not select.select([pidfd], [], [], timeout)[0]:
            raise ChildTimeout(f"a forked child timed out after {timeout:g} s: {stop_child(pid, pidfd)}")
        return os.waitpid(pid, 0)[1]


def fd_from_child(fn: Callable[[], int], timeout: float = CHILD_SECONDS) -> int:
    """Run fn in a forked child (as in_child) and return, as an fd of ours, the fd it returns.

    A failure of fn is re-raised here as in in_child; nothing waits on a socket that nobody
    will write to: the fd is already queued when the child has finished."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        def child() -> None:
            a.close()
            socket.send_fds(b, [b"fd"], [fn()])
        in_child(child, timeout)
        b.close()
        a.setblocking(False)
        try:
            _, fds, _, _ = socket.recv_fds(a, 16, 1)
        except BlockingIOError:
            fds = []
        if not fds:
            raise AssertionError(f"{fn.__qualname__} finished without passing an fd back")
        return fds[0]
    finally:
        a.close()
        b.close()


def fsmount_errno_in_child(prepare: Callable[[], object], flags: int) -> int:
    """The errno of fsmount(flags) on a fresh tmpfs context, from a child that first runs prepare
    (e.g. drops its capabilities); 0 when it succeeds. The context is made here, before the child
    drops anything: fsopen needs privilege of its own."""
    fs = k.tmpfs_context()
    try:
        def child():
            prepare()
            return k.errno_of(k.fsmount, fs, flags, 0)
        return in_child(child)
    finally:
        os.close(fs)


def fsmount_fd(flags: int, attr: int = 0, fstype: str = "tmpfs") -> int:
    """fsmount() of a fresh fstype superblock with these flags and attributes: the fd it returns
    (a mount namespace's with FSMOUNT_NAMESPACE). The test fails if the kernel refuses."""
    fs = k.fs_context(fstype)
    try:
        return k.fsmount(fs, flags, attr)
    except OSError as e:
        what = "a mount namespace fd" if flags & k.FSMOUNT_NAMESPACE else "a mount fd"
        pytest.fail(f"fsmount({fstype}, {flags:#x}, {attr:#x}) gave {k.errname(e.errno)}; "
                    f"a conforming kernel returns {what}")
    finally:
        os.close(fs)


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


def enter_userns(proc_fd: int | None = None, also: int = 0) -> None:
    """In a child: a new user namespace (and the namespaces in also), mapping the caller's ids to root in it.

    The caller's mount namespace stays owned by the parent user namespace: the caller
    becomes "foreign" to it (docs/semantics.md, "foreign caller"). proc_fd: an fd on procfs, for a caller
    whose root has none (see pivot_into_tmpfs). also: more CLONE_NEW* flags for the same
    unshare (with CLONE_NEWNS the caller owns its new, locked, mount namespace).
    """
    uid, gid = os.getuid(), os.getgid()
    k.unshare(k.CLONE_NEWUSER | also)
    where = "self" if proc_fd is not None else "/proc/self"
    write_file(f"{where}/uid_map", f"0 {uid} 1", proc_fd)
    write_file(f"{where}/setgroups", "deny", proc_fd)
    write_file(f"{where}/gid_map", f"0 {gid} 1", proc_fd)


_CAP_V3 = 0x20080522


def _edit_caps(edit: Callable[[ctypes.Array], None]) -> None:
    """capget, edit the six words (effective, permitted, inheritable; low then high), capset."""
    header = ctypes.create_string_buffer(struct.pack("<Ii", _CAP_V3, 0))
    data = (ctypes.c_uint32 * 6)()
    if k.libc.syscall(k.NR_CAPGET, header, data) < 0:
        raise OSError(ctypes.get_errno(), "capget")
    edit(data)
    if k.libc.syscall(k.NR_CAPSET, header, data) < 0:
        raise OSError(ctypes.get_errno(), "capset")


def drop_effective_caps() -> None:
    """Clear the effective capability set (permitted stays, as upstream's caps_down())."""
    def clear(data: ctypes.Array) -> None:
        data[0] = data[3] = 0  # effective, low and high words
    _edit_caps(clear)


def drop_effective_cap(cap: int) -> None:
    """Clear one capability from the effective set (the rest stay)."""
    def clear_one(data: ctypes.Array) -> None:
        data[0 if cap < 32 else 3] &= ~(1 << (cap % 32))
    _edit_caps(clear_one)


def raise_effective_caps() -> None:
    """Make the effective capability set the permitted one again (after drop_effective_caps)."""
    def restore(data: ctypes.Array) -> None:
        data[0], data[3] = data[1], data[4]  # effective = permitted, low and high words
    _edit_caps(restore)


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
    if k.libc.syscall(k.NR_PIVOT_ROOT, new_root.encode(), os.path.join(new_root, "old").encode()) < 0:
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


def fds_from_child(fn: Callable[[], tuple[object, list[int | None]]],
                   timeout: float = CHILD_SECONDS) -> tuple[object, list[int | None]]:
    """Run fn in a forked child (as in_child); fn returns (a result, a list of fds or None). The
    result and the fds, as fds of ours in the same places (None where fn gave None)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        def child() -> object:
            a.close()
            result, fds = fn()
            given = [fd for fd in fds if fd is not None]
            if given:
                socket.send_fds(b, [b"fds"], given)
            return result, [fd is not None for fd in fds]
        result, present = in_child(child, timeout)
        b.close()
        a.setblocking(False)
        got: list[int] = []
        if any(present):
            try:
                _, got, _, _ = socket.recv_fds(a, 16, len(present))
            except BlockingIOError:
                pass
            if len(got) != sum(present):
                for fd in got:
                    os.close(fd)
                raise AssertionError(f"{fn.__qualname__} passed {len(got)} fds back, not {sum(present)}")
        it = iter(got)
        return result, [next(it) if p else None for p in present]
    finally:
        a.close()
        b.close()


def fill_fd_table() -> list[int]:
    """Lower RLIMIT_NOFILE to just above the open fds and fill every free slot below it
    (in a child: the limit stays lowered). The fillers, to close when a slot is wanted back."""
    highest = max(int(n) for n in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 2, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    fillers: list[int] = []
    while True:
        try:
            fillers.append(os.open("/", os.O_PATH | os.O_CLOEXEC))
        except OSError as e:
            if e.errno != errno.EMFILE:
                raise
            return fillers


def gone(ns_id: int, wait: float = 5.0) -> bool:
    """Whether the namespace id has disappeared (freeing can lag behind the last reference)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            k.listmount(ns_id)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return True
            raise
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def member_of(fd: int) -> tuple[int, int]:
    """A forked process living in the mount namespace `fd`, until the write end is closed:
    (its pid, the write end)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            k.setns(fd, k.CLONE_NEWNS)
            os.read(r, 1)
        finally:
            os._exit(0)
    os.close(r)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the member has entered
        if os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink(f"/proc/self/fd/{fd}"):
            break
        time.sleep(0.01)
    return pid, w
