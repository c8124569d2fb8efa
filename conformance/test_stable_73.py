"""Listing, statmount and setns: behaviours the fixes of Debian's 7.3 stable updates (7.3-rc7 to
7.3.4) changed, each a rule nobody had written down.

The method: each line of Debian 7.3.4's changelog that names a fix of the mount or namespace code
is a behaviour the older kernel gets wrong. The test states the fixed behaviour, with a control
beside each refusal, and was run on both ends (debian:7.3-rc7 without the fix, debian:7.3.4 with
it) and on debian:7.2.13, to say whether the 7.2 line has the fix (conformance/references.py).
7.2.13 lacks all five.

Not tested: "pidfs: don't let PIDFD_GET_INFO miss a reaped task". PIDFD_GET_INFO reads the exit
information before it looks the task up, so a task reaped between the two is answered with
neither; that is a race no user-space sequence makes happen on demand, and every deterministic
case tried (a zombie, a reaped child, an exited thread's PIDFD_THREAD pidfd, a zombie leader
before and after its group dies) gives the same answer on 7.3-rc7 and 7.3.4.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading

import pytest

from . import syscalls as k
from .helpers import in_child, member_of, private_mount_ns, scratch_tmpfs

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC
U64_MAX = (1 << 64) - 1
CLONE_NEWUTS, CLONE_NEWNET = 0x04000000, 0x40000000
STATMOUNT_FS_SUBTYPE = 0x100
STATMOUNT_SIZE = 512  # sizeof(struct statmount), strings after it
NR_LISTNS = 470  # the shared table of every architecture (include/uapi/asm-generic/unistd.h)
NS_GET_ID = 0x8008B70D  # _IOR(0xb7, 13, __u64)
LISTNS_CURRENT_USER = U64_MAX
NET_NS = CLONE_NEWNET  # listns's ns_type bits are the CLONE_NEW* bits

needs_ot = pytest.mark.needs_feature("open_tree_namespace")
# The rules are the features' (a kernel without OPEN_TREE_NAMESPACE is judged FEATURE ABSENT, not on
# the APIs around it).
pytestmark = needs_ot


# statmount: a buffer smaller than struct statmount

def _statmount_into(mnt_id: int, mask: int, bufsize: int, room: int = 1024) -> tuple[int, bytes]:
    """statmount(mnt_id, mask) told its buffer holds `bufsize` bytes, where `room` bytes of 0xA5 lie:
    (its errno, 0 for success; the whole `room` after the call)."""
    req = k._mnt_id_req(mnt_id, 0, mask)
    buf = ctypes.create_string_buffer(b"\xa5" * room, room)
    ret = k.libc.syscall(k.NR_STATMOUNT, req, buf, ctypes.c_size_t(bufsize), ctypes.c_uint(0))
    return (ctypes.get_errno() if ret < 0 else 0), buf.raw


@pytest.mark.rule("OT-STATMOUNT-BUFSIZE")
@pytest.mark.fix("STATMOUNT_RESERVED_STRING")
def test_statmount_string_request_into_a_small_buffer_is_eoverflow() -> None:
    # statmount reserves an empty string at the start of its string area for fields that have
    # none; a string request that yields nothing (a tmpfs has no subtype) leaves only that byte.
    # The kernel without the fix copied it to offset 512 of a buffer it was told is smaller, and
    # succeeded; a buffer of exactly 512 bytes was EOVERFLOW already.
    def child():
        private_mount_ns()
        mnt_id = k.mnt_id_of(scratch_tmpfs())
        small = 256
        control = _statmount_into(mnt_id, k.STATMOUNT_MNT_BASIC, small)
        got = _statmount_into(mnt_id, STATMOUNT_FS_SUBTYPE, small)
        return small, control, got
    small, (c_err, c_raw), (err, raw) = in_child(child)
    assert c_err == 0 and c_raw[small:] == b"\xa5" * (len(c_raw) - small), (
        f"control: statmount(STATMOUNT_MNT_BASIC) into a {small}-byte buffer gave {k.errname(c_err)} or wrote "
        "past it")
    past = [i for i in range(small, len(raw)) if raw[i] != 0xA5]
    assert not past, (f"OT-STATMOUNT-BUFSIZE: statmount(STATMOUNT_FS_SUBTYPE) of a tmpfs into a {small}-byte buffer "
                      f"({k.errname(err)}, size {struct.unpack_from('<I', raw, 0)[0]}) wrote past it at offsets "
                      f"{past[:4]}; a conforming kernel writes nothing beyond the buffer it is given")
    assert err == errno.EOVERFLOW, (f"OT-STATMOUNT-BUFSIZE: a string request into a {small}-byte buffer (no room "
                                    f"after struct statmount) gave {k.errname(err)}; a conforming kernel EOVERFLOW")
    assert raw == b"\xa5" * len(raw), "OT-STATMOUNT-BUFSIZE: the refused statmount wrote into the buffer"


# listmount: the last possible cursor

def _listmount_after(last: int, flags: int = 0, limit: int = 64) -> list[int]:
    """One listmount() call over the caller's namespace, resuming after the mount id `last`."""
    req = k._mnt_id_req(k.LSMT_ROOT, 0, last)  # listmount's param is the last id listed
    buf = (ctypes.c_uint64 * limit)()
    n = k._check(k.libc.syscall(k.NR_LISTMOUNT, req, buf, ctypes.c_size_t(limit), ctypes.c_uint(flags)))
    return list(buf[:n])


