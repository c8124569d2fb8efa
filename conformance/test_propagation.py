"""Propagation (docs/semantics.md: OT-PEER, OT-FOREIGN-SLAVE): a privileged copy of a shared mount is its peer;
a foreign caller's copy is a slave, receiving but never sending."""
from __future__ import annotations

import os

import pytest

from . import syscalls as k
from .helpers import enter_userns, fd_from_child, in_child, private_mount_ns, scratch_tmpfs

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC

pytestmark = pytest.mark.needs_feature("open_tree_namespace")


def shared_tmpfs() -> str:
    t = scratch_tmpfs()
    k.mount(None, t, None, k.MS_SHARED)
    os.mkdir(f"{t}/from-outside")
    os.mkdir(f"{t}/from-inside")
    return t


def mount_inside(fd: int, where: str) -> None:
    """From a child that enters the new namespace, mount a tmpfs at where (inside it)."""
    def grandchild():
        k.setns(fd, k.CLONE_NEWNS)
        k.mount("otns-inside", where, "tmpfs", 0, "size=1m")
    in_child(grandchild)


def points_in(ns_id: int) -> list[str]:
    return [m.point for m in k.mounts_of(ns_id)]


def both_ways(t: str, fd: int) -> tuple[bool, bool]:
    """(a mount on the original reached the copy, a mount in the copy reached the original)."""
    new_id = k.mntns_id(fd)
    k.mount("otns-outside", f"{t}/from-outside", "tmpfs", 0, "size=1m")
    inward = "/from-outside" in points_in(new_id)
    mount_inside(fd, "/from-inside")
    return inward, os.path.ismount(f"{t}/from-inside")


@pytest.mark.rule("OT-PEER")
def test_privileged_copy_is_a_peer() -> None:
    def child():
        private_mount_ns()
        t = shared_tmpfs()
        fd = k.open_tree(k.AT_FDCWD, t, NS)
        return both_ways(t, fd)
    inward, outward = in_child(child)
    assert inward, "a mount made on the original did not propagate into the privileged copy (peers share both ways)"
    assert outward, "a mount made in the privileged copy did not propagate back (peers share both ways)"


@pytest.mark.rule("OT-FOREIGN-SLAVE")
def test_foreign_copy_is_a_slave() -> None:
    def child():
        private_mount_ns()
        t = shared_tmpfs()
        # A foreign caller (new user namespace) makes the copy and hands us the fd; if its
        # open_tree() fails, the failure is re-raised here.
        def foreign_copy() -> int:
            enter_userns()
            try:
                return k.open_tree(k.AT_FDCWD, t, NS | k.AT_RECURSIVE)
            except OSError as e:
                raise AssertionError(f"a foreign caller's recursive copy gave {k.errname(e.errno)}, "
                                     "a conforming kernel a namespace fd") from None
        return both_ways(t, fd_from_child(foreign_copy))
    inward, outward = in_child(child)
    assert inward, "a mount made on the original did not propagate into the foreign copy (a slave receives)"
    assert not outward, "a mount made in the foreign copy propagated back to the original (a slave never sends)"


@pytest.mark.rule("OT-PEER")
def test_a_copy_made_shared_slave_receives_mounts_as_shared_slaves() -> None:
    # Made a slave of the original and shared again inside the new namespace, the copy's top is
    # a peer group of its own receiving from the original: a mount on the original arrives there
    # as a copy that is both, with a new peer group and the original mount's as its master.
    def child():
        private_mount_ns()
        t = shared_tmpfs()
        fd = k.open_tree(k.AT_FDCWD, t, NS)

        def reshape() -> None:
            k.setns(fd, k.CLONE_NEWNS)
            k.mount(None, "/", None, k.MS_SLAVE)
            k.mount(None, "/", None, k.MS_SHARED)
        in_child(reshape)
        k.mount("otns-outside", f"{t}/from-outside", "tmpfs", 0, "size=1m")
        original = k.statmount(k.mnt_id_of(f"{t}/from-outside"))
        arrived = [m for m in k.mounts_of(k.mntns_id(fd)) if m.point == "/from-outside"]
        return original, arrived
    original, arrived = in_child(child)
    assert len(arrived) == 1, f"a mount on the original reached the shared slave copy {len(arrived)} times, not once"
    m = arrived[0]
    assert m.propagation & k.MS_SLAVE and m.master == original.peer_group, (
        f"OT-PEER: the mount that propagated into the copy has master {m.master} (propagation {m.propagation:#x}); "
        f"a conforming kernel makes it a slave of the original's peer group {original.peer_group}")
    assert m.propagation & k.MS_SHARED and m.peer_group not in (0, original.peer_group), (
        f"OT-PEER: the mount that propagated into the shared slave copy has peer group {m.peer_group} (propagation "
        f"{m.propagation:#x}); a conforming kernel makes it shared, in a new peer group of its own")
