"""Sources that are not a mount of the caller's own namespace, or no named place in any tree
(docs/semantics.md OT-SRC-OTHERNS, OT-SRC-UNMOUNTED, OT-SRC-NSFS-DETACHED, OT-SRC-PSEUDO).

may_copy_tree() accepts a mount of the caller's namespace, and a detached tree whose origin is
the caller's namespace or that has no origin at all (fsmount()); it refuses a mount of another
live namespace, a detached tree made from another namespace, and a mount that is in no
namespace any more. Each refusal is checked beside a control that the same fd works where the
rule allows it, so the EINVAL is the rule's and not a broken setup's.
"""
from __future__ import annotations

import ctypes
import errno
import os
import struct
import tempfile

import pytest

from . import kconfig
from . import syscalls as k
from .helpers import enter_userns, fd_from_child, fds_from_child, in_child, private_mount_ns, scratch_tmpfs

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC | k.AT_EMPTY_PATH
NS_REC = NS | k.AT_RECURSIVE
CLONE = k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC
CLONE_FD = CLONE | k.AT_EMPTY_PATH  # the sibling OPEN_TREE_CLONE of what an fd refers to

pytestmark = pytest.mark.needs_feature("open_tree_namespace")


def both(fd: int) -> tuple[int, int]:
    """errno of a non-recursive and of a recursive copy of the mount fd refers to."""
    return k.errno_of(k.open_tree, fd, "", NS), k.errno_of(k.open_tree, fd, "", NS_REC)


def in_second_namespace(fn):
    """In a child with a private mount namespace: run fn in a second, private mount namespace,
    then come back. Returns (fn's result, an fd on the second namespace: it keeps it alive)."""
    home = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    private_mount_ns()
    result = fn()
    other = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    k.setns(home, k.CLONE_NEWNS)
    os.close(home)
    return result, other


@pytest.mark.rule("OT-SRC-OTHERNS")
def test_mount_of_another_live_namespace_is_einval() -> None:
    def child():
        private_mount_ns()
        tfd, other = in_second_namespace(lambda: os.open(scratch_tmpfs(), os.O_PATH | os.O_DIRECTORY))
        alive = len(k.listmount(k.mntns_id(other))) > 0
        refused = both(tfd)
        k.setns(other, k.CLONE_NEWNS)
        return alive, refused, both(tfd)
    alive, refused, at_home = in_child(child)
    assert alive, "setup: the second mount namespace died although an fd held it"
    assert at_home == (0, 0), (f"control: from inside its own namespace the mount could not be copied "
                               f"({[k.errname(e) for e in at_home]})")
    assert refused == (errno.EINVAL, errno.EINVAL), (
        f"OT-SRC-OTHERNS: copying a mount of another live mount namespace gave "
        f"{[k.errname(e) for e in refused]} (plain, recursive); a conforming kernel refuses it (EINVAL)")


@pytest.mark.rule("OT-SRC-OTHERNS")
def test_detached_tree_made_in_another_namespace_is_einval() -> None:
    def child():
        private_mount_ns()
        theirs, _ = in_second_namespace(lambda: k.open_tree(k.AT_FDCWD, scratch_tmpfs(), CLONE))
        ours = k.open_tree(k.AT_FDCWD, scratch_tmpfs(), CLONE)
        return both(theirs), both(ours)
    theirs, ours = in_child(child)
    assert ours == (0, 0), (f"OT-SRC-OTHERNS: a detached tree cloned from the caller's own namespace gave "
                            f"{[k.errname(e) for e in ours]}; a conforming kernel accepts it")
    assert theirs == (errno.EINVAL, errno.EINVAL), (
        f"OT-SRC-OTHERNS: a detached tree cloned from another mount namespace gave "
        f"{[k.errname(e) for e in theirs]} (plain, recursive); a conforming kernel refuses it (EINVAL)")


@pytest.mark.rule("OT-SRC-OTHERNS")
@pytest.mark.parametrize("made_elsewhere", [False, True], ids=["made-here", "made-in-another-namespace"])
def test_fsmount_detached_mount_is_accepted(made_elsewhere: bool) -> None:
    # fsmount()'s mount has no origin namespace (seq_origin 0): may_copy_tree() accepts it wherever
    # it was made.
    def child():
        private_mount_ns()

        def make():
            fs = k.tmpfs_context()
            try:
                return k.fsmount(fs, k.FSMOUNT_CLOEXEC)
            finally:
                os.close(fs)
        mfd = in_second_namespace(make)[0] if made_elsewhere else make()
        got = both(mfd)
        fd = k.open_tree(mfd, "", NS) if got[0] == 0 else -1
        return got, [m.fs_type for m in k.mounts_of(k.mntns_id(fd))] if fd >= 0 else []
    got, types = in_child(child)
    assert got == (0, 0), (f"OT-SRC-OTHERNS: copying a detached fsmount() mount gave {[k.errname(e) for e in got]}; "
                           "a conforming kernel accepts it (it has no origin namespace)")
    assert types == ["tmpfs"], f"OT-SRC-OTHERNS: the copy of the fsmount() tmpfs holds {types}, not just that tmpfs"