@pytest.mark.rule("OT-LISTMOUNT-CURSOR")
@pytest.mark.fix("LISTMOUNT_U64_MAX")
def test_listmount_after_the_largest_id_lists_nothing() -> None:
    # No mount id is above U64_MAX: resuming after it must end the walk, not wrap to 0 (the first
    # mount) and list the namespace again.
    def child():
        private_mount_ns()
        scratch_tmpfs()
        everything = _listmount_after(0)
        after_last = _listmount_after(everything[-1])
        reverse = _listmount_after(U64_MAX, k.LISTMOUNT_REVERSE)
        after_max = k.errno_of(lambda: _listmount_after(U64_MAX)) or _listmount_after(U64_MAX)
        return everything, after_last, reverse, after_max
    everything, after_last, reverse, after_max = in_child(child)
    assert len(everything) > 1 and after_last == [], (
        f"control: listmount from the start gave {len(everything)} ids, after the last one {after_last}")
    assert reverse == everything[::-1], "control: LISTMOUNT_REVERSE from U64_MAX did not list every mount, newest first"
    said = (f"{len(after_max)} ids ({after_max[:3]}...)" if isinstance(after_max, list) else k.errname(after_max))
    assert after_max == [], (f"OT-LISTMOUNT-CURSOR: listmount resuming after mount id U64_MAX gave {said}; "
                             "a conforming kernel lists nothing (no id is larger)")


# setns through a pidfd: a shared fs_struct

def _errno_in_fork(fn) -> int:
    """fn's errno (0: it worked) in a forked, single-threaded process."""
    pid = os.fork()
    if pid == 0:
        os._exit(min(k.errno_of(fn), 255))
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.rule("OT-SETNS-SHARED-FS-PIDFD")
@pytest.mark.fix("SETNS_SHARED_FS")
@needs_ot
def test_setns_through_a_pidfd_from_a_thread_is_einval() -> None:
    # Asking for the mount namespace with another type through a pidfd makes setns work on a
    # copy of the caller's fs_struct (prepare_nsset()); the copy has one user, yet the root and
    # cwd it sets are written back to the fs_struct every thread shares.
    def child():
        private_mount_ns()
        fd = k.open_tree(k.AT_FDCWD, scratch_tmpfs(), NS)
        pid, w = member_of(fd)
        try:
            pidfd = os.pidfd_open(pid)
            both = k.CLONE_NEWNS | CLONE_NEWUTS
            alone = _errno_in_fork(lambda: k.setns(pidfd, both))  # control: one thread
            root = os.stat("/")
            out: list[int] = []
            t = threading.Thread(target=lambda: out.append(k.errno_of(k.setns, pidfd, both)))
            t.start()
            t.join(30)
            now = os.stat("/")
            return alone, (out[0] if out else None), (root.st_dev, root.st_ino) == (now.st_dev, now.st_ino)
        finally:
            os.close(w)
            os.waitpid(pid, 0)
    alone, got, kept_root = in_child(child)
    assert alone == 0, f"control: setns(pidfd, CLONE_NEWNS|CLONE_NEWUTS) from a single thread gave {k.errname(alone)}"
    assert got == errno.EINVAL, (
        "OT-SETNS-SHARED-FS-PIDFD: setns(pidfd of a member, CLONE_NEWNS|CLONE_NEWUTS) from a thread (shared "
        f"fs_struct) gave {k.errname(got) if got is not None else 'no answer'}; a conforming kernel EINVAL")
    assert kept_root, "OT-SETNS-SHARED-FS-PIDFD: the thread's setns moved the root of the whole process"


# listns: a cursor just before an inactive namespace

def _listns(last: int, ns_type: int, user_ns_id: int = 0, limit: int = 64) -> list[int]:
    req = ctypes.create_string_buffer(struct.pack("<IIQIIQ", 32, 0, last, ns_type, 0, user_ns_id), 32)
    buf = (ctypes.c_uint64 * limit)()
    n = k._check(k.libc.syscall(NR_LISTNS, req, buf, ctypes.c_size_t(limit), ctypes.c_uint(0)))
    return list(buf[:n])


