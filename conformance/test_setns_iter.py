"""Entering a feature's namespace every way setns() offers, and finding it among the kernel's mount
namespaces (nsfs's NS_MNT_GET_NEXT/PREV): the paths `otns coverage` showed no test took.

setns() into a mount namespace ends in mntns_install() (fs/namespace.c): CAP_SYS_ADMIN over the
namespace's owner and CAP_SYS_CHROOT and CAP_SYS_ADMIN in the caller's own user namespace, else
EPERM; a caller sharing its fs_struct (a thread, a CLONE_FS child) gets EINVAL. sys_setns()
(kernel/nsproxy.c) checks the type asked for against the fd's, and takes a pidfd too.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
import threading

import pytest

from . import syscalls as k
from .helpers import (
    drop_effective_cap,
    enter_userns,
    fds_from_child,
    fill_fd_table,
    fsmount_fd,
    gone,
    in_child,
    member_of,
    private_mount_ns,
    scratch_tmpfs,
    write_file,
)

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC
CAP_SYS_CHROOT, CAP_SYS_ADMIN = 18, 21
CLONE_NEWPID = 0x20000000
OVERFLOW = 65534  # /proc/sys/kernel/overflowuid: an id no mapping reaches
NS_MNT_GET_NEXT = 0x8010B70B  # _IOR(0xb7, 11, struct mnt_ns_info)
NS_MNT_GET_PREV = 0x8010B70C  # _IOR(0xb7, 12, struct mnt_ns_info)

needs_ot = pytest.mark.needs_feature("open_tree_namespace")


def own_root_id() -> int:
    return os.stat("/").st_ino


@pytest.mark.rule("OT-SETNS-PERM")
@needs_ot
@pytest.mark.parametrize("missing", ["CAP_SYS_CHROOT", "CAP_SYS_ADMIN"])
def test_setns_needs_chroot_and_admin(missing: str) -> None:
    def child():
        private_mount_ns()
        fd = k.open_tree(k.AT_FDCWD, scratch_tmpfs(), NS)
        drop_effective_cap(CAP_SYS_CHROOT if missing == "CAP_SYS_CHROOT" else CAP_SYS_ADMIN)
        before = k.own_mntns_id()
        got = k.errno_of(k.setns, fd, k.CLONE_NEWNS)
        return got, k.own_mntns_id() == before
    got, stayed = in_child(child)
    assert got == errno.EPERM, (f"setns into an OPEN_TREE_NAMESPACE namespace without {missing} gave "
                                f"{k.errname(got)}; a conforming kernel EPERM (mntns_install)")
    assert stayed, "the refused setns moved the caller all the same"


@pytest.mark.rule("OT-SETNS-PERM")
@needs_ot
def test_setns_from_a_user_namespace_into_roots_copy_is_eperm() -> None:
    # The copy is owned by the initial user namespace (root made it); a caller whose capabilities
    # are only its own user namespace's has no CAP_SYS_ADMIN over it.
    def child():
        private_mount_ns()
        fd = k.open_tree(k.AT_FDCWD, scratch_tmpfs(), NS)
        enter_userns()
        return k.errno_of(k.setns, fd, k.CLONE_NEWNS)
    got = in_child(child)
    assert got == errno.EPERM, (f"setns from a user namespace into a namespace root made gave {k.errname(got)}; "
                                "a conforming kernel EPERM (no CAP_SYS_ADMIN over its owner)")


@pytest.mark.rule("OT-SETNS-SHARED-FS")
@needs_ot
def test_setns_from_a_thread_is_einval() -> None:
    # A thread shares its fs_struct (root, cwd) with the others: entering a mount namespace would
    # move their root too, so the kernel refuses (fs->users != 1).
    def child():
        private_mount_ns()
        fd = k.open_tree(k.AT_FDCWD, scratch_tmpfs(), NS)
        before = k.own_mntns_id()
        out: list[int] = []
        t = threading.Thread(target=lambda: out.append(k.errno_of(k.setns, fd, k.CLONE_NEWNS)))
        t.start()
        t.join(30)
        return (out[0] if out else None), k.own_mntns_id() == before
    got, stayed = in_child(child)
    assert got == errno.EINVAL, (f"setns into the namespace from a thread (shared fs_struct) gave "
                                 f"{k.errname(got) if got is not None else 'no answer'}; a conforming kernel EINVAL")
    assert stayed, "the refused setns from a thread moved the process"


@pytest.mark.rule("OT-SETNS-TYPE")
@needs_ot
def test_setns_checks_the_type_asked_for() -> None:
    def child():
        private_mount_ns()
        fd = k.open_tree(k.AT_FDCWD, scratch_tmpfs(), NS)
        wrong = k.errno_of(k.setns, fd, CLONE_NEWPID)
        ns_id = k.mntns_id(fd)
        any_type = k.errno_of(k.setns, fd, 0)
        return wrong, any_type, ns_id, k.own_mntns_id()
    wrong, any_type, ns_id, now = in_child(child)
    assert wrong == errno.EINVAL, f"setns(mntns fd, CLONE_NEWPID) gave {k.errname(wrong)}; a conforming kernel EINVAL"
    assert any_type == 0 and now == ns_id, f"setns(fd, 0) (any type) gave {k.errname(any_type)}; it must enter"


@pytest.mark.rule("OT-SETNS-PIDFD")
@needs_ot
def test_setns_through_a_pidfd_enters_the_members_namespace() -> None:
    # A process living in the feature's namespace is entered through its pidfd as through the
    # namespace fd; a pidfd with no type asked for is refused (check_setns_flags).
    def child():
        private_mount_ns()
        fd = k.open_tree(k.AT_FDCWD, scratch_tmpfs(), NS)
        ns_id = k.mntns_id(fd)
        pid, w = member_of(fd)
        pidfd = os.pidfd_open(pid)
        try:
            no_type = k.errno_of(k.setns, pidfd, 0)
            got = k.errno_of(k.setns, pidfd, k.CLONE_NEWNS)
            return no_type, got, ns_id, k.own_mntns_id()
        finally:
            os.close(w)
            os.waitpid(pid, 0)
    no_type, got, ns_id, now = in_child(child)
    assert no_type == errno.EINVAL, f"setns(pidfd, 0) gave {k.errname(no_type)}; a conforming kernel EINVAL"
    assert got == 0, f"setns(pidfd of a member, CLONE_NEWNS) gave {k.errname(got)}; a conforming kernel enters"
    assert now == ns_id, "setns through the member's pidfd did not land in the feature's namespace"


def _adjacent(fd: int, request: int) -> tuple[int, int, int]:
    """NS_MNT_GET_NEXT/PREV: (the fd it returns, that namespace's id, its mount count)."""
    buf = bytearray(struct.pack("<IIQ", 16, 0, 0))
    new = fcntl.ioctl(fd, request, buf)
    _, nr_mounts, ns_id = struct.unpack("<IIQ", bytes(buf))
    return new, ns_id, nr_mounts


@pytest.mark.rule("OT-NS-LIST")
@needs_ot
@pytest.mark.needs_feature("fsmount_namespace")
def test_new_namespaces_join_the_list_of_mount_namespaces() -> None:
    # Made one after the other, an OPEN_TREE_NAMESPACE namespace and an FSMOUNT_NAMESPACE one are
    # neighbours in nsfs's id-ordered walk: NEXT from the first is the second (with its id and
    # mount count), PREV from the second the first; the newest has no next once the walk ends.
    def child():
        private_mount_ns()
        src = scratch_tmpfs()
        os.mkdir(f"{src}/sub")
        k.mount("otns-sub", f"{src}/sub", "tmpfs", 0, "size=1m")
        a = k.open_tree(k.AT_FDCWD, src, NS | k.AT_RECURSIVE)
        b = fsmount_fd(k.FSMOUNT_NAMESPACE | k.FSMOUNT_CLOEXEC)
        a_id, b_id = k.mntns_id(a), k.mntns_id(b)
        a_mounts, b_mounts = k.mnt_ns_nr_mounts(a), k.mnt_ns_nr_mounts(b)
        nxt, nxt_id, nxt_mounts = _adjacent(a, NS_MNT_GET_NEXT)
        prv, prv_id, prv_mounts = _adjacent(b, NS_MNT_GET_PREV)
        same = os.readlink(f"/proc/self/fd/{nxt}") == os.readlink(f"/proc/self/fd/{b}")
        last = k.errno_of(lambda: _adjacent(b, NS_MNT_GET_NEXT)[0])
        return (a_id, b_id, a_mounts, b_mounts, nxt_id, nxt_mounts, prv_id, prv_mounts, same, last)
    a_id, b_id, a_mounts, b_mounts, nxt_id, nxt_mounts, prv_id, prv_mounts, same, last = in_child(child)
    assert (nxt_id, nxt_mounts) == (b_id, b_mounts), (
        f"NS_MNT_GET_NEXT from the open_tree namespace {a_id} gave namespace {nxt_id} ({nxt_mounts} mounts); "
        f"the next one made was the fsmount namespace {b_id} ({b_mounts} mounts)")
    assert same, "NS_MNT_GET_NEXT's fd is not the fsmount namespace's"
    assert (prv_id, prv_mounts) == (a_id, a_mounts), (
        f"NS_MNT_GET_PREV from {b_id} gave {prv_id} ({prv_mounts} mounts); expected {a_id} ({a_mounts} mounts)")
    assert last == errno.ENOENT, f"NS_MNT_GET_NEXT from the newest namespace gave {k.errname(last)}, not ENOENT"


@pytest.mark.rule("OT-NS-LIST")
@needs_ot
def test_walking_mount_namespaces_needs_privilege_over_all() -> None:
    def child():
        private_mount_ns()
        fd = k.open_tree(k.AT_FDCWD, scratch_tmpfs(), NS)
        enter_userns()
        return k.errno_of(lambda: _adjacent(fd, NS_MNT_GET_PREV)[0])
    got = in_child(child)
    assert got == errno.EPERM, (f"NS_MNT_GET_PREV from a user namespace gave {k.errname(got)}; a conforming "
                                "kernel EPERM (walking every mount namespace needs CAP_SYS_ADMIN in the initial one)")


@pytest.mark.rule("OT-ATTR")
@needs_ot
@pytest.mark.parametrize("case", ["unknown-bit", "clone-and-namespace", "size-without-attr", "recursive-with-attr"])
def test_open_tree_attr_checks_as_open_tree(case: str) -> None:
    # open_tree_attr() runs open_tree()'s checks first, then its own; a refused call leaves no fd.
    libc = k.libc
    flags = {"unknown-bit": NS | 0x2000, "clone-and-namespace": NS | k.OPEN_TREE_CLONE,
             "size-without-attr": NS, "recursive-with-attr": NS | k.AT_RECURSIVE}[case]
    attr = k.mount_attr(attr_set=k.MOUNT_ATTR_RDONLY) if case == "recursive-with-attr" else None
    size = 32 if case in ("size-without-attr", "recursive-with-attr") else 0
    before = set(os.listdir("/proc/self/fd"))
    ret = libc.syscall(k.NR_OPEN_TREE_ATTR, ctypes.c_int(k.AT_FDCWD), b"/", ctypes.c_uint(flags),
                       attr, ctypes.c_size_t(size))
    err = ctypes.get_errno() if ret < 0 else 0
    if ret >= 0:
        os.close(ret)
    assert err == errno.EINVAL, f"open_tree_attr({case}) gave {k.errname(err)}; a conforming kernel EINVAL"
    assert set(os.listdir("/proc/self/fd")) == before, f"open_tree_attr({case}) was refused but left an fd"


@pytest.mark.rule("OT-SETNS-TYPE")
@needs_ot
def test_setns_refuses_what_is_neither_namespace_nor_pidfd() -> None:
    def child():
        private_mount_ns()
        fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
        plain = k.errno_of(k.setns, fd, k.CLONE_NEWNS)
        pidfd = os.pidfd_open(os.getpid())
        not_a_namespace = k.errno_of(k.setns, pidfd, k.CLONE_NEWNS | 0x100)  # CLONE_VM is no namespace
        return plain, not_a_namespace
    plain, not_a_namespace = in_child(child)
    assert plain == errno.EINVAL, f"setns(directory fd, CLONE_NEWNS) gave {k.errname(plain)}, not EINVAL"
    assert not_a_namespace == errno.EINVAL, f"setns(pidfd, CLONE_NEWNS|CLONE_VM) gave {k.errname(not_a_namespace)}, not EINVAL"


@pytest.mark.rule("OT-NS-LIST")
@needs_ot
def test_walk_with_a_bad_buffer_is_efault_and_leaves_no_fd() -> None:
    # NS_MNT_GET_NEXT prepares the next namespace's fd, then copies the information out: a buffer
    # it cannot write fails the call, and the prepared fd must not reach the caller.
    def child():
        private_mount_ns()
        a = k.open_tree(k.AT_FDCWD, scratch_tmpfs(), NS)
        b = k.open_tree(k.AT_FDCWD, "/", NS)
        before = set(os.listdir("/proc/self/fd"))
        ret = k.libc.ioctl(ctypes.c_int(a), ctypes.c_ulong(NS_MNT_GET_NEXT), ctypes.c_void_p(8))
        err = ctypes.get_errno() if ret < 0 else 0
        if ret >= 0:
            os.close(ret)
        clean = set(os.listdir("/proc/self/fd")) == before
        os.close(b)
        return err, clean
    err, clean = in_child(child)
    assert err == errno.EFAULT, f"NS_MNT_GET_NEXT into an unwritable buffer gave {k.errname(err)}, not EFAULT"
    assert clean, "the failed NS_MNT_GET_NEXT left the next namespace's fd open"


@pytest.mark.rule("OT-NS-LIST")
@needs_ot
def test_walk_with_a_full_fd_table_is_emfile_and_keeps_no_reference() -> None:
    # NS_MNT_GET_NEXT takes a reference on the next namespace before it looks for a free fd: with
    # none free the call fails (EMFILE) and must drop that reference, or the namespace never dies.
    def child():
        private_mount_ns()
        a = k.open_tree(k.AT_FDCWD, scratch_tmpfs(), NS)
        b = k.open_tree(k.AT_FDCWD, "/", NS)
        b_id = k.mntns_id(b)
        fillers = fill_fd_table()
        full = k.errno_of(lambda: _adjacent(a, NS_MNT_GET_NEXT)[0])
        for fd in fillers:
            os.close(fd)
        nxt, nxt_id, _ = _adjacent(a, NS_MNT_GET_NEXT)  # control: with room, the walk finds b
        os.close(nxt)
        os.close(b)
        return full, nxt_id == b_id, gone(b_id)
    full, found, died = in_child(child)
    assert found, "control: with a free fd NS_MNT_GET_NEXT did not return the next namespace made"
    assert full == errno.EMFILE, f"NS_MNT_GET_NEXT with the fd table full gave {k.errname(full)}, not EMFILE"
    assert died, ("after NS_MNT_GET_NEXT failed for want of an fd and every fd on the next namespace was "
                  "closed, that namespace lived on: the failed walk kept a reference to it")


@pytest.mark.rule("OT-ATTR-IDMAP")
@needs_ot
def test_open_tree_attr_gives_a_clone_another_idmapping() -> None:
    # A clone open_tree_attr() makes was never visible to anyone, so the attributes it is given
    # may replace the idmapping the source mount had; mount_setattr() on a mount that already
    # has one refuses (EPERM): an idmapping, once seen, is fixed. Through an idmapping whose user
    # namespace maps N to root, a file owned by N shows as root's: file "a" (uid 1000) through
    # the first, file "b" (uid 2000) through the second; each other file shows as the overflow id.
    def user_namespace(inside: int) -> tuple[None, list[int | None]]:
        k.unshare(k.CLONE_NEWUSER)
        write_file("/proc/self/uid_map", f"{inside} 0 1")
        write_file("/proc/self/setgroups", "deny")
        write_file("/proc/self/gid_map", f"{inside} 0 1")
        return None, [os.open("/proc/self/ns/user", os.O_RDONLY)]

    def owners(fd: int) -> tuple[int, int]:
        return os.stat("a", dir_fd=fd).st_uid, os.stat("b", dir_fd=fd).st_uid

    def child():
        private_mount_ns()
        src = scratch_tmpfs()
        for name, uid in (("a", 1000), ("b", 2000)):
            open(os.path.join(src, name), "w").close()
            os.chown(os.path.join(src, name), uid, uid)
        (a,), (b,) = (fds_from_child(lambda n=n: user_namespace(n))[1] for n in (1000, 2000))
        clone = k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC
        first = k.open_tree_attr(k.AT_FDCWD, src, clone, k.mount_attr(k.MOUNT_ATTR_IDMAP, userns_fd=a))
        refused = k.errno_of(k.mount_setattr, first, "", k.AT_EMPTY_PATH,
                             k.mount_attr(k.MOUNT_ATTR_IDMAP, userns_fd=b))
        try:
            second = k.open_tree_attr(first, "", clone | k.AT_EMPTY_PATH, k.mount_attr(k.MOUNT_ATTR_IDMAP, userns_fd=b))
        except OSError as e:
            return owners(first), refused, e.errno, None
        return owners(first), refused, 0, owners(second)
    first_uid, refused, replaced, second_uid = in_child(child)
    assert first_uid == (0, OVERFLOW), (f"setup: through the first idmapped clone a and b show as uids {first_uid}, "
                                        f"not (0, {OVERFLOW})")
    assert refused == errno.EPERM, (f"control: mount_setattr() gave an idmapped mount another idmapping "
                                    f"({k.errname(refused)}); a conforming kernel refuses (EPERM)")
    assert replaced == 0, (f"OT-ATTR-IDMAP: open_tree_attr(OPEN_TREE_CLONE) with another idmapping for a clone of an "
                           f"idmapped mount gave {k.errname(replaced)}; a conforming kernel replaces it (the clone was "
                           "never visible)")
    assert second_uid == (OVERFLOW, 0), (f"OT-ATTR-IDMAP: through the clone given the second idmapping a and b show as "
                                         f"uids {second_uid}, not ({OVERFLOW}, 0): the idmapping was not replaced")