@pytest.mark.rule("OT-SRC-UNMOUNTED")
def test_lazily_unmounted_mount_is_einval() -> None:
    def child():
        private_mount_ns()
        t = scratch_tmpfs()
        tfd = os.open(t, os.O_PATH | os.O_DIRECTORY)
        mounted = both(tfd)
        k.umount2(t, k.MNT_DETACH)
        return mounted, both(tfd)
    mounted, unmounted = in_child(child)
    assert mounted == (0, 0), f"control: the mount could not be copied before its umount ({mounted})"
    assert unmounted == (errno.EINVAL, errno.EINVAL), (
        f"OT-SRC-UNMOUNTED: copying a lazily unmounted mount gave {[k.errname(e) for e in unmounted]} "
        "(plain, recursive); a conforming kernel refuses a mount that is in no namespace (EINVAL)")


@pytest.mark.rule("OT-SRC-NSFS-DETACHED")
@pytest.mark.fix("UNMOUNTED_TREE_COPY", "ENOTDIR_TARGET")
def test_detached_bind_of_a_namespace_file_copies_only_alone() -> None:
    # may_copy_tree() accepts any nsfs file, mounted or not; a mount in no namespace has no tree
    # left to walk, so only the recursive copy is refused. OPEN_TREE_NAMESPACE refuses the file
    # first (OT-DIR).
    def child():
        private_mount_ns()
        f = os.path.join(scratch_tmpfs(), "uts")
        open(f, "w").close()
        k.mount("/proc/self/ns/uts", f, None, k.MS_BIND)
        fd = os.open(f, os.O_PATH)
        mounted = [k.errno_of(k.open_tree, fd, "", CLONE_FD | extra) for extra in (0, k.AT_RECURSIVE)]
        k.umount2(f, k.MNT_DETACH)
        detached = [k.errno_of(k.open_tree, fd, "", CLONE_FD | extra) for extra in (0, k.AT_RECURSIVE)]
        return mounted, detached, k.errno_of(k.open_tree, fd, "", NS_REC)
    mounted, detached, namespace = in_child(child)
    names = lambda errs: [k.errname(e) for e in errs]  # noqa: E731
    assert mounted == [0, 0], f"control: the mounted bind of a namespace file could not be cloned: {names(mounted)}"
    assert detached == [0, errno.EINVAL], (
        f"OT-SRC-NSFS-DETACHED: cloning a lazily unmounted bind of a namespace file gave {names(detached)} "
        "(alone, recursive); a conforming kernel clones it alone (nsfs files may be copied from anywhere) "
        "and refuses the recursive copy of a mount in no namespace (EINVAL)")
    assert namespace == errno.ENOTDIR, (
        f"OT-DIR: OPEN_TREE_NAMESPACE of the detached namespace file gave {k.errname(namespace)}, not ENOTDIR")


BPF_TOKEN_CREATE = 36  # enum bpf_cmd (include/uapi/linux/bpf.h)


def _bpf_token(bpffs_fd: int) -> int:
    attr = ctypes.create_string_buffer(struct.pack("<II", 0, bpffs_fd), 8)  # token_create: flags, bpffs_fd
    return k._check(k.libc.syscall(k.NR_BPF, ctypes.c_int(BPF_TOKEN_CREATE), attr, ctypes.c_uint(8)))


def _bpf_missing() -> str | None:
    """Why BPF tokens cannot be made here (None: they can); a skip claimed against a config
    that has CONFIG_BPF_SYSCALL fails instead."""
    got = k.errno_of(k.fsopen, "bpf")
    if got == 0:
        return None
    built = kconfig.built_with(kconfig.known(), "CONFIG_BPF_SYSCALL")
    if built:
        raise AssertionError(f"fsopen(\"bpf\") gave {k.errname(got)} although the kernel's config has "
                             "CONFIG_BPF_SYSCALL: the BPF file system it promises is not there")
    return ("no BPF file system (fsopen(\"bpf\") gave " + k.errname(got) + "): "
            + ("the kernel's config does not set CONFIG_BPF_SYSCALL" if built is False
               else "the kernel's config is unknown to otns, so this is unchecked"))


