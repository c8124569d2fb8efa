"""Foreign callers and locked trees (docs/semantics.md OT-FOREIGN-*, OT-ROOT-LOCK,
OT-SRC-LOCKEDCHILD, OT-SRC-UNBINDABLE, OT-REC-LOCKED-SKIP; the flag locks are in test_foreign_flags.py).

A caller is foreign when its current user namespace does not own its mount namespace
(here: after unshare(CLONE_NEWUSER) alone). Such a caller must not learn what mounts cover,
so the rules are stricter for it. A user-namespace root that made its own mount namespace
(unshare(CLONE_NEWUSER | CLONE_NEWNS)) is not foreign, but the mounts it inherited are locked.
"""
from __future__ import annotations

import errno
import os

import pytest

from . import syscalls as k
from .helpers import enter_userns, enter_userns_and_mntns, in_child, private_mount_ns, scratch_tmpfs

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC
NS_REC = NS | k.AT_RECURSIVE

pytestmark = pytest.mark.needs_feature("open_tree_namespace")


def tree_with_unbindable_child() -> str:
    t = scratch_tmpfs()
    os.mkdir(f"{t}/u")
    k.mount("otns-u", f"{t}/u", "tmpfs", 0, "size=1m")
    k.mount(None, f"{t}/u", None, k.MS_UNBINDABLE)
    return t


@pytest.mark.rule("OT-FOREIGN-NONREC")
@pytest.mark.fix("COVERED_MOUNTS")
def test_foreign_non_recursive_copy_over_children_is_einval() -> None:
    def child():
        private_mount_ns()
        t = tree_with_unbindable_child()
        enter_userns()
        return k.errno_of(k.open_tree, k.AT_FDCWD, t, NS)
    got = in_child(child)
    assert got == errno.EINVAL, (f"a foreign caller's non-recursive copy of a mount with children gave "
                                 f"{k.errname(got)}; a conforming kernel refuses it (EINVAL): it would reveal "
                                 "what the children cover")


@pytest.mark.rule("OT-FOREIGN-NONREC")
def test_foreign_non_recursive_copy_without_children_works() -> None:
    def child():
        private_mount_ns()
        t = scratch_tmpfs()
        enter_userns()
        return k.errno_of(k.open_tree, k.AT_FDCWD, t, NS)
    got = in_child(child)
    assert got == 0, f"a foreign caller's copy of a mount without children gave {k.errname(got)}"


@pytest.mark.rule("OT-FOREIGN-UNBINDABLE", "OT-SKIP-UNBINDABLE")
@pytest.mark.fix("COVERED_MOUNTS")
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
                             "it (nothing may be left out that would uncover what it hides)")


@pytest.mark.rule("OT-FOREIGN-LOCK")
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


def tree_with_child() -> str:
    """A tmpfs T with a tmpfs at T/a, both made by the caller (so never locked in its namespace)."""
    t = scratch_tmpfs()
    os.mkdir(f"{t}/a")
    k.mount("otns-a", f"{t}/a", "tmpfs", 0, "size=1m")
    return t


@pytest.mark.rule("OT-ROOT-LOCK", "OT-FOREIGN-LOCK")
def test_locked_root_locks_the_top_of_the_copy() -> None:
    # The caller owns its mount namespace, whose root mount is locked (unshare with a new user
    # namespace locks every copied mount): the top of its copy is locked (OT-ROOT-LOCK), but the
    # caller is not foreign, so nothing else in the copy is (OT-FOREIGN-LOCK does not apply).
    def child():
        enter_userns_and_mntns()
        t = tree_with_child()  # our own mounts: not locked
        fd = k.open_tree(k.AT_FDCWD, t, NS_REC)
        k.setns(fd, k.CLONE_NEWNS)
        return {p: k.errno_of(lambda p=p: k.umount2(p, k.MNT_DETACH)) for p in ("/a", "/")}
    got = in_child(child)
    assert got["/"] == errno.EINVAL, (f"OT-ROOT-LOCK: umount of the copy's top gave {k.errname(got['/'])}; when "
                                      "the caller's root is locked, a conforming kernel locks the top of the new "
                                      "tree (EINVAL)")
    assert got["/a"] == 0, (f"OT-FOREIGN-LOCK: umount of a child in the copy made by a user-namespace root that "
                            f"owns its mount namespace gave {k.errname(got['/a'])}; that caller is not foreign and "
                            "its copy is not locked below the top")


@pytest.mark.rule("OT-SRC-LOCKEDCHILD", "OT-FOREIGN-NONREC")
def test_non_recursive_copy_over_locked_children_is_einval() -> None:
    def child():
        enter_userns_and_mntns()
        own = tree_with_child()  # children, but not locked ones
        return k.errno_of(k.open_tree, k.AT_FDCWD, "/", NS), k.errno_of(k.open_tree, k.AT_FDCWD, own, NS)
    locked, unlocked = in_child(child)
    assert locked == errno.EINVAL, (f"OT-SRC-LOCKEDCHILD: a non-recursive copy over locked children gave "
                                    f"{k.errname(locked)}, expected EINVAL")
    assert unlocked == 0, (f"OT-FOREIGN-NONREC: a non-recursive copy over children that are not locked, by a "
                           f"user-namespace root that owns its mount namespace, gave {k.errname(unlocked)}; that "
                           "caller is not foreign, so a conforming kernel allows it")


