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
