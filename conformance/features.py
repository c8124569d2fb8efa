"""The three features of docs/semantics.md: which run-time probes decide each, and when each
entered mainline; and the kernel version a release string names. The guest's probes and the
host's verdict both read it."""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    name: str  # as in docs/semantics.md
    interface: str  # the flag(s), for messages
    probes: tuple[str, ...]  # probe.py's probes; all of them decide the feature
    mainline: tuple[int, int]  # the first mainline release that has it
    cap_rule: str  # docs/semantics.md's rule that gives EPERM without CAP_SYS_ADMIN

    @property
    def since(self) -> str:
        return "{}.{}".format(*self.mainline)


FEATURES = (
    FeatureSpec("open_tree_ns", "OPEN_TREE_NAMESPACE", ("open_tree_namespace",), (7, 0), "OT-CAP"),
    FeatureSpec("fsmount_ns", "FSMOUNT_NAMESPACE", ("fsmount_namespace",), (7, 1), "FM-CAP"),
    FeatureSpec("empty_mntns", "UNSHARE_EMPTY_MNTNS/CLONE_EMPTY_MNTNS",
                ("unshare_empty_mntns", "clone_empty_mntns"), (7, 1), "EM-CAP"),
)
BY_NAME = {f.name: f for f in FEATURES}
BY_PROBE = {p: f for f in FEATURES for p in f.probes}

# A syscall the suite uses beside the features; a kernel this new must have it.
OPEN_TREE_ATTR_SINCE = (6, 15)

_VERSION = re.compile(r"(\d+)\.(\d+)")


def kernel_version(release: str) -> tuple[int, int] | None:
    """(major, minor) from `uname -r`: 7.2.13+deb14-cloud-amd64, 7.3.0-rc7, 7.3.0-rc7-00042-gabc-dirty.
    A release candidate counts as its release: features are merged before rc1."""
    m = _VERSION.match(release.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None
