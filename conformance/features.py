"""The three features of docs/semantics.md: which run-time probes decide each, and when each
entered mainline. Data only: the guest's probes and the host's verdict both read it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    name: str  # as in docs/semantics.md
    interface: str  # the flag(s), for messages
    probes: tuple[str, ...]  # probe.py's probes; all of them decide the feature
    mainline: tuple[int, int]  # the first mainline release that has it

    @property
    def since(self) -> str:
        return "%d.%d" % self.mainline


FEATURES = (
    FeatureSpec("open_tree_ns", "OPEN_TREE_NAMESPACE", ("open_tree_namespace",), (7, 0)),
    FeatureSpec("fsmount_ns", "FSMOUNT_NAMESPACE", ("fsmount_namespace",), (7, 1)),
    FeatureSpec("empty_mntns", "UNSHARE_EMPTY_MNTNS/CLONE_EMPTY_MNTNS",
                ("unshare_empty_mntns", "clone_empty_mntns"), (7, 1)),
)
BY_NAME = {f.name: f for f in FEATURES}
BY_PROBE = {p: f for f in FEATURES for p in f.probes}
