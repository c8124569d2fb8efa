"""Upstream changes that tests guard, so a failure tells the reader which fix the kernel lacks.

Boundaries among Debian's kernels were found with otns itself (2026-11-27); the subjects
come from Debian's changelogs of the kernels that first pass.
"""
from __future__ import annotations

FEATURE = ("OPEN_TREE_NAMESPACE was added in Linux 7.0 by merge 1bce1a664ac2 "
           "(\"Merge patch series 'mount: add OPEN_TREE_NAMESPACE'\")")
ENOTDIR_TARGET = ("the ENOTDIR check for a non-directory source came after the feature: Debian 7.0.12 lacks it, "
                  "7.0.13 and every 7.1+ kernel have it (upstream commit not identified by otns)")
COVERED_MOUNTS = ("fixed by \"namespace: keep covered mounts covered in OPEN_TREE_NAMESPACE\" "
                  "(stable 7.2.11; Debian 7.2.9 and older lack it)")

COPIED_UNBINDABLE = ("fixed by \"mount: keep a copied mount unbindable\" (stable 7.2.11; Debian 7.2.9 and older lack it): "
                     "before it, unshare(CLONE_NEWNS) made the copy of an unbindable mount bindable")


def hint(ref: str) -> str:
    return f" [{ref}]"
