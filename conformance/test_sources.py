"""Sources that are not a mount of the caller's own namespace (docs/semantics.md OT-SRC-OTHERNS,
OT-SRC-UNMOUNTED).

may_copy_tree() accepts a mount of the caller's namespace, and a detached tree whose origin is
the caller's namespace or that has no origin at all (fsmount()); it refuses a mount of another
live namespace, a detached tree made from another namespace, and a mount that is in no
namespace any more. Each refusal is checked beside a control that the same fd works where the
rule allows it, so the EINVAL is the rule's and not a broken setup's.
"""
from __future__ import annotations

import errno
import os

import pytest

from . import syscalls as k
from .helpers import in_child, private_mount_ns, scratch_tmpfs

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC | k.AT_EMPTY_PATH
NS_REC = NS | k.AT_RECURSIVE
CLONE = k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC

pytestmark = pytest.mark.needs_feature("open_tree_namespace")


def both(fd: int) -> tuple[int, int]:
    """errno of a non-recursive and of a recursive copy of the mount fd refers to."""
    return k.errno_of(k.open_tree, fd, "", NS), k.errno_of(k.open_tree, fd, "", NS_REC)


def in_second_namespace(fn):
    """In a child with a private mount namespace: run fn in a second, private mount namespace,
    then come back. Returns (fn's result, an fd on the second namespace: it keeps it alive)."""
    home = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    private_mount_ns()
    result = fn()
    other = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    k.setns(home, k.CLONE_NEWNS)
    os.close(home)
    return result, other


@pytest.mark.rule("OT-SRC-OTHERNS")
def test_mount_of_another_live_namespace_is_einval() -> None:
    def child():
        private_mount_ns()
        tfd, other = in_second_namespace(lambda: os.open(scratch_tmpfs(), os.O_PATH | os.O_DIRECTORY))
        alive = len(k.listmount(k.mntns_id(other))) > 0
        refused = both(tfd)
        k.setns(other, k.CLONE_NEWNS)
        return alive, refused, both(tfd)
    alive, refused, at_home = in_child(child)
    assert alive, "setup: the second mount namespace died although an fd held it"
    assert at_home == (0, 0), (f"control: from inside its own namespace the mount could not be copied "
                               f"({[k.errname(e) for e in at_home]})")
    assert refused == (errno.EINVAL, errno.EINVAL), (
        f"OT-SRC-OTHERNS: copying a mount of another live mount namespace gave "
        f"{[k.errname(e) for e in refused]} (plain, recursive); a conforming kernel refuses it (EINVAL)")


@pytest.mark.rule("OT-SRC-OTHERNS")
def test_detached_tree_made_in_another_namespace_is_einval() -> None:
    def child():
        private_mount_ns()
        theirs, _ = in_second_namespace(lambda: k.open_tree(k.AT_FDCWD, scratch_tmpfs(), CLONE))
        ours = k.open_tree(k.AT_FDCWD, scratch_tmpfs(), CLONE)
        return both(theirs), both(ours)
    theirs, ours = in_child(child)
    assert ours == (0, 0), (f"OT-SRC-OTHERNS: a detached tree cloned from the caller's own namespace gave "
                            f"{[k.errname(e) for e in ours]}; a conforming kernel accepts it")
    assert theirs == (errno.EINVAL, errno.EINVAL), (
        f"OT-SRC-OTHERNS: a detached tree cloned from another mount namespace gave "
        f"{[k.errname(e) for e in theirs]} (plain, recursive); a conforming kernel refuses it (EINVAL)")


@pytest.mark.rule("OT-SRC-OTHERNS")
@pytest.mark.parametrize("made_elsewhere", [False, True], ids=["made-here", "made-in-another-namespace"])
def test_fsmount_detached_mount_is_accepted(made_elsewhere: bool) -> None:
    # fsmount()'s mount has no origin namespace (seq_origin 0): may_copy_tree() accepts it wherever
    # it was made.
    def child():
        private_mount_ns()

        def make():
            fs = k.tmpfs_context()
            try:
                return k.fsmount(fs, k.FSMOUNT_CLOEXEC)
            finally:
                os.close(fs)
        mfd = in_second_namespace(make)[0] if made_elsewhere else make()
        got = both(mfd)
        fd = k.open_tree(mfd, "", NS) if got[0] == 0 else -1
        return got, [m.fs_type for m in k.mounts_of(k.mntns_id(fd))] if fd >= 0 else []
    got, types = in_child(child)
    assert got == (0, 0), (f"OT-SRC-OTHERNS: copying a detached fsmount() mount gave {[k.errname(e) for e in got]}; "
                           "a conforming kernel accepts it (it has no origin namespace)")
    assert types == ["tmpfs"], f"OT-SRC-OTHERNS: the copy of the fsmount() tmpfs holds {types}, not just that tmpfs"


@pytest.mark.rule("OT-SRC-UNMOUNTED")
def test_lazily_unmounted_mount_is_einval() -> None:
    def child():
        private_mount_ns()
        t = scratch_tmpfs()
        tfd = os.open(t, os.O_PATH | os.O_DIRECTORY)
        mounted = both(tfd)
        k.umount2(t, k.MNT_DETACH)
        return mounted, both(tfd)
    mounted, unmounted = in_child(child)
    assert mounted == (0, 0), f"control: the mount could not be copied before its umount ({mounted})"
    assert unmounted == (errno.EINVAL, errno.EINVAL), (
        f"OT-SRC-UNMOUNTED: copying a lazily unmounted mount gave {[k.errname(e) for e in unmounted]} "
        "(plain, recursive); a conforming kernel refuses a mount that is in no namespace (EINVAL)")
