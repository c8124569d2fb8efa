"""The upstream kselftest fsmount_ns_test.c (Linux 7.2), case by case, written anew from it.

Names follow kselftest's fixture.variant.test: class = fixture, method = test, [param] = variant
(conformance/README.md has the table). Each test asserts at least what the C test asserts, and its
messages name the rule (docs/semantics.md) it guards. Where the C test skips on EINVAL ("not
supported"), we skip only when the run-time probe says the kernel lacks the feature. Where it
skips by design (a test "only for the basic case"), ours checks what that variant does instead.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from dataclasses import dataclass

import pytest

from . import syscalls as k
from .helpers import drop_effective_caps, enter_userns, fd_kind, fsmount_errno_in_child, fsmount_fd, in_child, slave_mount_ns

NS = k.FSMOUNT_NAMESPACE | k.FSMOUNT_CLOEXEC

pytestmark = pytest.mark.needs_feature("fsmount_namespace")


@dataclass(frozen=True)
class Variant:
    flags: int

    @property
    def makes_namespace(self) -> bool:
        return bool(self.flags & k.FSMOUNT_NAMESPACE)


VARIANTS = {"basic_tmpfs": Variant(NS), "cloexec_only": Variant(k.FSMOUNT_CLOEXEC),
            "namespace_only": Variant(k.FSMOUNT_NAMESPACE)}
variants = pytest.mark.parametrize("v", list(VARIANTS.values()), ids=list(VARIANTS))


TMPFS_MAGIC = 0x01021994


def fs_magic(fd: int) -> int:
    """fstatfs(fd).f_type (the first word of struct statfs)."""
    buf = ctypes.create_string_buffer(120)
    if k.libc.fstatfs(fd, buf) < 0:
        raise OSError(ctypes.get_errno(), "fstatfs")
    return struct.unpack_from("<q", buf.raw)[0]


def only_mount(fd: int) -> k.MountInfo:
    ns_id = k.mntns_id(fd)
    mounts = k.mounts_of(ns_id)
    assert len(mounts) == 1, f"FM-CONTENTS: the fsmount namespace shows {len(mounts)} mounts: {mounts}"
    return mounts[0]


class TestFsmountNs:
    """Fixture fsmount_ns: 3 variants x 4 tests."""

    @variants
    @pytest.mark.rule("FM-FD", "FM-CONTENTS")
    def test_create_namespace(self, v: Variant) -> None:
        fd = fsmount_fd(v.flags)
        try:
            cloexec = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
            kind = fd_kind(fd)
            if v.makes_namespace:
                ns_id = k.mntns_id(fd)
                count = len(k.listmount(ns_id))
        finally:
            os.close(fd)
        assert cloexec == bool(v.flags & k.FSMOUNT_CLOEXEC), f"FM-FD: close-on-exec is {cloexec}"
        if not v.makes_namespace:
            assert kind == "detached", f"without FSMOUNT_NAMESPACE fsmount() gave a {kind} fd, not a mount"
            return
        assert kind == "mntns", f"FM-FD: fsmount(FSMOUNT_NAMESPACE) gave a {kind} fd"
        assert ns_id != k.own_mntns_id(), "FM-CONTENTS: the new namespace has the caller's id"
        assert count >= 1, "FM-CONTENTS: listmount shows no mount in the new namespace"

    @variants
    @pytest.mark.rule("FM-CONTENTS")
    def test_setns_into_namespace(self, v: Variant) -> None:
        fd = fsmount_fd(v.flags)
        try:
            def child():
                k.setns(fd, k.CLONE_NEWNS)
                return [m.fs_type for m in k.mounts_of()]
            if v.makes_namespace:
                inside = in_child(child)
            else:  # upstream skips; a detached mount's fd is an O_PATH fd, which setns() cannot use
                refused = k.errno_of(k.setns, fd, k.CLONE_NEWNS)
        finally:
            os.close(fd)
        if v.makes_namespace:
            assert inside == ["tmpfs"], f"FM-CONTENTS: after setns, listmount shows {inside}"
        else:
            assert refused == errno.EBADF, f"setns on a detached mount's O_PATH fd gave {k.errname(refused)}, expected EBADF"

    @variants
    @pytest.mark.rule("FM-CONTENTS")
    def test_verify_mount_properties(self, v: Variant) -> None:
        fd = fsmount_fd(v.flags)
        try:
            if not v.makes_namespace:  # upstream skips; the detached mount is in no namespace of ours
                kind = fd_kind(fd)
                assert kind == "detached", f"fsmount() without FSMOUNT_NAMESPACE gave a {kind} fd"
                return
            m = only_mount(fd)
        finally:
            os.close(fd)
        assert m.mnt_id != m.parent_id, "FM-CONTENTS: the root mount must sit on a hidden root (parent id differs)"

    @variants
    @pytest.mark.rule("FM-CONTENTS")
    def test_verify_tmpfs_type(self, v: Variant) -> None:
        fd = fsmount_fd(v.flags)
        try:
            # upstream skips the detached case; its fd's filesystem must be the tmpfs all the same
            fs_type = only_mount(fd).fs_type if v.makes_namespace else fs_magic(fd)
        finally:
            os.close(fd)
        want = "tmpfs" if v.makes_namespace else TMPFS_MAGIC
        assert fs_type == want, f"FM-CONTENTS: the new mount's filesystem is {fs_type!r}, not tmpfs"


class TestFsmountNsCaps:
    @pytest.mark.rule("FM-CAP")
    def test_requires_cap_sys_admin(self) -> None:
        got = fsmount_errno_in_child(lambda: (enter_userns(), drop_effective_caps()), NS)
        assert got == errno.EPERM, (f"FM-CAP: fsmount(FSMOUNT_NAMESPACE) in a user namespace without effective "
                                    f"capabilities gave {k.errname(got)}, expected EPERM")


def own_userns() -> None:
    """upstream setup_userns(): root of a new user namespace owning a new mount namespace, all private."""
    enter_userns(also=k.CLONE_NEWNS)
    k.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)


def umount_all(fd: int) -> dict[str, int]:
    """Enter the namespace and unmount its mounts, deepest first (listmount in reverse)."""
    ns_id = k.mntns_id(fd)
    points = [k.statmount(i, ns_id).point for i in k.listmount(ns_id, flags=k.LISTMOUNT_REVERSE)]
    k.setns(fd, k.CLONE_NEWNS)
    return {p: k.errno_of(lambda p=p: k.umount2(p, k.MNT_DETACH)) for p in points}


class TestFsmountNsUserns:
    @pytest.mark.rule("FM-CONTENTS")
    def test_create_in_userns(self) -> None:
        def child():
            own_userns()
            fd = k.fsmount(k.tmpfs_context(), NS, 0)
            return [(m.point, m.fs_type) for m in k.mounts_of(k.mntns_id(fd))]
        got = in_child(child)
        assert got == [("/", "tmpfs")], f"FM-CONTENTS: in a user namespace the new namespace shows {got}"

    @pytest.mark.rule("FM-CONTENTS")
    def test_setns_in_userns(self) -> None:
        def child():
            own_userns()
            fd = k.fsmount(k.tmpfs_context(), NS, 0)

            def enter():
                k.setns(fd, k.CLONE_NEWNS)
                return os.listdir("/"), [m.fs_type for m in k.mounts_of()]
            return in_child(enter)
        entries, inside = in_child(child)
        assert entries == [] and inside == ["tmpfs"], (
            f"FM-CONTENTS: after setns in a user namespace: / holds {entries}, mounts {inside}")

    @pytest.mark.rule("FM-ROOT-LOCK")
    def test_umount_fails_einval(self) -> None:
        """The caller owns its mount namespace (not foreign), but its root is locked: FM-ROOT-LOCK."""
        def child():
            own_userns()
            return umount_all(k.fsmount(k.tmpfs_context(), NS, 0))
        got = in_child(child)
        assert got and all(e == errno.EINVAL for e in got.values()), (
            f"FM-ROOT-LOCK: umount in the fsmount namespace of a caller whose root is locked gave "
            f"{({p: k.errname(e) for p, e in got.items()})}; expected EINVAL for every mount")

    @pytest.mark.rule("FM-ROOT-LOCK")
    def test_umount_succeeds(self) -> None:
        def child():
            slave_mount_ns()
            return umount_all(k.fsmount(k.tmpfs_context(), NS, 0))
        got = in_child(child)
        assert got and all(e == 0 for e in got.values()), (
            f"FM-ROOT-LOCK: a privileged caller with nothing locked could not unmount "
            f"{({p: k.errname(e) for p, e in got.items()})}")


ATTRS = {"readonly": k.MOUNT_ATTR_RDONLY, "noexec": k.MOUNT_ATTR_NOEXEC, "nosuid": k.MOUNT_ATTR_NOSUID,
         "noatime": k.MOUNT_ATTR_NOATIME,
         "combined": k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOEXEC | k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NOATIME}


@pytest.mark.rule("FM-ATTR")
class TestFsmountNsMountAttrs:
    """One test per upstream case (readonly, noexec, nosuid, noatime, combined)."""

    def check(self, name: str) -> None:
        attr = ATTRS[name]
        fd = fsmount_fd(NS, attr)
        try:
            m = only_mount(fd)
        finally:
            os.close(fd)
        assert m.attr & attr == attr, f"FM-ATTR: {name}: the mount's attributes {m.attr:#x} lack {attr:#x}"

    def test_readonly(self) -> None:
        self.check("readonly")

    def test_noexec(self) -> None:
        self.check("noexec")

    def test_nosuid(self) -> None:
        self.check("nosuid")

    def test_noatime(self) -> None:
        self.check("noatime")

    def test_combined(self) -> None:
        self.check("combined")
