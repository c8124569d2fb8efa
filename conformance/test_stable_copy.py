"""Mount trees, locks and propagation around open_tree()'s copying: the behaviours Debian's stable
updates of the 7.2 line fixed (docs/semantics.md, "Mount trees, locks and propagation: fixes of
Debian's stable updates").

The method: each test is one line of Debian's kernel changelog (conformance/references.py) read
against fs/namespace.c and fs/pnode.c of Debian's 7.2.13 source, turned into what a process sees
(an errno, what a path shows, whether a mount goes or stays), and measured on the Debian kernel
just before the fix (where it fails) and on the ones after it (where it passes). Every refusal
stands beside a control that the same construction works where the rule allows it, so the errno
is the rule's and not a broken setup's. Everything happens in forked children with private mount
namespaces; a namespace a test makes is held by an fd and dies with the child.
"""
from __future__ import annotations

import errno
import os
import tempfile

import pytest

from . import syscalls as k
from .helpers import enter_userns_and_mntns, fd_from_child, in_child, private_mount_ns, scratch_tmpfs

CLONE = k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOVE_MOUNT_SET_GROUP = 0x100
MOVE_MOUNT_BENEATH = 0x200
NSFS_MAGIC = 0x6E736673


def touch(path: str, text: str = "") -> str:
    with open(path, "w") as f:
        f.write(text)
    return path


