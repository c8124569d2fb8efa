"""The kinds of caller the oracle builds namespaces as (conformance/oracle.py): root in the
initial namespaces, and processes in user namespaces, owning their mount namespace or foreign
to it, one or two levels deep. The realistic container case is `inherited`: it owns a mount
namespace copied from root's, so its mounts and their flags are locked before it calls.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import syscalls as k
from .helpers import enter_userns


@dataclass(frozen=True)
class CallerKind:
    """Who calls: the user namespaces it enters, one unshare() each (always with CLONE_NEWUSER),
    and whether it mounts the source tree itself, after entering them (else it inherits the
    tree, mounted by root in the initial namespaces)."""
    name: str
    levels: tuple[int, ...]
    builds: bool = False

    @property
    def foreign(self) -> bool:
        """Its user namespace does not own the mount namespace it calls from."""
        return bool(self.levels) and not self.levels[-1] & k.CLONE_NEWNS


KINDS = {c.name: c for c in (
    CallerKind("root", ()),
    CallerKind("owner", (k.CLONE_NEWNS,), builds=True),  # owns a namespace and filled it itself
    CallerKind("foreign", (0,)),  # a user namespace alone: its mount namespace is root's
    CallerKind("inherited", (k.CLONE_NEWNS,)),  # a container: owns a namespace copied from root's, locked
    CallerKind("nested", (k.CLONE_NEWNS, k.CLONE_NEWNS)),  # the same two user namespaces deep
    CallerKind("nested-foreign", (0, 0)),  # two user namespaces deep, foreign to root's mount namespace
)}


def become(kind: CallerKind) -> None:
    """In a forked child: become a caller of this kind (its ids map to root in each level)."""
    for also in kind.levels:
        enter_userns(also=also)
