"""OPEN_TREE_NAMESPACE: the core checks (docs/semantics.md: OT-FLAGS-* to OT-DIR, OT-FD).

Checks without the needs_feature mark hold on every kernel, with or without the feature.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat

import pytest

from . import syscalls as k
from .helpers import in_child

NOBODY = 65534


def expect_errno(got: int, want: int, what: str) -> None:
    assert got == want, (f"{what}: the kernel gave {k.errname(got)}, "
                         f"a conforming kernel gives {k.errname(want)}")


@pytest.mark.rule("OT-FLAGS-UNKNOWN")
@pytest.mark.parametrize("bit", [1 << b for b in range(32) if not (1 << b) & k.KNOWN_FLAGS],
                         ids=lambda b: f"bit{b.bit_length() - 1}")
def test_unknown_flag_bit_is_einval(bit: int) -> None:
    # Holds on any kernel: bits outside the seven known ones were never valid.
    got = k.errno_of(k.open_tree, k.AT_FDCWD, "/", bit | k.OPEN_TREE_CLOEXEC)
    expect_errno(got, errno.EINVAL, f"open_tree('/', {bit:#x})")


@pytest.mark.rule("OT-FLAGS-RECURSIVE")
def test_recursive_alone_is_einval() -> None:
    # As upstream's open_tree_ns "invalid_recursive_alone" variant.
    got = k.errno_of(k.open_tree, k.AT_FDCWD, "/", k.AT_RECURSIVE | k.OPEN_TREE_CLOEXEC)
    expect_errno(got, errno.EINVAL, "open_tree('/', AT_RECURSIVE)")


@pytest.mark.rule("OT-FLAGS-EXCLUSIVE")
def test_clone_with_namespace_is_einval() -> None:
    # On a kernel without the feature 0x2 is an unknown bit, EINVAL as well.
    got = k.errno_of(k.open_tree, k.AT_FDCWD, "/",
                     k.OPEN_TREE_CLONE | k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC)
    expect_errno(got, errno.EINVAL, "open_tree('/', OPEN_TREE_CLONE|OPEN_TREE_NAMESPACE)")


@pytest.mark.rule("OT-FD", "OT-ID")
@pytest.mark.needs_feature("open_tree_namespace")
@pytest.mark.parametrize("recursive", [False, True], ids=["plain", "recursive"])
def test_returns_mount_namespace_fd(recursive: bool) -> None:
    # An nsfs fd for a mount namespace, with an id other than the caller's.
    flags = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC | (k.AT_RECURSIVE if recursive else 0)
    fd = k.open_tree(k.AT_FDCWD, "/", flags)
    own = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
        assert link.startswith("mnt:["), f"the fd links to {link!r}, a conforming kernel gives mnt:[INODE]"
        assert k.ns_ioctl(fd, k.NS_GET_NSTYPE) == k.CLONE_NEWNS, "NS_GET_NSTYPE is not CLONE_NEWNS"
        assert k.mntns_id(fd) != k.mntns_id(own), "the new namespace has the caller's own mount namespace id"
        assert os.fstat(fd).st_ino != os.fstat(own).st_ino, "the fd is the caller's own namespace"
    finally:
        os.close(fd)
        os.close(own)


@pytest.mark.rule("OT-FD")
@pytest.mark.needs_feature("open_tree_namespace")
@pytest.mark.parametrize("cloexec", [False, True], ids=["no-cloexec", "cloexec"])
def test_cloexec_exactly_when_asked(cloexec: bool) -> None:
    fd = k.open_tree(k.AT_FDCWD, "/", k.OPEN_TREE_NAMESPACE | (k.OPEN_TREE_CLOEXEC if cloexec else 0))
    try:
        has = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
        assert has == cloexec, f"FD_CLOEXEC is {has}, asked for {cloexec}"
    finally:
        os.close(fd)


@pytest.mark.rule("OT-SETNS")
@pytest.mark.needs_feature("open_tree_namespace")
def test_setns_roots_the_caller_in_the_copy() -> None:
    # After setns the process's root is the copied mount: here, a copy of /proc.
    fd = k.open_tree(k.AT_FDCWD, "/proc", k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC)
    outside_root = os.stat("/")
    proc_dev = os.stat("/proc").st_dev
    try:
        def child():
            k.setns(fd, k.CLONE_NEWNS)
            os.chdir("/")
            return {"self_status": os.path.exists("/self/status"), "root_dev": os.stat("/").st_dev,
                    "cwd": os.getcwd()}
        seen = in_child(child)
    finally:
        os.close(fd)
    assert seen["self_status"], "after setns, / is not the copy of /proc (no /self/status)"
    assert seen["root_dev"] == proc_dev, "after setns, / is not on procfs"
    assert seen["cwd"] == "/"
    assert os.stat("/") == outside_root, "the caller's own namespace changed"


@pytest.mark.rule("OT-DIR")
@pytest.mark.fix("ENOTDIR_TARGET")
@pytest.mark.needs_feature("open_tree_namespace")
def test_target_must_be_directory() -> None:
    # A regular file is refused with ENOTDIR.
    target = "/proc/self/status"
    assert stat.S_ISREG(os.stat(target).st_mode)
    got = k.errno_of(k.open_tree, k.AT_FDCWD, target, k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC)
    expect_errno(got, errno.ENOTDIR, f"open_tree({target!r}, OPEN_TREE_NAMESPACE)")


@pytest.mark.rule("OT-CAP")
@pytest.mark.needs_feature("open_tree_namespace")
def test_requires_cap_sys_admin_before_lookup() -> None:
    # As upstream's open_tree_ns_caps.requires_cap_sys_admin: EPERM without
    # CAP_SYS_ADMIN, even for a path that does not exist.
    def child():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        return (k.errno_of(k.open_tree, k.AT_FDCWD, "/", k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC),
                k.errno_of(k.open_tree, k.AT_FDCWD, "/does/not/exist",
                           k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC))
    on_root, on_missing = in_child(child)
    expect_errno(on_root, errno.EPERM, "unprivileged open_tree('/', OPEN_TREE_NAMESPACE)")
    expect_errno(on_missing, errno.EPERM, "unprivileged OPEN_TREE_NAMESPACE on a missing path")


@pytest.mark.rule("OT-LOOKUP")
def test_missing_path_is_enoent_for_clone() -> None:
    # Path lookup as for any open_tree, checked with OPEN_TREE_CLONE on every kernel.
    got = k.errno_of(k.open_tree, k.AT_FDCWD, "/does/not/exist", k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC)
    expect_errno(got, errno.ENOENT, "open_tree('/does/not/exist', OPEN_TREE_CLONE)")
