"""Paths `otns coverage` found no test taking: a full fd table, a thread that empties its own
namespace, a file system user space may not mount, a pidfd as the path, nsfs's own ioctls on the
new namespace's fd. Each is reachable from user space and each is a way the call can go wrong."""
from __future__ import annotations

import errno
import fcntl
import os
import threading

import pytest

from . import syscalls as k
from .helpers import enter_userns_and_mntns, fill_fd_table, in_child, private_mount_ns, scratch_tmpfs, write_file

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC
FM = k.FSMOUNT_NAMESPACE | k.FSMOUNT_CLOEXEC
NS_GET_ID = 0x8008B70D  # _IOR(0xb7, 13, __u64)
NS_GET_USERNS, NS_GET_PARENT, NS_GET_NSTYPE = 0xB701, 0xB702, 0xB703
MAX_NS = "/proc/sys/user/max_mnt_namespaces"


def _full_table_call(call) -> tuple[int, int]:
    """In a user namespace owning its mount namespace, with room for one more namespace: the
    call's errno with the fd table full, then with one slot free (0: it worked, so the failed
    call had given its charge back)."""
    enter_userns_and_mntns()
    k.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)
    write_file(MAX_NS, "2")  # this user namespace's own mount namespace, and one more
    prepared = call("prepare")
    fillers = fill_fd_table()
    full = k.errno_of(call, prepared)
    os.close(fillers.pop())
    os.close(fillers.pop())  # a slot for what prepare opens, one for the call
    after = k.errno_of(call, call("prepare"))
    return full, after


@pytest.mark.rule("GB-OPEN-TREE")
@pytest.mark.needs_feature("open_tree_namespace")
def test_open_tree_namespace_with_a_full_fd_table() -> None:
    def child():
        src = {}

        def call(arg):
            if arg == "prepare":
                if "path" not in src:
                    src["path"] = scratch_tmpfs()
                return src["path"]
            return k.open_tree(k.AT_FDCWD, arg, NS)
        return _full_table_call(call)
    full, after = in_child(child)
    assert full == errno.EMFILE, f"open_tree(OPEN_TREE_NAMESPACE) with the fd table full gave {k.errname(full)}, not EMFILE"
    assert after == 0, (f"with a slot free again open_tree gave {k.errname(after)}: the call refused for want of "
                        "an fd kept its max_mnt_namespaces charge")


@pytest.mark.rule("GB-OPEN-TREE")
@pytest.mark.needs_feature("open_tree_namespace")
def test_open_tree_attr_namespace_with_a_full_fd_table() -> None:
    def child():
        src = {}

        def call(arg):
            if arg == "prepare":  # a tmpfs of its own: "/" holds locked children, which refuse the copy
                return src.setdefault("path", scratch_tmpfs())
            return k.open_tree_attr(k.AT_FDCWD, arg, NS)
        return _full_table_call(call)
    full, after = in_child(child)
    assert full == errno.EMFILE, f"open_tree_attr(OPEN_TREE_NAMESPACE) with the fd table full gave {k.errname(full)}, not EMFILE"
    assert after == 0, (f"with a slot free again open_tree_attr gave {k.errname(after)}: the call refused for want "
                        "of an fd kept its max_mnt_namespaces charge")


@pytest.mark.rule("GB-FSMOUNT")
@pytest.mark.needs_feature("fsmount_namespace")
def test_fsmount_namespace_with_a_full_fd_table() -> None:
    def child():
        def call(arg):
            if arg == "prepare":
                return k.tmpfs_context()
            return k.fsmount(arg, FM)
        return _full_table_call(call)
    full, after = in_child(child)
    assert full == errno.EMFILE, f"fsmount(FSMOUNT_NAMESPACE) with the fd table full gave {k.errname(full)}, not EMFILE"
    assert after == 0, (f"with a slot free again fsmount gave {k.errname(after)}: the call refused for want of "
                        "an fd kept its max_mnt_namespaces charge")


@pytest.mark.rule("EM-THREAD")
@pytest.mark.needs_feature("unshare_empty_mntns")
def test_a_thread_empties_only_its_own_namespace() -> None:
    # A thread shares root and cwd with its process; unshare gives it a copy of its own first
    # (ksys_unshare), so the empty namespace, its root and cwd are the thread's alone.
    def child():
        private_mount_ns()
        own, root = k.own_mntns_id(), os.stat("/")
        seen: dict = {}

        def thread():
            try:
                k.unshare(k.UNSHARE_EMPTY_MNTNS)
                seen["ns"] = k.statmount(k.listmount()[0]).ns_id
                seen["mounts"] = len(k.listmount())
            except OSError as e:
                seen["err"] = e.errno
        t = threading.Thread(target=thread)
        t.start()
        t.join(30)
        after = os.stat("/")
        return own, k.own_mntns_id(), (root.st_dev, root.st_ino) == (after.st_dev, after.st_ino), seen
    own, now, same_root, seen = in_child(child)
    assert "err" not in seen, f"unshare(UNSHARE_EMPTY_MNTNS) in a thread gave {k.errname(seen['err'])}"
    assert seen.get("mounts") == 1 and seen.get("ns") not in (None, own), (
        f"the thread's new namespace: {seen}; a conforming kernel gives it an empty namespace of its own")
    assert now == own and same_root, "the other threads lost their namespace or root when one thread emptied its own"


