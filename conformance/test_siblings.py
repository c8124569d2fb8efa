"""The sibling APIs (Linux 7.1+): FSMOUNT_NAMESPACE, UNSHARE_EMPTY_MNTNS, CLONE_EMPTY_MNTNS.

Ported in spirit from the upstream fsmount_ns/ and empty_mntns/ selftests (Linux 7.2).
"""
from __future__ import annotations

import errno
import json
import os

import pytest

from . import syscalls as k
from .helpers import become_nobody, enter_userns, in_child, wait_child

FSMOUNT_NS = k.FSMOUNT_NAMESPACE | k.FSMOUNT_CLOEXEC


def fsmount_ns(attr: int = 0) -> int:
    fs = k.tmpfs_context()
    try:
        return k.fsmount(fs, FSMOUNT_NS, attr)
    finally:
        os.close(fs)


@pytest.mark.needs_feature("fsmount_namespace")
class TestFsmountNamespace:
    def test_creates_namespace_with_the_tmpfs(self) -> None:
        fd = fsmount_ns()
        try:
            assert os.readlink(f"/proc/self/fd/{fd}").startswith("mnt:["), "not a mount namespace fd"
            ns_id = k.mntns_id(fd)
            assert ns_id != k.own_mntns_id()
            mounts = k.mounts_of(ns_id)
            assert [(m.point, m.fs_type) for m in mounts] == [("/", "tmpfs")], mounts
            assert mounts[0].parent_id != mounts[0].mnt_id, "the tmpfs must sit on a hidden root"
        finally:
            os.close(fd)

    def test_without_the_flag_a_detached_mount(self) -> None:
        fs = k.tmpfs_context()
        try:
            fd = k.fsmount(fs, k.FSMOUNT_CLOEXEC)
        finally:
            os.close(fs)
        try:
            assert not os.readlink(f"/proc/self/fd/{fd}").startswith("mnt:[")
        finally:
            os.close(fd)

    def test_setns_into_it(self) -> None:
        fd = fsmount_ns()
        try:
            def child():
                k.setns(fd, k.CLONE_NEWNS)
                open("/written", "w").close()
                return sorted(os.listdir("/"))
            assert in_child(child) == ["written"], "after setns the root is not the new tmpfs"
        finally:
            os.close(fd)

    @pytest.mark.parametrize("attr", [k.MOUNT_ATTR_RDONLY, k.MOUNT_ATTR_NOSUID, k.MOUNT_ATTR_NOEXEC,
                                      k.MOUNT_ATTR_NOATIME,
                                      k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NOEXEC],
                             ids=["rdonly", "nosuid", "noexec", "noatime", "combined"])
    def test_mount_attributes(self, attr: int) -> None:
        fd = fsmount_ns(attr)
        try:
            ns_id = k.mntns_id(fd)
            (m,) = k.mounts_of(ns_id)
            assert m.attr & attr == attr, f"mnt_attr {m.attr:#x} lacks {attr:#x}"
        finally:
            os.close(fd)

    def test_requires_cap_sys_admin(self) -> None:
        fs = k.tmpfs_context()
        try:
            def child():
                become_nobody()
                return k.errno_of(k.fsmount, fs, FSMOUNT_NS, 0)
            got = in_child(child)
        finally:
            os.close(fs)
        assert got == errno.EPERM, f"an unprivileged fsmount(FSMOUNT_NAMESPACE) gave {k.errname(got)}"

    def test_owner_is_current_userns(self) -> None:
        def child():
            fs = k.tmpfs_context()  # fsopen needs privilege over our mount namespace: before
            enter_userns()
            fd = k.fsmount(fs, FSMOUNT_NS, 0)
            userns = k.ns_ioctl(fd, k.NS_GET_USERNS)
            return os.fstat(userns).st_ino, os.stat("/proc/self/ns/user").st_ino
        owner, own = in_child(child)
        assert owner == own, "the fsmount namespace is not owned by the caller's current user namespace"


