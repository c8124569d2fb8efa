"""The differential oracle for FSMOUNT_NAMESPACE: `fsmount(fs, FSMOUNT_NAMESPACE, attrs)` against
the classic construction by the same caller, `unshare(CLONE_NEWNS)`, then `fsmount(fs, 0, attrs)`
and `move_mount()` of the new mount onto a private stage. The two mounts must agree on everything
conformance/oracle.py observes, for generated filesystems and attributes and every kind of caller,
but where an OR-* rule of docs/semantics.md says otherwise.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from . import oracle
from . import syscalls as k
from .helpers import fds_from_child, in_child, private_mount_ns, scratch_tmpfs
from .oracle_callers import KINDS, CallerKind, become
from .oracle_trees import ATIMES, FLAG_BITS

pytestmark = pytest.mark.needs_feature("fsmount_namespace")


@dataclass(frozen=True)
class Case:
    fs: str
    attrs: int  # fsmount()'s attr_flags: MOUNT_ATTR_* flags and an atime mode


CASES = st.builds(Case, st.sampled_from(("tmpfs", "ramfs")),
                  st.builds(lambda f, a: sum(f) | a, st.lists(st.sampled_from(FLAG_BITS), unique=True, max_size=4),
                            st.sampled_from(ATIMES)))


def _context(case: Case) -> int:
    fd = k.fsopen(case.fs)
    k.fsconfig(fd, k.FSCONFIG_SET_STRING, "source", "otns-fm")
    if case.fs == "tmpfs":
        k.fsconfig(fd, k.FSCONFIG_SET_STRING, "size", "64k")
    k.fsconfig(fd, k.FSCONFIG_CMD_CREATE)
    return fd


def _caller(case: Case, kind: CallerKind, stage: str):
    # A foreign caller may not fsopen() (may_mount() in its mount namespace): it gets its
    # contexts from root before it becomes foreign, as a real one would be handed them.
    contexts = [_context(case), _context(case)] if kind.foreign else []
    become(kind)
    if not kind.foreign:
        contexts = [_context(case), _context(case)]
    feature = None
    fs = contexts[0]
    try:
        feature = k.fsmount(fs, k.FSMOUNT_NAMESPACE | k.FSMOUNT_CLOEXEC, case.attrs)
        err_feature = 0
    except OSError as e:
        err_feature = e.errno
    k.unshare(k.CLONE_NEWNS)
    k.mount("otns-stage", stage, "tmpfs", 0, "size=64k")
    k.mount(None, stage, None, k.MS_PRIVATE)
    os.mkdir(f"{stage}/top")
    fs = contexts[1]
    try:
        mnt = k.fsmount(fs, k.FSMOUNT_CLOEXEC, case.attrs)
        k.move_mount(mnt, "", k.AT_FDCWD, f"{stage}/top", k.MOVE_MOUNT_F_EMPTY_PATH)
        err_classic = 0
    except OSError as e:
        err_classic = e.errno
    classic = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    return (err_feature, err_classic), [feature, classic]


def run_example(case: Case, kind: CallerKind) -> dict:
    private_mount_ns()
    stage = f"{scratch_tmpfs()}/stage"
    os.mkdir(stage)
    proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    (err_a, err_b), (fd_a, fd_b) = fds_from_child(lambda: _caller(case, kind, stage))
    out: dict = {"errors": (k.errname(err_a), k.errname(err_b))}
    if err_a or err_b:
        return out
    labeler = oracle.Labeler({})
    oracle.hop(fd_a, "/")
    out["A"] = oracle.observe(proc, labeler)
    oracle.hop(fd_b, f"{stage}/top")
    out["B"] = oracle.observe(proc, labeler)
    oracle.hop(fd_a, "/")
    out["A top"] = k.errname(k.errno_of(k.umount2, "/", k.MNT_DETACH))
    oracle.hop(fd_b, f"{stage}/top")
    out["B top"] = k.errname(k.errno_of(k.umount2, "/", k.MNT_DETACH))
    return out


def exceptions(kind: CallerKind) -> tuple[oracle.Exception_, ...]:
    # OR-FM-SB: two fsmount() calls make two superblocks, with their own device numbers.
    sb = tuple(oracle.Exception_("OR-FM-SB", a) for a in ("sb_dev_major", "sb_dev_minor", "mountinfo dev"))
    if not kind.foreign:
        return sb
    # OR-FM-FOREIGN: a foreign caller's mount has its flags locked (FM-FOREIGN-LOCK); the classic
    # mount is the caller's own, in a namespace it owns
    return sb + (oracle.Exception_("OR-FM-FOREIGN", "setattr *", ("EPERM", "success")),
                 oracle.Exception_("OR-FM-FOREIGN", "remount *", ("EPERM", "success")))


def differences(out: dict, kind: CallerKind) -> list[str]:
    names = ("FSMOUNT_NAMESPACE", "unshare+fsmount+move_mount")
    err_a, err_b = out["errors"]
    if err_a != err_b:
        return [f"the call: {names[0]} gave {err_a}, {names[1]} {err_b}"]
    if err_a != "success":
        return []
    diffs = oracle.compare(out["A"], out["B"], names, exceptions(kind))
    # OR-TOP-LOCK: as for open_tree, the feature's mount is locked for every caller but root
    want = ("EINVAL", "success") if kind.name != "root" else (out["B top"], out["B top"])
    if (out["A top"], out["B top"]) != want:
        diffs.append(f"umount of the mount (MNT_DETACH): {names[0]} {out['A top']}, {names[1]} {out['B top']} "
                     f"(OR-TOP-LOCK expects {want[0]}, {want[1]})")
    return diffs


ALL = Case("tmpfs", k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV | k.MOUNT_ATTR_NOEXEC
           | k.MOUNT_ATTR_NOSYMFOLLOW | k.MOUNT_ATTR_NOATIME)
KIND_NAMES = [n for n in KINDS if n != "owner"]  # for fsmount, owner is inherited


# The caller is part of the generated input; each kind meets every flag at least once.
@pytest.mark.timeout(600)  # only a failure takes long: hypothesis shrinks it
@pytest.mark.rule("OR-FSMOUNT", "OR-FM-FOREIGN", "OR-TOP-LOCK")
@given(kind=st.sampled_from(KIND_NAMES), case=CASES)
@example(kind="root", case=ALL)
@example(kind="foreign", case=ALL)
@example(kind="inherited", case=Case("ramfs", ALL.attrs ^ k.MOUNT_ATTR_NOATIME | k.MOUNT_ATTR_STRICTATIME))
@example(kind="nested", case=ALL)
@example(kind="nested-foreign", case=Case("ramfs", k.MOUNT_ATTR_NODIRATIME | k.MOUNT_ATTR_NOEXEC))
def test_fsmount_ns_matches_unshare_fsmount_and_move(kind: str, case: Case) -> None:
    out = in_child(lambda: run_example(case, KINDS[kind]))
    diffs = differences(out, KINDS[kind])
    assert not diffs, (f"the two constructions differ for a {kind} caller ({len(diffs)}):\n  "
                       + "\n  ".join(diffs) + f"\nfilesystem and attributes: {case}")