def read_or_errno(path: str) -> str:
    """What the file at path holds, or the errno reading it gave (a namespace file reads nothing)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return k.errname(e.errno)


def newer_mount_namespace() -> int:
    """An fd on a mount namespace made now (a private copy of the caller's): newer than every
    namespace that exists, so a bind of its file is no loop anywhere (mnt_ns_loop())."""
    def child() -> int:
        k.unshare(k.CLONE_NEWNS)
        return os.open("/proc/self/ns/mnt", os.O_RDONLY)
    return fd_from_child(child)


def owned_locked_namespace() -> int:
    """An fd on a mount namespace a new user namespace made with unshare(CLONE_NEWUSER|CLONE_NEWNS)
    from the caller's: every mount copied into it below its root is locked, its mounts are slaves
    of the caller's shared ones. Root of the initial user namespace may setns() into it."""
    def child() -> int:
        enter_userns_and_mntns()
        return os.open("/proc/self/ns/mnt", os.O_RDONLY)
    return fd_from_child(child)


# The rules are open_tree_ns's (a kernel without it is judged FEATURE ABSENT, not on the APIs around it).
pytestmark = pytest.mark.needs_feature("open_tree_namespace")


def is_mount_root(path: str) -> bool:
    parent = os.path.dirname(path)
    return k.mnt_id_of(path) != k.mnt_id_of(parent)


@pytest.mark.rule("OT-CLONE-NOT-UNMOUNTED")
@pytest.mark.fix("CLONE_UMOUNT_FLAG")
def test_clone_of_a_lazily_unmounted_mount_is_unmounted_with_its_copies() -> None:
    # A namespace file's bind may be cloned after its lazy umount (may_copy_tree()'s nsfs
    # exception). The clone is a new mount: it must not carry the old one's MNT_UMOUNT, which
    # tells propagate_umount() "already going" and so keeps its propagated copies mounted.
    def child():
        private_mount_ns()
        a = scratch_tmpfs()
        k.mount(None, a, None, k.MS_SHARED)
        b = tempfile.mkdtemp(prefix="otns-")
        k.mount(a, b, None, k.MS_BIND)  # b: a peer of a
        src = scratch_tmpfs()
        results = {}
        for case in ("mounted", "lazily-unmounted"):
            where = touch(os.path.join(src, case))
            k.mount("/proc/self/ns/uts", where, None, k.MS_BIND)
            fd = os.open(where, os.O_PATH | os.O_CLOEXEC)
            if case == "lazily-unmounted":
                k.umount2(where, k.MNT_DETACH)
            clone = k.open_tree(fd, "", CLONE | k.AT_EMPTY_PATH)
            target = touch(os.path.join(a, case))
            k.move_mount(clone, "", k.AT_FDCWD, target, k.MOVE_MOUNT_F_EMPTY_PATH)
            os.close(clone)  # an fd on the mount would make its umount EBUSY
            copied = is_mount_root(os.path.join(b, case))
            k.umount2(target)
            results[case] = (copied, is_mount_root(target), is_mount_root(os.path.join(b, case)))
        return results
    results = in_child(child)
    assert results["mounted"] == (True, False, False), (
        f"control: a clone of a mounted namespace file's bind, placed on a shared mount and unmounted, gave "
        f"(copy in the peer, still mounted, copy still mounted) = {results['mounted']}, not (True, False, False)")
    copied, _, left = results["lazily-unmounted"]
    assert copied, "setup: placing the clone on a shared mount made no copy in its peer"
    assert not left, (
        "OT-CLONE-NOT-UNMOUNTED: the umount of a clone made from a lazily unmounted mount left its copy "
        "in the peer mounted; a conforming kernel unmounts the copy with it (a clone carries no MNT_UMOUNT)")


@pytest.mark.rule("OT-RBIND-NSFS-LOOP")
@pytest.mark.fix("RBIND_NS_LOOP")
def test_recursive_bind_that_would_carry_a_namespace_loop_is_einval() -> None:
    # do_loopback() checks the source itself with mnt_ns_loop(); a recursive copy also takes what
    # is mounted below or on it (CL_COPY_MNT_NS_FILE). A bind of a uts namespace file may be
    # copied from any namespace (may_copy_tree()); an older namespace may hold a bind of the
    # caller's own namespace file on top of it. Copied into the caller's namespace, that file
    # would pin the namespace that holds it: it never dies.
    def child():
        private_mount_ns()  # the older namespace
        home = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        t = scratch_tmpfs()
        for name in ("own", "newer", "own-target", "newer-target"):
            touch(os.path.join(t, name))
        k.unshare(k.CLONE_NEWNS)  # the caller's namespace, with its copy of t
        mine = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        k.setns(home, k.CLONE_NEWNS)
        newer = newer_mount_namespace()
        lows = {}
        for name, top in (("own", mine), ("newer", newer)):
            where = os.path.join(t, name)
            k.mount("/proc/self/ns/uts", where, None, k.MS_BIND)
            lows[name] = os.open(where, os.O_PATH | os.O_CLOEXEC)  # the uts bind, before its cover
            k.mount(f"/proc/self/fd/{top}", where, None, k.MS_BIND)
        k.setns(mine, k.CLONE_NEWNS)
        got = {}
        for name, low in lows.items():
            got[name] = k.errno_of(k.mount, f"/proc/self/fd/{low}", os.path.join(t, name + "-target"), None,
                                   k.MS_BIND | k.MS_REC)
        return got
    got = in_child(child)
    assert got["newer"] == 0, (
        f"control: a recursive bind whose copy holds a newer mount namespace's file gave {k.errname(got['newer'])}; "
        "a conforming kernel mounts it (no loop)")
    assert got["own"] == errno.EINVAL, (
        f"OT-RBIND-NSFS-LOOP: a recursive bind whose copy would hold the caller's own mount namespace file gave "
        f"{k.errname(got['own'])}; a conforming kernel refuses it (EINVAL): the namespace would pin itself")


@pytest.mark.rule("OT-TUCK-MNTNS-TOP")
@pytest.mark.fix("TOPMOST_MNTNS_FILE")
def test_mount_already_there_stays_on_top_when_the_tree_ends_in_a_mount_namespace_file() -> None:
    # A tree attached to a shared mount is copied to the receivers; where a receiver already has
    # a mount at that place, the copy goes beneath it and the mount there is moved onto the
    # copy's top. The copies leave mount namespace files out, so they are shorter than the tree
    # when it ends in one: the mount there must go onto the shorter top, where a path finds it.
    def child():
        private_mount_ns()
        newer = newer_mount_namespace()
        s = scratch_tmpfs()
        source, cover = touch(os.path.join(s, "source"), "source"), touch(os.path.join(s, "cover"), "cover")
        t = scratch_tmpfs()
        k.mount(None, t, None, k.MS_SHARED)
        receiver = tempfile.mkdtemp(prefix="otns-")
        k.mount(t, receiver, None, k.MS_BIND)
        k.mount(None, receiver, None, k.MS_SLAVE)  # receives from t, sends nothing back
        seen = {}
        for case, top in (("uts-file", "/proc/self/ns/uts"), ("mntns-file", f"/proc/self/fd/{newer}")):
            touch(os.path.join(t, case), "under")
            k.mount(cover, os.path.join(receiver, case), None, k.MS_BIND)  # in the receiver only
            tree = k.open_tree(k.AT_FDCWD, source, CLONE)
            over = k.open_tree(k.AT_FDCWD, top, CLONE)
            k.move_mount(over, "", tree, "", k.MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
            k.move_mount(tree, "", k.AT_FDCWD, os.path.join(t, case), k.MOVE_MOUNT_F_EMPTY_PATH)
            seen[case] = read_or_errno(os.path.join(receiver, case))
        return seen
    seen = in_child(child)
    assert seen["uts-file"] == "cover", (
        f"control: with a uts namespace file on top of the tree, the receiver's path shows {seen['uts-file']!r}; "
        "a conforming kernel keeps the mount that was there on top ('cover')")
    assert seen["mntns-file"] == "cover", (
        f"OT-TUCK-MNTNS-TOP: with a mount namespace file on top of the tree, the receiver's path shows "
        f"{seen['mntns-file']!r}; a conforming kernel keeps the mount that was there on top of the shorter copy "
        "('cover')")


@pytest.mark.rule("OT-BENEATH-MNTNS-LOCKED")
@pytest.mark.fix("BENEATH_MNTNS_LOCK")
def test_mount_namespace_file_is_not_moved_beneath_a_locked_mount() -> None:
    # A mount moved beneath a locked one takes over its lock. A mount namespace file's mount is
    # left out of every copy of the tree together with what is on it (copy_tree()), so it could
    # keep nothing hidden: can_move_mount_beneath() refuses it under a locked mount.
    def child():
        private_mount_ns()
        s = scratch_tmpfs()
        cover = touch(os.path.join(s, "cover"), "cover")
        t = scratch_tmpfs()
        for name in ("locked-uts", "locked-mntns", "unlocked-mntns"):
            touch(os.path.join(t, name), "under")
        for name in ("locked-uts", "locked-mntns"):
            k.mount(cover, os.path.join(t, name), None, k.MS_BIND)
        owned = owned_locked_namespace()
        newer = newer_mount_namespace()
        k.setns(owned, k.CLONE_NEWNS)
        k.mount(cover, os.path.join(t, "unlocked-mntns"), None, k.MS_BIND)  # made here: not locked
        got = {}
        for name in ("locked-uts", "locked-mntns", "unlocked-mntns"):
            src = "/proc/self/ns/uts" if name.endswith("uts") else f"/proc/self/fd/{newer}"
            fd = k.open_tree(k.AT_FDCWD, src, CLONE)
            got[name] = k.errno_of(k.move_mount, fd, "", k.AT_FDCWD, os.path.join(t, name),
                                   k.MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_BENEATH)
        return got
    got = in_child(child)
    assert got["locked-uts"] == 0 and got["unlocked-mntns"] == 0, (
        f"control: moving a uts namespace file's mount beneath a locked mount gave {k.errname(got['locked-uts'])}, a "
        f"mount namespace file's beneath an unlocked one {k.errname(got['unlocked-mntns'])}; a conforming kernel "
        "allows both")
    assert got["locked-mntns"] == errno.EINVAL, (
        f"OT-BENEATH-MNTNS-LOCKED: moving a mount namespace file's mount beneath a locked mount gave "
        f"{k.errname(got['locked-mntns'])}; a conforming kernel refuses it (EINVAL): copies leave it out, so it "
        "cannot take over the lock")


@pytest.mark.rule("OT-TUCK-KEEPS-LOCK")
@pytest.mark.fix("PROPAGATED_BENEATH_LOCK")
def test_locked_mount_keeps_its_lock_when_a_propagated_copy_goes_beneath_it() -> None:
    # A locked mount hides what it covers from the namespace's owner. When propagation puts a
    # copy beneath it, the copy takes the lock too, but the mount keeps its own: the copy goes
    # again when its original is unmounted, which the namespace's owner does not control.
    def child():
        private_mount_ns()
        home = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        t = scratch_tmpfs()
        k.mount(None, t, None, k.MS_SHARED)
        os.mkdir(os.path.join(t, "d"))
        receiver = tempfile.mkdtemp(prefix="otns-")
        k.mount(t, receiver, None, k.MS_BIND)
        k.mount(None, receiver, None, k.MS_SLAVE)  # receives from t, sends nothing back
        d = os.path.join(receiver, "d")
        k.mount("cover", d, "tmpfs", 0, "size=1m")  # on the receiver only
        own = os.path.join(t, "own")
        os.mkdir(own)
        owned = owned_locked_namespace()  # its copies: the receiver's a slave of t, the cover locked
        k.setns(owned, k.CLONE_NEWNS)
        locked_before = k.errno_of(k.umount2, d)
        covered = k.mnt_id_of(d)
        k.setns(home, k.CLONE_NEWNS)
        k.mount("propagated", os.path.join(t, "d"), "tmpfs", 0, "size=1m")  # its copies go beneath the covers
        k.setns(owned, k.CLONE_NEWNS)
        top = k.statmount(k.mnt_id_of(d))
        beneath = k.statmount(top.parent_id)
        k.mount("own", own, "tmpfs", 0, "size=1m")
        control = k.errno_of(k.umount2, own)
        return locked_before, top.mnt_id == covered, beneath.point, control, k.errno_of(k.umount2, d)
    locked_before, same_top, beneath_point, control, got = in_child(child)
    assert locked_before == errno.EINVAL and control == 0, (
        f"control: in the owned namespace the copied cover's umount gave {k.errname(locked_before)} (locked: EINVAL) "
        f"and a mount made there {k.errname(control)} (success)")
    assert same_top and beneath_point.endswith("/d"), (
        f"setup: the propagated copy did not go beneath the locked mount (the cover still on top: {same_top}, "
        f"the mount beneath it at {beneath_point!r})")
    assert got == errno.EINVAL, (
        f"OT-TUCK-KEEPS-LOCK: after a propagated copy went beneath a locked mount, its umount by root in that "
        f"namespace gave {k.errname(got)}; a conforming kernel keeps it locked (EINVAL)")


@pytest.mark.rule("OT-SET-GROUP-UNBINDABLE")
@pytest.mark.fix("SET_GROUP_UNBINDABLE")
def test_set_group_onto_an_unbindable_mount_is_einval() -> None:
    # MOVE_MOUNT_SET_GROUP makes a private mount a peer (or slave) of another; an unbindable mount
    # is no private one: shared and unbindable cannot be one mount's state.
    def child():
        private_mount_ns()
        t = scratch_tmpfs()
        k.mount(None, t, None, k.MS_SHARED)
        got = {}
        for case, kind in (("private", k.MS_PRIVATE), ("unbindable", k.MS_UNBINDABLE)):
            os.mkdir(os.path.join(t, case))
            to = tempfile.mkdtemp(prefix="otns-")
            k.mount(os.path.join(t, case), to, None, k.MS_BIND)
            k.mount(None, to, None, kind)
            got[case] = k.errno_of(k.move_mount, k.AT_FDCWD, t, k.AT_FDCWD, to, MOVE_MOUNT_SET_GROUP)
        return got
    got = in_child(child)
    assert got["private"] == 0, (f"control: MOVE_MOUNT_SET_GROUP onto a private bind of the same file system gave "
                                 f"{k.errname(got['private'])}; a conforming kernel makes it a peer")
    assert got["unbindable"] == errno.EINVAL, (
        f"OT-SET-GROUP-UNBINDABLE: MOVE_MOUNT_SET_GROUP onto an unbindable mount gave {k.errname(got['unbindable'])}; "
        "a conforming kernel refuses it (EINVAL)")
