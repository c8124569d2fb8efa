"""The mount APIs around the features, as Debian's stable updates fixed them: automounts, the
superblock under every mount namespace (nullfs) and its reconfiguration (docs/semantics.md, "The
other mount APIs: fixes of Debian's stable updates").

The method: Debian's kernel changelogs name upstream stable fixes of the mount code; each is a
behaviour the kernel before it got wrong, a rule nobody had written down. Each test here states one
such rule and was measured on the last Debian kernel without the fix (it fails there) and on the
first with it (it passes); conformance/references.py says which. Every refusal stands beside a
control: the same call where the rule allows it, so the errno is the rule's and not a broken setup's.

The root of an empty mount namespace (`unshare(UNSHARE_EMPTY_MNTNS)`) is a copy of the mount at
the bottom of every namespace: nullfs, one kernel-internal superblock (`SB_NOUSER`) with one inode
that every namespace shares. What one namespace does to it, every other sees.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import tempfile
import time

import pytest

from . import syscalls as k
from .helpers import enter_userns_and_mntns, in_child, pivot_into_tmpfs, private_mount_ns, scratch_tmpfs

NR_FSPICK = 433  # one number for every architecture (include/uapi/asm-generic/unistd.h)
FSPICK_CLOEXEC = 0x1
# a change of the atime setting: what MNT_LOCK_ATIME forbids
TO_NOATIME = (k.MOUNT_ATTR_NOATIME, k.MOUNT_ATTR__ATIME)  # attr_set, attr_clr
needs_empty_mntns = pytest.mark.needs_feature("unshare_empty_mntns")


def fspick(dfd: int, path: str, flags: int) -> int:
    return k._check(k.libc.syscall(NR_FSPICK, ctypes.c_int(dfd), k._path(path), ctypes.c_uint(flags)))


def into_empty_namespace() -> None:
    """In a child: an empty mount namespace, its root (and so "/") the copy of nullfs."""
    k.unshare(k.UNSHARE_EMPTY_MNTNS)
    fs_type = k.statmount(k.mnt_id_of("/")).fs_type
    assert fs_type == "nullfs", f"setup: the root of an empty mount namespace is {fs_type}, not nullfs"


def debugfs_with_automount() -> str | None:
    """In a child with a private mount namespace: debugfs on a new directory, whose "tracing" is an
    automount point (tracefs; CONFIG_TRACEFS_AUTOMOUNT_DEPRECATED). None where it has none."""
    d = tempfile.mkdtemp(prefix="otns-debugfs-")
    k.mount("debugfs", d, "debugfs")
    point = f"{d}/tracing"
    if not os.path.lexists(point) or not k.statx_attributes(point) & k.STATX_ATTR_AUTOMOUNT:
        return None
    return d


NO_AUTOMOUNT = ("debugfs has no tracing automount point on this kernel (CONFIG_TRACEFS_AUTOMOUNT_DEPRECATED "
                "is not set), and no other automount point can be made without a daemon")


@pytest.mark.rule("OT-AUTOMOUNT-LOCK")
@pytest.mark.fix("AUTOMOUNT_LOCKING")
@pytest.mark.needs_feature("open_tree_namespace")
def test_automount_triggered_from_a_user_namespace_locks_nothing() -> None:
    # An automount lands in the namespace of the mount it is below; the locks it gets are that
    # namespace's business, not the triggering caller's. A caller in a user namespace that walks
    # through an fd on root's debugfs mounts tracefs in root's namespace, owned by the initial user
    # namespace: nothing crosses a user namespace there, so nothing is locked.
    def child():
        private_mount_ns()
        mine, theirs = debugfs_with_automount(), debugfs_with_automount()
        if mine is None or theirs is None:
            return None
        os.close(os.open(f"{mine}/tracing", os.O_RDONLY | os.O_DIRECTORY))
        control = k.errno_of(k.mount_setattr, k.AT_FDCWD, f"{mine}/tracing", 0, *TO_NOATIME)
        dfd = os.open(theirs, os.O_PATH | os.O_DIRECTORY)

        def trigger() -> int:
            enter_userns_and_mntns()
            return k.errno_of(lambda: os.open("tracing", os.O_RDONLY | os.O_DIRECTORY, dir_fd=dfd))
        triggered = in_child(trigger)
        fs_type = k.statmount(k.mnt_id_of(f"{theirs}/tracing")).fs_type
        changed = k.errno_of(k.mount_setattr, k.AT_FDCWD, f"{theirs}/tracing", 0, *TO_NOATIME)
        return control, triggered, fs_type, changed
    got = in_child(child)
    if got is None:
        pytest.skip(NO_AUTOMOUNT)
    control, triggered, fs_type, changed = got
    assert control == 0, f"control: root could not change the atime setting of its own automount ({k.errname(control)})"
    assert (triggered, fs_type) == (0, "tracefs"), (
        f"setup: the walk through the fd from a user namespace gave {k.errname(triggered)} and left {fs_type!r} "
        "on the automount point; a conforming kernel mounts tracefs there")
    assert changed == 0, (
        f"OT-AUTOMOUNT-LOCK: root changing the atime setting of an automount that a caller in a user namespace "
        f"triggered in root's namespace gave {k.errname(changed)}; a conforming kernel allows it (the mount was "
        "locked as if it had crossed into the triggering caller's user namespace)")


@pytest.mark.rule("FM-REMOUNT-INTERNAL")
@pytest.mark.fix("RECONFIGURE_INTERNAL")
@needs_empty_mntns
def test_remount_of_an_internal_superblock_is_einval() -> None:
    def child():
        private_mount_ns()
        control = k.errno_of(k.mount, None, scratch_tmpfs(), None, k.MS_REMOUNT)
        into_empty_namespace()
        return control, k.errno_of(k.mount, None, "/", None, k.MS_REMOUNT)
    control, got = in_child(child)
    assert control == 0, f"control: remounting a tmpfs gave {k.errname(control)}"
    assert got == errno.EINVAL, (
        f"FM-REMOUNT-INTERNAL: mount(MS_REMOUNT) of nullfs (the root of an empty mount namespace) gave "
        f"{k.errname(got)}; a conforming kernel refuses to reconfigure a kernel-internal superblock (EINVAL)")


@pytest.mark.rule("FM-REMOUNT-INTERNAL")
@pytest.mark.fix("RECONFIGURE_INTERNAL")
@needs_empty_mntns
def test_umount_of_an_internal_root_is_einval() -> None:
    # umount() of the caller's own root is no umount: the kernel remounts the root's superblock
    # read-only instead (do_umount_root()). The control shows that on a tmpfs root.
    def control():
        private_mount_ns()
        pivot_into_tmpfs()
        return k.errno_of(k.umount2, "/", 0), bool(os.statvfs("/").f_flag & os.ST_RDONLY)

    def child():
        into_empty_namespace()
        return k.errno_of(k.umount2, "/", 0)
    made_readonly = in_child(control)
    got = in_child(child)
    assert made_readonly == (0, True), (
        f"control: umount of a tmpfs root gave {k.errname(made_readonly[0])}, read-only after: {made_readonly[1]}; "
        "the kernel remounts such a root read-only")
    assert got == errno.EINVAL, (
        f"FM-REMOUNT-INTERNAL: umount of the caller's root when that is nullfs (an empty mount namespace) gave "
        f"{k.errname(got)}; a conforming kernel refuses to reconfigure a kernel-internal superblock (EINVAL)")


@pytest.mark.rule("FM-FSPICK-INTERNAL")
@pytest.mark.fix("FSPICK_INTERNAL")
@needs_empty_mntns
def test_fspick_of_an_internal_superblock_is_einval() -> None:
    def child():
        private_mount_ns()
        control = k.errno_of(fspick, k.AT_FDCWD, scratch_tmpfs(), FSPICK_CLOEXEC)
        into_empty_namespace()
        return control, k.errno_of(fspick, k.AT_FDCWD, "/", FSPICK_CLOEXEC)
    control, got = in_child(child)
    assert control == 0, f"control: fspick() of a tmpfs gave {k.errname(control)}"
    assert got == errno.EINVAL, (
        f"FM-FSPICK-INTERNAL: fspick() of nullfs (the root of an empty mount namespace) gave {k.errname(got)}; "
        "a conforming kernel makes no fs context for a kernel-internal superblock (EINVAL)")


def _lock_errnos(path: str) -> tuple[int, int]:
    """errno of flock() and of a POSIX lock (fcntl F_SETLK) on the directory."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return (k.errno_of(fcntl.flock, fd, fcntl.LOCK_EX | fcntl.LOCK_NB),
                k.errno_of(fcntl.lockf, fd, fcntl.LOCK_SH | fcntl.LOCK_NB))
    finally:
        os.close(fd)


