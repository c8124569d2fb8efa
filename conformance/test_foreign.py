"""Foreign callers and locked trees (SEMANTICS.md rules 7, 8 and 9).

A caller is foreign when its current user namespace does not own its mount namespace
(here: after unshare(CLONE_NEWUSER) alone). Such a caller must not learn what mounts cover,
so the rules are stricter for it.
"""
from __future__ import annotations

import errno
import os

import pytest

from . import syscalls as k
from .helpers import enter_userns, in_child, private_mount_ns, scratch_tmpfs, write_file
from .references import COVERED_MOUNTS, hint

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC
NS_REC = NS | k.AT_RECURSIVE

pytestmark = pytest.mark.needs_feature("open_tree_namespace")


def tree_with_unbindable_child() -> str:
    t = scratch_tmpfs()
    os.mkdir(f"{t}/u")
    k.mount("otns-u", f"{t}/u", "tmpfs", 0, "size=1m")
    k.mount(None, f"{t}/u", None, k.MS_UNBINDABLE)
    return t


def test_foreign_non_recursive_copy_over_children_is_einval() -> None:
    def child():
        private_mount_ns()
        t = tree_with_unbindable_child()
        enter_userns()
        return k.errno_of(k.open_tree, k.AT_FDCWD, t, NS)
    got = in_child(child)
    assert got == errno.EINVAL, (f"a foreign caller's non-recursive copy of a mount with children gave "
                                 f"{k.errname(got)}; a conforming kernel refuses it (EINVAL): it would reveal "
                                 "what the children cover" + hint(COVERED_MOUNTS))


def test_foreign_non_recursive_copy_without_children_works() -> None:
    def child():
        private_mount_ns()
        t = scratch_tmpfs()
        enter_userns()
        return k.errno_of(k.open_tree, k.AT_FDCWD, t, NS)
    got = in_child(child)
    assert got == 0, f"a foreign caller's copy of a mount without children gave {k.errname(got)}"


def test_foreign_recursive_copy_includes_unbindable_children() -> None:
    def child():
        private_mount_ns()
        t = tree_with_unbindable_child()
        privileged = [m.point for m in k.mounts_of(k.mntns_id(k.open_tree(k.AT_FDCWD, t, NS_REC)))]
        enter_userns()
        foreign = [m.point for m in k.mounts_of(k.mntns_id(k.open_tree(k.AT_FDCWD, t, NS_REC)))]
        return privileged, foreign
    privileged, foreign = in_child(child)
    assert "/u" not in privileged, "a privileged caller's copy kept the unbindable child"
    assert "/u" in foreign, ("a foreign caller's copy dropped the unbindable child; a conforming kernel copies "
                             "it (nothing may be left out that would uncover what it hides)" + hint(COVERED_MOUNTS))


def test_foreign_copy_is_locked_top_to_bottom() -> None:
    def child():
        private_mount_ns()
        t = tree_with_unbindable_child()
        enter_userns()
        fd = k.open_tree(k.AT_FDCWD, t, NS_REC)
        k.setns(fd, k.CLONE_NEWNS)
        return {p: k.errno_of(lambda p=p: k.umount2(p, k.MNT_DETACH)) for p in ("/u", "/")}
    got = in_child(child)
    assert got == {"/u": errno.EINVAL, "/": errno.EINVAL}, (
        f"umount in a foreign caller's copy gave {({p: k.errname(e) for p, e in got.items()})}; "
        "every mount there is locked (EINVAL)")


def locked_namespace() -> None:
    """In a child: root of a new user namespace that owns a new mount namespace. The mounts
    copied from the parent are locked (the caller is not foreign here)."""
    uid, gid = os.getuid(), os.getgid()
    k.unshare(k.CLONE_NEWUSER | k.CLONE_NEWNS)
    write_file("/proc/self/uid_map", f"0 {uid} 1")
    write_file("/proc/self/setgroups", "deny")
    write_file("/proc/self/gid_map", f"0 {gid} 1")


def test_locked_root_locks_the_top_of_the_copy() -> None:
    def child():
        locked_namespace()
        t = scratch_tmpfs()  # our own mount: not locked
        fd = k.open_tree(k.AT_FDCWD, t, NS)
        k.setns(fd, k.CLONE_NEWNS)
        return k.errno_of(lambda: k.umount2("/", k.MNT_DETACH))
    got = in_child(child)
    assert got == errno.EINVAL, (f"umount of the copy's top gave {k.errname(got)}; when the caller's root is "
                                 "locked, a conforming kernel locks the top of the new tree (EINVAL)")


def test_non_recursive_copy_over_locked_children_is_einval() -> None:
    def child():
        locked_namespace()
        return k.errno_of(k.open_tree, k.AT_FDCWD, "/", NS)
    got = in_child(child)
    assert got == errno.EINVAL, f"a non-recursive copy over locked children gave {k.errname(got)}, expected EINVAL"