@pytest.mark.rule("OT-FOREIGN-NONREC", "OT-FOREIGN-UNBINDABLE", "OT-FOREIGN-FLAGS", "OT-FOREIGN-LOCK")
@pytest.mark.fix("COVERED_MOUNTS")
def test_owner_of_its_mount_namespace_is_not_foreign() -> None:
    # The same tree copied by a foreign caller (unshare(CLONE_NEWUSER) alone) and by a caller that
    # owns its mount namespace (unshare(CLONE_NEWUSER | CLONE_NEWNS)): only the first is restricted.
    def attempt(owner: bool) -> dict:
        def child():
            private_mount_ns()
            if owner:
                enter_userns_and_mntns()
            t = tree_with_child()
            os.mkdir(f"{t}/u")
            k.mount("otns-u", f"{t}/u", "tmpfs", 0, "size=1m")
            k.mount(None, f"{t}/u", None, k.MS_UNBINDABLE)
            k.mount_setattr(k.AT_FDCWD, f"{t}/a", 0, k.mount_attr(attr_set=k.MOUNT_ATTR_NOSUID))
            if not owner:
                enter_userns()
            seen = {"non-recursive": k.errno_of(k.open_tree, k.AT_FDCWD, t, NS)}
            fd = k.open_tree(k.AT_FDCWD, t, NS_REC)
            seen["unbindable child copied"] = "/u" in [m.point for m in k.mounts_of(k.mntns_id(fd))]
            k.setns(fd, k.CLONE_NEWNS)
            seen["clear nosuid"] = k.errno_of(k.mount_setattr, k.AT_FDCWD, "/a", 0,
                                              k.mount_attr(attr_clr=k.MOUNT_ATTR_NOSUID))
            seen["umount child"] = k.errno_of(lambda: k.umount2("/a", k.MNT_DETACH))
            return seen
        return in_child(child)
    foreign = {"non-recursive": errno.EINVAL, "unbindable child copied": True, "clear nosuid": errno.EPERM,
               "umount child": errno.EINVAL}
    got = attempt(owner=False)
    assert got == foreign, f"control: a foreign caller's copy is not restricted as OT-FOREIGN-* require: {got}"
    got = attempt(owner=True)
    wrong = {what: v for what, v in got.items() if v == foreign[what]}
    assert not wrong, (f"OT-FOREIGN-NONREC/OT-FOREIGN-UNBINDABLE/OT-FOREIGN-FLAGS/OT-FOREIGN-LOCK: a user-namespace "
                       f"root that owns its mount namespace was treated as foreign: {wrong}; a conforming kernel "
                       "looks at whether the caller's user namespace owns its mount namespace")


@pytest.mark.rule("OT-SRC-UNBINDABLE")
def test_unbindable_source_is_einval_for_a_foreign_caller_too() -> None:
    # A foreign caller's copy keeps unbindable *children*; the source itself must still be bindable.
    def child():
        private_mount_ns()
        t = scratch_tmpfs()
        k.mount(None, t, None, k.MS_UNBINDABLE)
        enter_userns()
        return k.errno_of(k.open_tree, k.AT_FDCWD, t, NS), k.errno_of(k.open_tree, k.AT_FDCWD, t, NS_REC)
    got = in_child(child)
    assert got == (errno.EINVAL, errno.EINVAL), (
        f"OT-SRC-UNBINDABLE: a foreign caller's copy of an unbindable mount gave {[k.errname(e) for e in got]} "
        "(plain, recursive); a conforming kernel refuses an unbindable source for every caller (EINVAL)")


@pytest.mark.rule("OT-REC-LOCKED-SKIP")
@pytest.mark.fix("COPIED_UNBINDABLE")
def test_recursive_copy_over_locked_unbindable_child_is_eperm() -> None:
    # A privileged caller's recursive copy leaves unbindable children out (OT-SKIP-UNBINDABLE); one
    # that is also locked must not be left out (that would uncover what it hides): EPERM.
    def child():
        private_mount_ns()
        t = tree_with_unbindable_child()
        enter_userns_and_mntns()  # T/u is locked (and still unbindable) in the new namespace
        locked = k.errno_of(k.open_tree, k.AT_FDCWD, t, NS_REC)
        own = scratch_tmpfs()
        os.mkdir(f"{own}/u")
        k.mount("otns-u", f"{own}/u", "tmpfs", 0, "size=1m")
        k.mount(None, f"{own}/u", None, k.MS_UNBINDABLE)
        return locked, k.errno_of(k.open_tree, k.AT_FDCWD, own, NS_REC)
    locked, unlocked = in_child(child)
    assert unlocked == 0, f"control: a recursive copy over an unbindable child that is not locked gave {k.errname(unlocked)}"
    assert locked == errno.EPERM, (f"OT-REC-LOCKED-SKIP: a recursive copy over a child that is locked and unbindable "
                                   f"gave {k.errname(locked)}; a conforming kernel refuses it (EPERM)")