def _empty_ns_view() -> dict:
    ids = k.listmount()
    root = k.statmount(ids[0]) if ids else None
    return {"count": len(ids), "fs_type": root.fs_type if root else None,
            "own_parent": root is not None and root.parent_id == root.mnt_id,
            "point": root.point if root else None, "cwd": os.getcwd()}


def check_empty(view: dict, how: str) -> None:
    assert view["count"] == 1, f"{how}: {view['count']} mounts, an empty namespace has exactly one"
    assert view["fs_type"] == "nullfs", f"{how}: the root is {view['fs_type']}, expected nullfs"
    assert view["own_parent"], f"{how}: the root of an empty namespace is its own parent"
    assert view["point"] == "/" and view["cwd"] == "/", view


@pytest.mark.needs_feature("unshare_empty_mntns")
class TestUnshareEmptyMntns:
    def test_in_userns(self) -> None:
        def child():
            enter_userns()
            k.unshare(k.UNSHARE_EMPTY_MNTNS)
            return _empty_ns_view()
        check_empty(in_child(child), "unshare(UNSHARE_EMPTY_MNTNS)")

    def test_eperm_without_caps(self) -> None:
        def child():
            become_nobody()
            return k.errno_of(k.unshare, k.UNSHARE_EMPTY_MNTNS)
        assert in_child(child) == errno.EPERM

    def test_nullfs_is_immutable_and_tmpfs_mounts_on_it(self) -> None:
        def child():
            enter_userns()
            k.unshare(k.UNSHARE_EMPTY_MNTNS)
            create = k.errno_of(lambda: os.open("/test", os.O_CREAT | os.O_RDWR, 0o644))
            fs = k.tmpfs_context()
            mnt = k.fsmount(fs, k.FSMOUNT_CLOEXEC)
            k.move_mount(mnt, "", k.AT_FDCWD, "/", k.MOVE_MOUNT_F_EMPTY_PATH)
            count = len(k.listmount())
            os.fchdir(mnt)
            os.chroot(".")
            with open("/testfile", "w") as f:
                f.write("test")
            return create, count, k.statmount(k.listmount()[0]).fs_type
        create, count, fs_type = in_child(child)
        assert create == errno.ENOENT, f"creating a file on the empty root gave {k.errname(create)}, expected ENOENT"
        assert count == 2 and fs_type == "tmpfs"


@pytest.mark.needs_feature("clone_empty_mntns")
class TestCloneEmptyMntns:
    def test_child_gets_an_empty_namespace(self) -> None:
        def child():
            enter_userns()
            before = len(k.listmount())
            r, w = os.pipe()
            pid = k.clone3(k.CLONE_EMPTY_MNTNS)
            if pid == 0:
                try:
                    os.close(r)
                    try:
                        view = _empty_ns_view()
                    except Exception as e:
                        view = {"error": f"{type(e).__name__}: {e}"}
                    with os.fdopen(w, "w") as f:
                        f.write(json.dumps(view))
                finally:
                    os._exit(0)
            os.close(w)
            with os.fdopen(r) as f:
                data = f.read()  # until the child exits: nothing else holds the write end
            wait_child(pid)
            assert data, "the child in the empty namespace died without a word"
            view = json.loads(data)
            assert "error" not in view, f"in the empty namespace: {view.get('error')}"
            return view, before, len(k.listmount())
        view, before, after = in_child(child)
        check_empty(view, "clone3(CLONE_EMPTY_MNTNS)")
        assert before == after, "the parent's namespace changed"

    def test_with_clone_fs_is_einval(self) -> None:
        def child():
            enter_userns()
            try:
                pid = k.clone3(k.CLONE_EMPTY_MNTNS | k.CLONE_FS)
            except OSError as e:
                return e.errno
            if pid == 0:
                os._exit(0)
            wait_child(pid)
            return 0
        assert in_child(child) == errno.EINVAL
