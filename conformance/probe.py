"""Run-time feature probes: what the running kernel offers, never guessed from its version.

Absence is a claim, checked twice. A kernel rejects an unknown flag (EINVAL) before any
other check, so a call that fails the *next* check tells a known flag from an unknown one:
open_tree(), unshare() and clone3() check privilege after the flags (vfs_open_tree() in
fs/namespace.c, check_unshare_flags() and clone3_args_valid() in kernel/fork.c), so a caller
without CAP_SYS_ADMIN gets EPERM for a known flag; fsmount() looks up its fd after the flags
(EBADF). A feature is *absent* only when root's call and that cross-check both give EINVAL.
Anything else short of root's success (EPERM for root; EINVAL for root while the cross-check
shows the flag is known) is a present feature that is *broken*: its tests run and
test_features fails, naming the rule.
"""
from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from . import syscalls as k
from .features import BY_NAME, BY_PROBE, FeatureSpec
from .helpers import become_nobody, in_child, private_mount_ns

PRESENT, ABSENT, BROKEN = "present", "absent", "broken"


@dataclass(frozen=True)
class Feature:
    present: bool  # the kernel knows the flag: tests needing it run (and fail if it is broken)
    detail: str
    state: str = PRESENT  # present | absent | broken
    root: str = ""  # what root's call gave: "success" or an errno name
    cross: str = ""  # what the cross-check gave

    def to_json(self) -> dict:
        return {"present": self.present, "state": self.state, "detail": self.detail,
                "root": self.root, "cross_check": self.cross}


@dataclass(frozen=True)
class CrossCheck:
    """A call that fails the check right after the flag check: `known` from a kernel that knows
    the flag, EINVAL from one that does not."""
    call: str
    known: int
    rule: str  # the rule that gives `known`


def _unprivileged(call: str, rule: str) -> CrossCheck:
    return CrossCheck(f"{call} without CAP_SYS_ADMIN", errno.EPERM, f"{rule}, checked after the flags")


def lacks(spec: FeatureSpec) -> str:
    return f"the kernel lacks {spec.interface} (new in Linux {spec.since})"


def classify(spec: FeatureSpec, call: str, einval_rules: str, cross: CrossCheck, root: int, got: int) -> Feature:
    """The feature's state from root's call and the cross-check (errnos, 0 = success)."""
    r, c = k.errname(root), k.errname(got)
    seen = f"root: {r}; {cross.call}: {c}"
    if root == 0 and got != 0:
        return Feature(True, f"{call} works ({seen})", PRESENT, r, c)
    if root == 0:
        return Feature(True, f"{call}: {cross.call} succeeded too; it must fail ({cross.rule}) ({seen})", BROKEN, r, c)
    if root == errno.EINVAL and got == errno.EINVAL:
        return Feature(False, f"{lacks(spec)}: {call} gave EINVAL, and so did {cross.call}", ABSENT, r, c)
    if root == errno.EPERM:
        why = f"EPERM for root is a bug, not absence ({spec.cap_rule}: CAP_SYS_ADMIN is all it needs)"
    elif got == cross.known:
        why = (f"the kernel knows {spec.interface} ({cross.call} gives {k.errname(cross.known)}: {cross.rule}) "
               f"but root gets {r}: present and broken, not absent ({einval_rules})")
    else:
        why = (f"neither present nor cleanly absent (an unknown flag is EINVAL before anything else; "
               f"{spec.cap_rule})")
    return Feature(True, f"{call}: {why} ({seen})", BROKEN, r, c)


def _checked(spec: FeatureSpec, call: str, einval_rules: str, cross: CrossCheck,
             root: Callable[[], int], cross_call: Callable[[], int]) -> Feature:
    try:
        return classify(spec, call, einval_rules, cross, in_child(root), in_child(cross_call))
    except (AssertionError, OSError) as e:  # the probe itself could not run: never "absent"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return Feature(True, f"{call}: the probe could not run: {first}", BROKEN)