@pytest.mark.rule("OT-SRC-PSEUDO")
@pytest.mark.fix("PSEUDO_DENTRY_ROOT", "ENOTDIR_TARGET")
def test_a_bpf_token_is_no_source() -> None:
    # A BPF token is a file with no name in any tree (a pseudo dentry on the BPF file system's
    # mount, freed without an RCU delay): no path walk may ever find it, so no copy may hold it.
    why = _bpf_missing()
    if why:
        pytest.skip(why)

    def in_userns() -> tuple[None, list[int | None]]:
        enter_userns(also=k.CLONE_NEWNS)  # fsopen() wants CAP_SYS_ADMIN over the mount namespace too
        return None, [k.fsopen("bpf"), os.open("/proc/self/ns/user", os.O_RDONLY)]

    def child():
        private_mount_ns()
        # The BPF file system belongs to a user namespace (tokens exist only outside the initial
        # one); delegating commands to it takes CAP_SYS_ADMIN here, as does creating it.
        _, (fs, userns) = fds_from_child(in_userns)
        k.fsconfig(fs, k.FSCONFIG_SET_STRING, "delegate_cmds", "any")
        k.fsconfig(fs, k.FSCONFIG_CMD_CREATE)
        where = os.path.join(scratch_tmpfs(), "bpf")
        os.mkdir(where)
        mnt = k.fsmount(fs, k.FSMOUNT_CLOEXEC, 0)
        k.move_mount(mnt, "", k.AT_FDCWD, where, k.MOVE_MOUNT_F_EMPTY_PATH)
        root = os.open(where, os.O_RDONLY | os.O_DIRECTORY)  # bpf() takes no O_PATH fd, as fsmount's is

        def make_token() -> int:
            k.setns(userns, k.CLONE_NEWUSER)
            return _bpf_token(root)
        token = fd_from_child(make_token)
        controls = (k.errno_of(k.open_tree, mnt, "", CLONE_FD), k.errno_of(k.open_tree, mnt, "", NS))
        return controls, k.errno_of(k.open_tree, token, "", CLONE_FD), k.errno_of(k.open_tree, token, "", NS)
    controls, cloned, namespace = in_child(child)
    assert controls == (0, 0), (f"control: the BPF file system's mount itself could not be copied "
                                f"({[k.errname(e) for e in controls]}: clone, namespace)")
    assert cloned == errno.EINVAL, (
        f"OT-SRC-PSEUDO: open_tree(OPEN_TREE_CLONE) of a BPF token gave {k.errname(cloned)}; a conforming "
        "kernel refuses a pseudo file no path leads to (EINVAL)")
    assert namespace == errno.ENOTDIR, (
        f"OT-SRC-PSEUDO: open_tree(OPEN_TREE_NAMESPACE) of a BPF token gave {k.errname(namespace)}, not ENOTDIR")


@pytest.mark.rule("OT-SRC-OTHERNS")
@pytest.mark.fix("ENOTDIR_TARGET")
@pytest.mark.parametrize("kind", ["pidfd", "nsfs"])
def test_pidfs_and_nsfs_files_are_cloned_from_anywhere(kind: str) -> None:
    # may_copy_tree() takes a pidfd's or a namespace file's dentry wherever its mount lives (an
    # internal mount, in no namespace of ours): the sibling OPEN_TREE_CLONE clones it alone;
    # OPEN_TREE_NAMESPACE refuses it as no directory (OT-DIR).
    def child():
        fd = os.pidfd_open(os.getpid()) if kind == "pidfd" else os.open("/proc/self/ns/uts", os.O_RDONLY)
        return k.errno_of(k.open_tree, fd, "", CLONE_FD), k.errno_of(k.open_tree, fd, "", NS)
    cloned, namespace = in_child(child)
    assert cloned == 0, (f"OT-SRC-OTHERNS: open_tree(OPEN_TREE_CLONE) of a {kind} gave {k.errname(cloned)}; a "
                         "conforming kernel clones it (pidfs and nsfs files may be copied from anywhere)")
    assert namespace == errno.ENOTDIR, f"OT-DIR: OPEN_TREE_NAMESPACE of a {kind} gave {k.errname(namespace)}, not ENOTDIR"


@pytest.mark.rule("OT-NSFILE-NO-PROPAGATION")
def test_a_mount_namespace_file_is_not_bound_where_it_would_propagate() -> None:
    # A binding of a mount namespace file is never copied (copy_tree() refuses one as a copy's
    # root): on a mount with a peer the bind would have to be copied into the peer, so it fails.
    def child():
        private_mount_ns()
        shared, private = scratch_tmpfs(), scratch_tmpfs()
        k.mount(None, shared, None, k.MS_SHARED)
        peer = tempfile.mkdtemp(prefix="otns-peer-")
        k.mount(shared, peer, None, k.MS_BIND)  # a peer of shared
        for d in (shared, private):
            open(os.path.join(d, "f"), "w").close()
        # A namespace newer than ours (binding an older one's file could make a loop: refused).
        src = f"/proc/self/fd/{k.open_tree(k.AT_FDCWD, scratch_tmpfs(), NS)}"
        alone = k.errno_of(k.mount, src, os.path.join(private, "f"), None, k.MS_BIND)
        propagating = k.errno_of(k.mount, src, os.path.join(shared, "f"), None, k.MS_BIND)
        return alone, propagating, os.path.ismount(os.path.join(peer, "f"))
    alone, propagating, in_peer = in_child(child)
    assert alone == 0, f"control: binding a mount namespace file on a private mount gave {k.errname(alone)}"
    assert propagating == errno.EINVAL, (
        f"OT-NSFILE-NO-PROPAGATION: binding a mount namespace file on a mount with a peer gave "
        f"{k.errname(propagating)}; a conforming kernel refuses (EINVAL): the peer would get a copy of it")
    assert not in_peer, "OT-NSFILE-NO-PROPAGATION: the peer holds a copy of the mount namespace file's binding"