def _ns_id(path: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, NS_GET_ID, buf)
        return struct.unpack("<Q", buf)[0]
    finally:
        os.close(fd)


def _three_net_namespaces() -> tuple[int, int, int, list[object]]:
    """In a child: network namespaces a, b, c made in that order, a and c kept alive by an nsfs fd
    (active), b by a socket alone (alive but inactive: nothing can enter it); the caller back in its
    own. Their ids, and what keeps them."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    k.unshare(CLONE_NEWNET)
    a = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    k.unshare(CLONE_NEWNET)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    b_id = _ns_id("/proc/self/ns/net")
    k.unshare(CLONE_NEWNET)
    c = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    k.setns(home, CLONE_NEWNET)
    ids = []
    for fd in (a, c):
        buf = bytearray(8)
        fcntl.ioctl(fd, NS_GET_ID, buf)
        ids.append(struct.unpack("<Q", buf)[0])
    return ids[0], b_id, ids[1], [a, c, sock]


@pytest.mark.rule("EM-LISTNS-INACTIVE")
@pytest.mark.fix("LISTNS_INACTIVE")
@pytest.mark.parametrize("walk", ["by-type", "by-owner"])
def test_listns_goes_on_past_an_inactive_namespace(walk: str) -> None:
    # listns() resumes after the id it is given: the next namespace may be one nobody can enter
    # any more (a network namespace only a socket holds). It is not listed, and the walk goes on
    # to the next one; the kernel without the fix ended it there with ENOENT.
    owner = LISTNS_CURRENT_USER if walk == "by-owner" else 0

    def child():
        a_id, b_id, c_id, keep = _three_net_namespaces()
        everything = _listns(0, NET_NS, owner)
        after_a = k.errno_of(lambda: _listns(a_id, NET_NS, owner)) or _listns(a_id, NET_NS, owner)
        del keep  # held until here: the socket keeps b alive
        return a_id, b_id, c_id, everything, after_a
    a_id, b_id, c_id, everything, after_a = in_child(child)
    assert a_id in everything and c_id in everything and b_id not in everything, (
        f"control: listns from the start ({walk}) gave {everything}; it should list the active network "
        f"namespaces {a_id} and {c_id} but not {b_id}, which only a socket keeps")
    assert isinstance(after_a, list) and after_a[:1] == [c_id], (
        f"EM-LISTNS-INACTIVE: listns ({walk}) resuming after namespace {a_id}, whose next one ({b_id}) is "
        f"inactive, gave {after_a if isinstance(after_a, list) else k.errname(after_a)}; a conforming kernel "
        f"goes on past it to {c_id}")


# /proc/<pid>/net: no mountpoints below it

@pytest.mark.rule("OT-PROC-NET-NOMOUNT")
@pytest.mark.fix("PROC_NET_MOUNTPOINT")
@pytest.mark.parametrize("entry", ["dev", "unix"])
def test_no_mount_on_an_entry_below_proc_pid_net(entry: str) -> None:
    # Entries below /proc/<pid>/net are looked up afresh every time (the task may have changed
    # network namespace: proc_lookup_de() in fs/proc/generic.c gives them a d_revalidate that always
    # says stale), so a mount on one would be dropped at the next lookup: the kernel
    # refuses to make one a mountpoint (ENOENT, as for a dentry marked cant_mount()). Other proc
    # files, and /proc/<pid>/net itself, still take a bind mount.
    def child():
        private_mount_ns()
        src = scratch_tmpfs()
        with open(f"{src}/f", "w"):
            pass
        os.mkdir(f"{src}/d")
        before = len(k.listmount())
        got = k.errno_of(k.mount, f"{src}/f", f"/proc/{os.getpid()}/net/{entry}", None, k.MS_BIND)
        added = len(k.listmount()) - before
        on_file = k.errno_of(k.mount, f"{src}/f", "/proc/version", None, k.MS_BIND)
        on_net = k.errno_of(k.mount, f"{src}/d", f"/proc/{os.getpid()}/net", None, k.MS_BIND)
        return got, added, on_file, on_net
    got, added, on_file, on_net = in_child(child)
    assert on_file == 0 and on_net == 0, (f"control: a bind mount on /proc/version gave {k.errname(on_file)}, on "
                                          f"/proc/<pid>/net {k.errname(on_net)}; both should work")
    assert got == errno.ENOENT and added == 0, (
        f"OT-PROC-NET-NOMOUNT: a bind mount on /proc/<pid>/net/{entry} gave {k.errname(got)} and added {added} "
        "mounts; a conforming kernel refuses it with ENOENT (no entry below /proc/<pid>/net is a mountpoint)")