@pytest.mark.rule("EM-NULLFS-LOCK")
@pytest.mark.fix("NULLFS_LOCKS")
@needs_empty_mntns
def test_file_locks_on_the_empty_namespace_root_are_enolck() -> None:
    def child():
        private_mount_ns()
        control = _lock_errnos(scratch_tmpfs())
        into_empty_namespace()
        return control, _lock_errnos("/")
    control, got = in_child(child)
    assert control == (0, 0), f"control: flock() and fcntl(F_SETLK) on a tmpfs directory gave {[k.errname(e) for e in control]}"
    assert got == (errno.ENOLCK, errno.ENOLCK), (
        f"EM-NULLFS-LOCK: flock() and fcntl(F_SETLK) on the root of an empty mount namespace (nullfs) gave "
        f"{[k.errname(e) for e in got]}; a conforming kernel refuses both (ENOLCK): the one inode is every "
        "namespace's")


def _atime_moves(path: str) -> tuple[int, int]:
    """With the mount at path set to strictatime: the directory's atime before and after a read."""
    k.mount_setattr(k.AT_FDCWD, path, 0, k.MOUNT_ATTR_STRICTATIME, k.MOUNT_ATTR__ATIME)
    before = os.stat(path).st_atime_ns
    time.sleep(0.1)  # past the coarse clock's tick: an update would show
    os.listdir(path)
    return before, os.stat(path).st_atime_ns


@pytest.mark.rule("EM-NULLFS-ATIME")
@pytest.mark.fix("NULLFS_ATIME")
@needs_empty_mntns
def test_reading_the_empty_namespace_root_leaves_its_atime() -> None:
    def child():
        private_mount_ns()
        control = _atime_moves(scratch_tmpfs())
        into_empty_namespace()
        return control, _atime_moves("/")
    control, got = in_child(child)
    assert control[1] > control[0], f"control: reading a tmpfs directory under strictatime left its atime at {control[0]}"
    assert got[1] == got[0], (
        f"EM-NULLFS-ATIME: reading the root of an empty mount namespace (nullfs) under strictatime moved its "
        f"atime from {got[0]} to {got[1]}; a conforming kernel leaves it (the inode is every namespace's)")
