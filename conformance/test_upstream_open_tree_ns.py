"""The upstream kselftest open_tree_ns_test.c (Linux 7.2), case by case, written anew from it.

Names follow kselftest's fixture.variant.test: class = fixture, method = test, [param] = variant
(conformance/README.md has the table). Each test asserts at least what the C test asserts.
Where the C test skips on EINVAL ("not supported"), we skip only when the run-time probe says
the kernel lacks the feature: on a kernel that has it, an EINVAL is a failure.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

import pytest

from . import syscalls as k
from .helpers import (
    drop_effective_caps,
    enter_userns,
    in_child,
    pivot_into_tmpfs,
    private_mount_ns,
    scratch_tmpfs,
    slave_mount_ns,
)

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC
NS_REC = NS | k.AT_RECURSIVE

pytestmark = pytest.mark.needs_feature("open_tree_namespace")


@dataclass(frozen=True)
class Variant:
    path: str
    flags: int
    expect_success: bool
    min_mounts: int


VARIANTS = {
    "basic_root": Variant("/", NS, True, 1),
    "recursive_root": Variant("/", NS_REC, True, 1),
    "subdir_tmp": Variant("/tmp", NS, True, 1),
    "subdir_proc": Variant("/proc", NS, True, 1),
    "recursive_tmp": Variant("/tmp", NS_REC, True, 1),
    "recursive_run": Variant("/run", NS_REC, True, 1),
    "invalid_recursive_alone": Variant("/", k.AT_RECURSIVE | k.OPEN_TREE_CLOEXEC, False, 0),
}
variants = pytest.mark.parametrize("v", list(VARIANTS.values()), ids=list(VARIANTS))


def _created(v: Variant) -> tuple[str, ...]:
    """The rules test_create_namespace checks for a variant."""
    if not v.expect_success:
        return ("OT-FLAGS-RECURSIVE",)
    return ("OT-FD", "OT-ID") if v.flags & k.AT_RECURSIVE else ("OT-FD", "OT-ID", "OT-NONREC-ONE")


def open_ns(path: str, flags: int) -> int:
    try:
        return k.open_tree(k.AT_FDCWD, path, flags)
    except OSError as e:
        pytest.fail(f"open_tree({path!r}, {k.flag_names(flags)}) failed with {k.errname(e.errno)}; "
                    "a conforming kernel returns a mount namespace fd")


class TestOpenTreeNs:
    """Fixture open_tree_ns: 7 variants x 3 tests."""

    @pytest.mark.parametrize("v", [pytest.param(v, marks=pytest.mark.rule(*_created(v)), id=name)
                                   for name, v in VARIANTS.items()])
    def test_create_namespace(self, v: Variant) -> None:
        if not v.expect_success:
            got = k.errno_of(k.open_tree, k.AT_FDCWD, v.path, v.flags)
            assert got == errno.EINVAL, f"AT_RECURSIVE alone gave {k.errname(got)}, a conforming kernel gives EINVAL"
            return
        fd = open_ns(v.path, v.flags)
        try:
            new_id = k.mntns_id(fd)
            assert new_id != k.own_mntns_id(), "the new namespace has the caller's namespace id"
            ids = k.listmount(new_id)
            assert len(ids) >= v.min_mounts, f"listmount shows {len(ids)} mounts in the new namespace"
            if not v.flags & k.AT_RECURSIVE:
                # Beyond upstream: without AT_RECURSIVE exactly the one copied mount is visible.
                assert len(ids) == 1, f"a non-recursive copy shows {len(ids)} mounts, a conforming kernel 1"
        finally:
            os.close(fd)

    @variants
    @pytest.mark.rule("OT-SETNS")
    def test_setns_into_namespace(self, v: Variant) -> None:
        if not v.flags & k.OPEN_TREE_NAMESPACE:
            pytest.skip("setns test only for OPEN_TREE_NAMESPACE variants (as upstream)")
        fd = open_ns(v.path, v.flags)
        try:
            new_id = k.mntns_id(fd)

            def child():
                k.setns(fd, k.CLONE_NEWNS)
                return k.own_mntns_id()
            assert in_child(child) == new_id, "after setns the process is not in the new namespace"
        finally:
            os.close(fd)

    @variants
    @pytest.mark.rule("OT-ID")
    def test_verify_mount_properties(self, v: Variant) -> None:
        if v.flags != NS or v.path != "/":
            pytest.skip("mount properties test only for the basic / case (as upstream)")
        fd = open_ns("/", NS)
        try:
            new_id = k.mntns_id(fd)
            ids = k.listmount(new_id)
            assert len(ids) >= 1
            sm = k.statmount(ids[0], new_id)
            assert sm.mnt_id != sm.parent_id, ("the copy is its own parent: it must sit on the "
                                               "namespace's hidden root, not be the root")
        finally:
            os.close(fd)


class TestOpenTreeNsCaps:
    @pytest.mark.rule("OT-CAP")
    def test_requires_cap_sys_admin(self) -> None:
        def child():
            enter_userns()
            drop_effective_caps()
            return k.errno_of(k.open_tree, k.AT_FDCWD, "/", NS)
        got = in_child(child)
        assert got == errno.EPERM, (f"without CAP_SYS_ADMIN open_tree(OPEN_TREE_NAMESPACE) gave "
                                    f"{k.errname(got)}, a conforming kernel gives EPERM")


def _count_in_new_ns(flags: int) -> int:
    fd = k.open_tree(k.AT_FDCWD, "/", flags)
    try:
        return len(k.listmount(k.mntns_id(fd)))
    finally:
        os.close(fd)


def umount_all_in_copy_of_root() -> list[tuple[str, int]]:
    """As upstream: copy "/" recursively, enter the copy, unmount its mounts children first;
    (mount point, errno) for each mount, in that order (several mounts may share a point)."""
    fd = k.open_tree(k.AT_FDCWD, "/", NS_REC)
    new_id = k.mntns_id(fd)
    ids = k.listmount(new_id, flags=k.LISTMOUNT_REVERSE)
    assert ids, "no mounts in the new namespace"
    points = [k.statmount(mnt_id, new_id).point for mnt_id in ids]
    k.setns(fd, k.CLONE_NEWNS)
    return [(point, k.errno_of(lambda p=point: k.umount2(p, k.MNT_DETACH))) for point in points]


class TestOpenTreeNsUserns:
    """A caller in a new user namespace, its mount namespace owned by the parent one: foreign."""

    @pytest.mark.rule("OT-CAP", "OT-FOREIGN-NONREC")
    def test_create_in_userns(self) -> None:
        # Upstream copies "/" non-recursively. A foreign caller may only do that when nothing is
        # mounted below "/" (rule 8), so the case runs on a bare tmpfs root, where it must work.
        def child():
            private_mount_ns()
            enter_userns(pivot_into_tmpfs())
            return _count_in_new_ns(NS)
        assert in_child(child) >= 1

    @pytest.mark.rule("OT-SETNS")
    def test_setns_in_userns(self) -> None:
        def child():
            private_mount_ns()
            enter_userns(pivot_into_tmpfs())
            fd = k.open_tree(k.AT_FDCWD, "/", NS)
            new_id = k.mntns_id(fd)

            def grandchild():
                k.setns(fd, k.CLONE_NEWNS)
                return k.own_mntns_id()
            return new_id, in_child(grandchild)
        new_id, seen = in_child(child)
        assert seen == new_id, "setns into the namespace made in a user namespace did not take"

    @pytest.mark.rule("OT-CAP")
    def test_recursive_in_userns(self) -> None:
        def child():
            enter_userns()
            return _count_in_new_ns(NS_REC)
        assert in_child(child) >= 1

    @pytest.mark.rule("OT-FOREIGN-LOCK")
    def test_umount_fails_einval(self) -> None:
        def child():
            enter_userns()
            return umount_all_in_copy_of_root()
        results = in_child(child)
        wrong = [(p, k.errname(e)) for p, e in results if e != errno.EINVAL]
        assert not wrong, (f"OT-FOREIGN-LOCK: in a foreign caller's copy every mount is locked and umount gives EINVAL; "
                           f"here: {wrong}")

    @pytest.mark.rule("OT-FOREIGN-LOCK")
    def test_umount_succeeds(self) -> None:
        def child():
            slave_mount_ns()
            return umount_all_in_copy_of_root()
        results = in_child(child)
        failed = [(p, k.errname(e)) for p, e in results if e]
        assert not failed, (f"OT-FOREIGN-LOCK: a privileged caller's copy is not locked and must unmount freely; "
                            f"failed: {failed}")


class TestOpenTreeNsUnbindable:
    @pytest.mark.rule("OT-SRC-UNBINDABLE")
    def test_fails_on_unbindable(self) -> None:
        def child():
            private_mount_ns()
            path = scratch_tmpfs()
            k.mount(None, path, None, k.MS_UNBINDABLE)
            return k.errno_of(k.open_tree, k.AT_FDCWD, path, NS)
        got = in_child(child)
        assert got == errno.EINVAL, f"copying an unbindable mount gave {k.errname(got)}, a conforming kernel EINVAL"

    @pytest.mark.rule("OT-SKIP-UNBINDABLE", "OT-REC-BELOW", "OT-NO-MNTNS-BINDS")
    def test_recursive_skips_on_unbindable(self) -> None:
        # Beyond upstream: every other mount of the caller's namespace is in the copy (as a
        # multiset of mount points: stacked mounts share one), except mount namespace file binds.
        def child():
            private_mount_ns()
            path = scratch_tmpfs()
            k.mount(None, path, None, k.MS_UNBINDABLE)
            own = k.mounts_of()
            fd = k.open_tree(k.AT_FDCWD, "/", NS_REC)
            try:
                new_id = k.mntns_id(fd)
                return path, own, [m.point for m in k.mounts_of(new_id)]
            finally:
                os.close(fd)
        path, own, points = in_child(child)
        assert path not in points, f"the unbindable mount {path} was copied into a privileged caller's namespace"
        skipped = [m.point for m in own if m.propagation & k.MOUNT_PROPAGATION_UNBINDABLE]
        want = sorted(m.point for m in own if not any(m.point == s or m.point.startswith(s.rstrip("/") + "/")
                                                      for s in skipped)
                      and not (m.fs_type == "nsfs" and m.root.startswith("mnt:")))
        assert sorted(points) == want, (f"OT-SKIP-UNBINDABLE: besides leaving out {skipped}, the copy must hold every "
                                        f"other mount; missing {sorted(set(want) - set(points))}, "
                                        f"unexpected {sorted(set(points) - set(want))}, copy {sorted(points)}")
