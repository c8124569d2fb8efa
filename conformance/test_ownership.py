"""Who owns the new namespace, and who may make one (docs/semantics.md: OT-CAP, OT-OWNER)."""
from __future__ import annotations

import errno
import os

import pytest

from . import syscalls as k
from .helpers import become_nobody, drop_effective_caps, enter_userns, enter_userns_and_mntns, in_child, scratch_tmpfs, wait_child

NS_REC = k.OPEN_TREE_NAMESPACE | k.AT_RECURSIVE | k.OPEN_TREE_CLOEXEC

pytestmark = pytest.mark.needs_feature("open_tree_namespace")


def owner_of_new_namespace() -> dict:
    """In the calling process: make a namespace and describe its owner against our own userns."""
    fd = k.open_tree(k.AT_FDCWD, "/", NS_REC)
    try:
        userns = k.ns_ioctl(fd, k.NS_GET_USERNS)
        try:
            return {"owner_ino": os.fstat(userns).st_ino, "own_ino": os.stat("/proc/self/ns/user").st_ino,
                    "owner_uid": k.owner_uid(userns), "nstype": k.ns_ioctl(fd, k.NS_GET_NSTYPE)}
        finally:
            os.close(userns)
    finally:
        os.close(fd)


def check_owner(seen: dict, where: str) -> None:
    assert seen["nstype"] == k.CLONE_NEWNS, f"{where}: NS_GET_NSTYPE gave {seen['nstype']:#x}, not CLONE_NEWNS"
    assert seen["owner_ino"] == seen["own_ino"], (f"{where}: the new namespace is owned by user namespace "
                                                  f"inode {seen['owner_ino']}, not the caller's current one "
                                                  f"({seen['own_ino']})")


@pytest.mark.rule("OT-OWNER")
def test_owner_is_current_userns_as_root() -> None:
    seen = owner_of_new_namespace()
    check_owner(seen, "as root")
    assert seen["owner_uid"] == 0, f"NS_GET_OWNER_UID gave {seen['owner_uid']}"


@pytest.mark.rule("OT-OWNER")
def test_owner_after_unshare_newuser() -> None:
    def child():
        enter_userns()
        return owner_of_new_namespace()
    check_owner(in_child(child), "in a new user namespace")


@pytest.mark.rule("OT-OWNER")
def test_owner_two_user_namespaces_deep() -> None:
    def child():
        enter_userns()
        first = os.stat("/proc/self/ns/user").st_ino
        enter_userns()  # root of the first maps to root of the second
        seen = owner_of_new_namespace()
        seen["parent_ino"] = first
        return seen
    seen = in_child(child)
    check_owner(seen, "two user namespaces deep")
    assert seen["owner_ino"] != seen["parent_ino"], "owned by the intermediate user namespace"


@pytest.mark.rule("OT-OWNER")
def test_mount_namespace_fd_rejects_owner_uid_ioctl() -> None:
    # NS_GET_OWNER_UID is for user namespaces; on a mount namespace fd it is EINVAL.
    fd = k.open_tree(k.AT_FDCWD, "/", NS_REC)
    try:
        with pytest.raises(OSError) as e:
            k.owner_uid(fd)
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(fd)


def _attempt() -> int:
    return k.errno_of(k.open_tree, k.AT_FDCWD, "/", NS_REC)


@pytest.mark.rule("OT-CAP")
def test_unprivileged_uid_is_eperm() -> None:
    def child():
        become_nobody()
        return _attempt()
    assert in_child(child) == errno.EPERM


@pytest.mark.rule("OT-CAP")
def test_root_without_cap_sys_admin_is_eperm() -> None:
    def child():
        drop_effective_caps()
        return _attempt()
    got = in_child(child)
    assert got == errno.EPERM, f"uid 0 without effective CAP_SYS_ADMIN got {k.errname(got)}, expected EPERM"


@pytest.mark.rule("OT-CAP")
def test_root_of_user_namespace_may() -> None:
    def child():
        enter_userns()
        return _attempt()
    got = in_child(child)
    assert got == 0, f"the root of a user namespace got {k.errname(got)}; the capability in the current user namespace suffices"


@pytest.mark.rule("OT-CAP")
def test_capability_only_in_child_userns_is_eperm() -> None:
    # OT-CAP looks at the caller's current user namespace only. Here the caller (euid 0, no
    # effective capabilities) sits in a mount namespace owned by a child user namespace, which it
    # owns and in which it therefore has every capability; in its current user namespace it has
    # none. Control: OPEN_TREE_CLONE, which asks for privilege over the mount namespace
    # (may_mount()), works for the same caller.
    def child():
        ready_r, ready_w = os.pipe()
        done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            os.close(done_w)
            try:
                enter_userns_and_mntns()
                t = scratch_tmpfs()
                os.write(ready_w, t.encode())
                os.read(done_r, 1)  # EOF when the parent is done with our namespace
            finally:
                os._exit(0)
        os.close(ready_w)
        os.close(done_r)
        try:
            t = os.read(ready_r, 4096).decode()
            if not t:
                raise AssertionError("setup: the child could not make its user and mount namespaces")
            nsfd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
            k.setns(nsfd, k.CLONE_NEWNS)
        finally:
            os.close(done_w)
            wait_child(pid)
        owner = k.ns_ioctl(nsfd, k.NS_GET_USERNS)
        setup = os.fstat(owner).st_ino != os.stat("/proc/self/ns/user").st_ino
        drop_effective_caps()
        clone = k.errno_of(k.open_tree, k.AT_FDCWD, t, k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC)
        return setup, clone, k.errno_of(k.open_tree, k.AT_FDCWD, t, NS_REC)
    setup, clone, got = in_child(child)
    assert setup, "setup: the caller's mount namespace is owned by its own user namespace"
    assert clone == 0, (f"control: OPEN_TREE_CLONE by the owner of the mount namespace's user namespace gave "
                        f"{k.errname(clone)}; the caller is not privileged over its mount namespace as intended")
    assert got == errno.EPERM, (f"OT-CAP: a caller with CAP_SYS_ADMIN only in the child user namespace that owns its "
                                f"mount namespace got {k.errname(got)}; a conforming kernel checks the current user "
                                "namespace and gives EPERM")


@pytest.mark.rule("OT-CAP")
def test_foreign_caller_may_not_clone() -> None:
    # Contrast: OPEN_TREE_CLONE needs privilege over the caller's mount namespace (may_mount).
    def child():
        enter_userns()
        return (k.errno_of(k.open_tree, k.AT_FDCWD, "/", k.OPEN_TREE_CLONE | k.AT_RECURSIVE | k.OPEN_TREE_CLOEXEC),
                _attempt())
    clone, ns = in_child(child)
    assert clone == errno.EPERM, f"OPEN_TREE_CLONE by a foreign caller gave {k.errname(clone)}, expected EPERM"
    assert ns == 0, f"OPEN_TREE_NAMESPACE by the same caller gave {k.errname(ns)}, expected success"