@pytest.mark.rule("FM-NOUSER")
@pytest.mark.needs_feature("fsmount_namespace")
def test_fsmount_namespace_of_an_internal_filesystem_is_einval() -> None:
    # pipefs is the kernel's own (SB_NOUSER): no mount of it may reach user space, in a new
    # namespace or anywhere (sys_fsmount checks after creating the mount).
    def child():
        private_mount_ns()
        fs = k.fs_context("pipefs")
        before = set(os.listdir("/proc/self/fd"))
        got = k.errno_of(k.fsmount, fs, FM)
        return got, set(os.listdir("/proc/self/fd")) == before
    got, no_fd = in_child(child)
    assert got == errno.EINVAL, f"fsmount(pipefs, FSMOUNT_NAMESPACE) gave {k.errname(got)}; a conforming kernel EINVAL"
    assert no_fd, "the refused fsmount left an fd"


@pytest.mark.rule("OT-DIR")
@pytest.mark.needs_feature("open_tree_namespace")
def test_a_pidfd_is_no_directory() -> None:
    # A pidfd's file passes may_copy_tree()'s pidfs exception, then meets the directory check.
    pidfd = os.pidfd_open(os.getpid())
    try:
        got = k.errno_of(k.open_tree, pidfd, "", NS | k.AT_EMPTY_PATH)
    finally:
        os.close(pidfd)
    assert got == errno.ENOTDIR, f"open_tree(pidfd, AT_EMPTY_PATH|OPEN_TREE_NAMESPACE) gave {k.errname(got)}, not ENOTDIR"


def _ioctl_errno(fd: int, request: int) -> int:
    """The errno of an ioctl with a NULL argument; 0 when it succeeded (any fd it made closed)."""
    try:
        got = fcntl.ioctl(fd, request, 0)
    except OSError as e:
        return e.errno
    if got > 2:
        os.close(got)
    return 0


@pytest.mark.rule("OT-NSFS-IOCTL")
@pytest.mark.needs_feature("open_tree_namespace")
def test_nsfs_answers_on_the_namespace_fd_as_on_any() -> None:
    fd = k.open_tree(k.AT_FDCWD, "/", NS)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, NS_GET_ID, buf)
        ns_id = int.from_bytes(buf, "little")
        nstype = fcntl.ioctl(fd, NS_GET_NSTYPE)
        owner = fcntl.ioctl(fd, NS_GET_USERNS)
        owner_is_ours = os.fstat(owner).st_ino == os.stat("/proc/self/ns/user").st_ino
        os.close(owner)
        parent = _ioctl_errno(fd, NS_GET_PARENT)
        info_null = _ioctl_errno(fd, k.NS_MNT_GET_INFO)
        mntns_id = k.mntns_id(fd)
    finally:
        os.close(fd)
    assert ns_id == mntns_id, f"NS_GET_ID gave {ns_id}, NS_GET_MNTNS_ID {mntns_id}: one namespace, two ids"
    assert nstype == k.CLONE_NEWNS, f"NS_GET_NSTYPE gave {nstype:#x}, not CLONE_NEWNS"
    assert owner_is_ours, "NS_GET_USERNS of root's new namespace is not root's user namespace"
    assert parent == errno.EINVAL, f"NS_GET_PARENT on a mount namespace gave {k.errname(parent)}, not EINVAL (no parent)"
    assert info_null == errno.EINVAL, f"NS_MNT_GET_INFO without a buffer gave {k.errname(info_null)}, not EINVAL"




@pytest.mark.rule("OT-NSFS-IOCTL")
@pytest.mark.needs_feature("open_tree_namespace")
def test_an_unknown_nsfs_ioctl_is_enotty() -> None:
    fd = k.open_tree(k.AT_FDCWD, "/", NS)
    try:
        unknown = _ioctl_errno(fd, 0xB7FE)  # _IO(NSIO, 0xfe): no such nsfs request
        unknown_sized = _ioctl_errno(fd, 0x8010B7FE)  # an extensible-looking one nsfs does not know
    finally:
        os.close(fd)
    assert unknown == errno.ENOTTY, f"an unknown nsfs ioctl gave {k.errname(unknown)}, not ENOTTY"
    assert unknown_sized == errno.ENOTTY, f"an unknown sized nsfs ioctl gave {k.errname(unknown_sized)}, not ENOTTY"


@pytest.mark.rule("EM-USERNS-FAIL")
@pytest.mark.needs_feature("unshare_empty_mntns")
def test_a_refused_empty_namespace_keeps_the_callers_user_namespace() -> None:
    # unshare(CLONE_NEWUSER | UNSHARE_EMPTY_MNTNS) makes the credentials of the new user namespace
    # first; when the empty namespace cannot be charged (max_mnt_namespaces), neither is installed.
    def child():
        enter_userns_and_mntns()
        write_file(MAX_NS, "1")  # its own mount namespace: no room for another, here or below
        userns, uid = os.readlink("/proc/self/ns/user"), os.getuid()
        own = k.own_mntns_id()
        got = k.errno_of(k.unshare, k.CLONE_NEWUSER | k.UNSHARE_EMPTY_MNTNS)
        return got, os.readlink("/proc/self/ns/user") == userns, os.getuid() == uid, k.own_mntns_id() == own
    got, same_userns, same_uid, same_mntns = in_child(child)
    assert got == errno.ENOSPC, (f"unshare(CLONE_NEWUSER|UNSHARE_EMPTY_MNTNS) at max_mnt_namespaces gave "
                                 f"{k.errname(got)}, not ENOSPC")
    assert same_userns and same_uid and same_mntns, "the refused unshare installed part of what it was asked for"
