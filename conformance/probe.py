"""Run-time feature probes: what the running kernel offers, never guessed from its version."""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from . import syscalls as k


@dataclass(frozen=True)
class Feature:
    present: bool
    detail: str


def open_tree_namespace() -> Feature:
    """Root's OPEN_TREE_NAMESPACE on / works on a kernel with the feature; EINVAL means absent."""
    try:
        fd = k.open_tree(k.AT_FDCWD, "/", k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC)
    except OSError as e:
        if e.errno == errno.EINVAL:
            return Feature(False, 'open_tree("/", OPEN_TREE_NAMESPACE) gave EINVAL: '
                                  "the kernel lacks OPEN_TREE_NAMESPACE (new in Linux 7.0)")
        if e.errno == errno.EPERM:
            return Feature(False, "cannot probe OPEN_TREE_NAMESPACE: EPERM (run as root)")
        raise
    os.close(fd)
    return Feature(True, "open_tree(OPEN_TREE_NAMESPACE) returned a namespace fd")


def fsmount_namespace() -> Feature:
    """FSMOUNT_NAMESPACE (7.1+): fsmount() returns a namespace fd instead of a mount fd."""
    try:
        fs = k.tmpfs_context()
    except OSError as e:
        return Feature(False, f"cannot probe FSMOUNT_NAMESPACE: fsopen(tmpfs) gave {k.errname(e.errno)}")
    try:
        fd = k.fsmount(fs, k.FSMOUNT_NAMESPACE | k.FSMOUNT_CLOEXEC)
    except OSError as e:
        if e.errno == errno.EINVAL:
            return Feature(False, "fsmount(FSMOUNT_NAMESPACE) gave EINVAL: the kernel lacks FSMOUNT_NAMESPACE (new in 7.1)")
        raise
    finally:
        os.close(fs)
    os.close(fd)
    return Feature(True, "fsmount(FSMOUNT_NAMESPACE) returned a namespace fd")


def _in_userns_child(fn) -> int:
    """errno of fn() run as root of a fresh user namespace, in a child (0 on success)."""
    from .helpers import enter_userns, in_child

    def child():
        enter_userns()
        try:
            fn()
        except OSError as e:
            return e.errno
        return 0
    return in_child(child)


def unshare_empty_mntns() -> Feature:
    err = _in_userns_child(lambda: k.unshare(k.UNSHARE_EMPTY_MNTNS))
    if err == errno.EINVAL:
        return Feature(False, "unshare(UNSHARE_EMPTY_MNTNS) gave EINVAL: the kernel lacks it (new in 7.1)")
    return Feature(True, "unshare(UNSHARE_EMPTY_MNTNS) is known to the kernel")


def clone_empty_mntns() -> Feature:
    def attempt():
        pid = k.clone3(k.CLONE_EMPTY_MNTNS)
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    err = _in_userns_child(attempt)
    if err == errno.EINVAL:
        return Feature(False, "clone3(CLONE_EMPTY_MNTNS) gave EINVAL: the kernel lacks it (new in 7.1)")
    return Feature(True, "clone3(CLONE_EMPTY_MNTNS) is known to the kernel")
