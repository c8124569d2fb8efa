"""The returned fd: an nsfs mount namespace file, close-on-exec exactly when asked, usable by
another process it is passed to, and also returned by open_tree_attr()."""
from __future__ import annotations

import errno
import os
import platform
import socket
import subprocess

import pytest

from . import syscalls as k
from .features import OPEN_TREE_ATTR_SINCE, kernel_version
from .helpers import CHILD_SECONDS, in_child

NS = k.OPEN_TREE_NAMESPACE

pytestmark = pytest.mark.needs_feature("open_tree_namespace")


@pytest.mark.rule("OT-FD")
def test_fd_is_nsfs_mnt() -> None:
    fd = k.open_tree(k.AT_FDCWD, "/", NS | k.OPEN_TREE_CLOEXEC)
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
        assert link == f"mnt:[{os.fstat(fd).st_ino}]", f"the fd links to {link!r}"
        assert os.readlink(f"/proc/self/fd/{fd}") != os.readlink("/proc/self/ns/mnt")
    finally:
        os.close(fd)


@pytest.mark.rule("OT-FD")
@pytest.mark.parametrize("cloexec", [False, True], ids=["inherited", "cloexec"])
def test_survives_exec_exactly_without_cloexec(cloexec: bool) -> None:
    fd = k.open_tree(k.AT_FDCWD, "/", NS | (k.OPEN_TREE_CLOEXEC if cloexec else 0))
    try:
        # The exec'd program looks for the fd in its own fd table: a shell, which starts in
        # milliseconds where a Python takes most of a second under TCG.
        probe = f"if [ -e /proc/self/fd/{fd} ]; then echo open; else echo closed; fi"
        out = subprocess.run(["/bin/sh", "-c", probe], capture_output=True, text=True,
                             close_fds=False, timeout=CHILD_SECONDS).stdout.strip()
        assert out in ("open", "closed"), f"the exec'd shell could not tell: {out!r}"
        assert out == ("closed" if cloexec else "open"), f"after exec the fd is {out}"
    finally:
        os.close(fd)


@pytest.mark.rule("OT-FD", "OT-SETNS")
def test_passed_over_unix_socket() -> None:
    fd = k.open_tree(k.AT_FDCWD, "/", NS | k.OPEN_TREE_CLOEXEC)
    ns_id = k.mntns_id(fd)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def child():
        _, fds, _, _ = socket.recv_fds(b, 16, 1)
        k.setns(fds[0], k.CLONE_NEWNS)
        return k.own_mntns_id()
    try:
        socket.send_fds(a, [b"ns"], [fd])
        seen = in_child(child)
    finally:
        a.close()
        b.close()
        os.close(fd)
    assert seen == ns_id, "a process that received the fd could not enter the namespace"


@pytest.mark.rule("OT-ATTR")
def test_open_tree_attr_accepts_the_flag() -> None:
    try:
        fd = k.open_tree_attr(k.AT_FDCWD, "/", NS | k.OPEN_TREE_CLOEXEC)
    except OSError as e:
        version = kernel_version(platform.release())
        if e.errno == errno.ENOSYS and version is not None and version < OPEN_TREE_ATTR_SINCE:
            pytest.skip("the kernel has no open_tree_attr() (new in 6.15)")
        pytest.fail(f"open_tree_attr(OPEN_TREE_NAMESPACE) gave {k.errname(e.errno)}, a conforming kernel an fd")
    try:
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("mnt:["), "open_tree_attr did not return a namespace fd"
    finally:
        os.close(fd)


@pytest.mark.rule("OT-ATTR")
def test_open_tree_attr_with_attributes() -> None:
    # OT-ATTR: open_tree_attr() applies its attributes to the file it opened. For
    # OPEN_TREE_NAMESPACE that file is the namespace's nsfs file, which is no mount root:
    # mount_setattr's "path must be a mount root" check refuses it (EINVAL) and no fd is
    # returned. All-zero attributes ask for nothing and the fd is returned. Control: the same
    # attributes on OPEN_TREE_CLONE make the detached mount read-only.
    rdonly = k.mount_attr(attr_set=k.MOUNT_ATTR_RDONLY)
    try:
        clone = k.open_tree_attr(k.AT_FDCWD, "/", k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC, rdonly)
    except OSError as e:
        version = kernel_version(platform.release())
        if e.errno == errno.ENOSYS and version is not None and version < OPEN_TREE_ATTR_SINCE:
            pytest.skip("the kernel has no open_tree_attr() (new in 6.15)")
        raise
    try:
        assert os.statvfs(clone).f_flag & os.ST_RDONLY, "control: open_tree_attr(OPEN_TREE_CLONE, RDONLY) not read-only"
    finally:
        os.close(clone)
    empty = k.errno_of(k.open_tree_attr, k.AT_FDCWD, "/", NS | k.OPEN_TREE_CLOEXEC, k.mount_attr())
    assert empty == 0, f"OT-ATTR: open_tree_attr(OPEN_TREE_NAMESPACE) with all-zero attributes gave {k.errname(empty)}"
    fds = set(os.listdir("/proc/self/fd"))
    got = k.errno_of(k.open_tree_attr, k.AT_FDCWD, "/", NS | k.OPEN_TREE_CLOEXEC, rdonly)
    assert got == errno.EINVAL, (f"OT-ATTR: open_tree_attr(OPEN_TREE_NAMESPACE) with MOUNT_ATTR_RDONLY gave "
                                 f"{k.errname(got)}; a conforming kernel refuses attributes on a namespace fd (EINVAL)")
    assert set(os.listdir("/proc/self/fd")) == fds, "OT-ATTR: the refused call left an fd behind"