def open_tree_namespace() -> Feature:
    """Root copies a scratch tmpfs (AT_RECURSIVE, in a private mount namespace): no rule refuses that
    to root. An unprivileged caller's copy of "/" is refused before lookup: EPERM if the flag is known."""
    flags = k.OPEN_TREE_NAMESPACE | k.AT_RECURSIVE | k.OPEN_TREE_CLOEXEC
    call = "open_tree(scratch tmpfs, OPEN_TREE_NAMESPACE|AT_RECURSIVE)"
    try:
        where = tempfile.mkdtemp(prefix="otns-probe-")
    except OSError as e:
        return Feature(True, f"{call}: the probe could not run: {e}", BROKEN)

    def root() -> int:
        private_mount_ns()
        k.mount("otns-probe", where, "tmpfs", 0, "size=1m")
        return k.errno_of(k.open_tree, k.AT_FDCWD, where, flags)

    def unprivileged() -> int:
        become_nobody()
        return k.errno_of(k.open_tree, k.AT_FDCWD, "/", flags)
    try:
        return _checked(BY_PROBE["open_tree_namespace"], call,
                        "no rule (OT-FLAGS-*, OT-SRC-*) refuses root a recursive copy of a fresh tmpfs",
                        _unprivileged("open_tree(OPEN_TREE_NAMESPACE)", "OT-CAP"), root, unprivileged)
    finally:
        os.rmdir(where)


def fsmount_namespace() -> Feature:
    """Before 7.1, fsmount() checked may_mount() before its flags, so an unprivileged caller gets
    EPERM from every kernel (seen on 6.18). The fd comes after the flags in every version: with
    fs_fd -1, root gets EBADF where FSMOUNT_NAMESPACE is known, EINVAL where it is not."""
    flags = k.FSMOUNT_NAMESPACE | k.FSMOUNT_CLOEXEC

    def root() -> int:
        fs = k.tmpfs_context()
        return k.errno_of(k.fsmount, fs, flags, 0)

    def bad_fd() -> int:
        return k.errno_of(k.fsmount, -1, flags, 0)
    return _checked(BY_PROBE["fsmount_namespace"], "fsmount(tmpfs, FSMOUNT_NAMESPACE)",
                    "FM-FLAGS-UNKNOWN: only unknown flag bits are EINVAL",
                    CrossCheck("fsmount(-1, FSMOUNT_NAMESPACE)", errno.EBADF, "the fd is looked up after the flags"),
                    root, bad_fd)


def unshare_empty_mntns() -> Feature:
    def root() -> int:
        return k.errno_of(k.unshare, k.UNSHARE_EMPTY_MNTNS)

    def unprivileged() -> int:
        become_nobody()
        return k.errno_of(k.unshare, k.UNSHARE_EMPTY_MNTNS)
    return _checked(BY_PROBE["unshare_empty_mntns"], "unshare(UNSHARE_EMPTY_MNTNS)",
                    "EM-FLAGS: only unknown flag bits are EINVAL",
                    _unprivileged("unshare(UNSHARE_EMPTY_MNTNS)", "EM-CAP"), root, unprivileged)


def _clone_empty() -> None:
    pid = k.clone3(k.CLONE_EMPTY_MNTNS)
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def clone_empty_mntns() -> Feature:
    def root() -> int:
        return k.errno_of(_clone_empty)

    def unprivileged() -> int:
        become_nobody()
        return k.errno_of(_clone_empty)
    return _checked(BY_PROBE["clone_empty_mntns"], "clone3(CLONE_EMPTY_MNTNS)",
                    "EM-FLAGS: only unknown flag bits are EINVAL",
                    _unprivileged("clone3(CLONE_EMPTY_MNTNS)", "EM-CAP"), root, unprivileged)


PROBES: dict[str, Callable[[], Feature]] = {
    "open_tree_namespace": open_tree_namespace, "fsmount_namespace": fsmount_namespace,
    "unshare_empty_mntns": unshare_empty_mntns, "clone_empty_mntns": clone_empty_mntns}


def combine(name: str, parts: list[Feature]) -> Feature:
    """One feature from its probes: present or absent only when every probe agrees."""
    spec = BY_NAME[name]
    if len(parts) == 1:
        return parts[0]
    states = {p.state for p in parts}
    detail = "; ".join(p.detail for p in parts)
    if states == {PRESENT}:
        return Feature(True, detail, PRESENT)
    if states == {ABSENT}:
        return Feature(False, lacks(spec) + ": " + "; ".join(p.detail.removeprefix(lacks(spec) + ": ") for p in parts),
                       ABSENT)
    if BROKEN in states:
        return Feature(True, "; ".join(p.detail for p in parts if p.state == BROKEN), BROKEN)
    return Feature(True, f"{spec.interface} came together in Linux {spec.since}, yet the kernel has one "
                         f"and lacks the other: {detail}", BROKEN)
