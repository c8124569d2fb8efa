"""The reference model of open_tree()'s rules, checked on its own against docs/semantics.md."""
from __future__ import annotations

import errno
import itertools

from conformance.model import Caller, Target, expected
from conformance.syscalls import (
    AT_EMPTY_PATH,
    AT_NO_AUTOMOUNT,
    AT_RECURSIVE,
    AT_SYMLINK_NOFOLLOW,
    FLAG_NAMES,
    OPEN_TREE_CLOEXEC,
    OPEN_TREE_CLONE,
    OPEN_TREE_NAMESPACE,
)

NS, CLONE, REC = OPEN_TREE_NAMESPACE, OPEN_TREE_CLONE, AT_RECURSIVE
NOPRIV = Caller(cap_current_userns=False, may_mount=False)
MISSING = Target(lookup_errno=errno.ENOENT)


def all_combinations():
    bits = list(FLAG_NAMES)
    for n in range(len(bits) + 1):
        for combo in itertools.combinations(bits, n):
            yield sum(combo)


def test_128_combinations_split_as_the_rules_say():
    results = [expected(f) for f in all_combinations()]
    assert len(results) == 128
    # both copy bits: 32 EINVAL; neither with AT_RECURSIVE: 16 EINVAL
    assert sum(r.errno == errno.EINVAL for r in results) == 48
    assert sum(r.kind == "mntns" for r in results) == 32
    assert sum(r.kind == "detached" for r in results) == 32
    assert sum(r.kind == "opath" for r in results) == 16


def test_without_the_feature_the_flag_is_an_unknown_bit():
    old = Caller(has_feature=False)
    for f in all_combinations():
        r = expected(f, old)
        if f & NS:
            assert r.errno == errno.EINVAL
        else:
            assert r == expected(f)  # everything else behaves as before


def test_single_bits():
    for bit in range(32):
        flag = 1 << bit
        r = expected(flag)
        if flag in (REC,):
            assert r.errno == errno.EINVAL
        elif flag in FLAG_NAMES:
            assert r.errno == 0
        else:
            assert r.errno == errno.EINVAL, hex(flag)


def test_error_order():
    bad_flag = NS | 0x4  # an unknown bit
    assert expected(bad_flag, NOPRIV, MISSING).errno == errno.EINVAL  # bad flag beats all
    assert expected(NS | REC | CLONE, NOPRIV, MISSING).errno == errno.EINVAL
    assert expected(REC, NOPRIV, MISSING).errno == errno.EINVAL
    assert expected(NS, NOPRIV, MISSING).errno == errno.EPERM  # privilege beats the path
    assert expected(NS, Caller(), MISSING).errno == errno.ENOENT


def test_privilege_is_the_current_user_namespace_for_the_namespace_flag():
    # Root of a fresh user namespace: privileged there, not over its mount namespace.
    userns_root = Caller(cap_current_userns=True, may_mount=False)
    assert expected(NS, userns_root).kind == "mntns"
    assert expected(CLONE, userns_root).errno == errno.EPERM


def test_path_kinds():
    assert expected(NS, target=Target(is_dir=False)).errno == errno.ENOTDIR
    assert expected(CLONE, target=Target(is_dir=False)).kind == "detached"
    link = Target(symlink=True)
    assert expected(NS, target=link).kind == "mntns"  # followed to the directory
    assert expected(NS | AT_SYMLINK_NOFOLLOW, target=link).errno == errno.ENOTDIR
    assert expected(NS, target=Target(empty_path=True)).errno == errno.ENOENT
    assert expected(NS | AT_EMPTY_PATH, target=Target(empty_path=True)).kind == "mntns"
    assert expected(NS, target=Target(unbindable=True)).errno == errno.EINVAL
    assert expected(NS | REC, target=Target(foreign_mount=True)).errno == errno.EINVAL
    assert expected(AT_NO_AUTOMOUNT | OPEN_TREE_CLOEXEC).kind == "opath"


def test_each_result_names_the_rule_that_decides_it():
    # what the flag tests mark each parameter with (conformance/test_flags.py)
    assert expected(0x4).rule == "OT-FLAGS-UNKNOWN"
    assert expected(REC).rule == "OT-FLAGS-RECURSIVE"
    assert expected(NS | CLONE).rule == "OT-FLAGS-EXCLUSIVE"
    assert expected(NS, NOPRIV).rule == "OT-CAP"
    assert expected(NS, target=MISSING).rule == "OT-LOOKUP"
    assert expected(NS, target=Target(is_dir=False)).rule == "OT-DIR"
    assert expected(NS, target=Target(unbindable=True)).rule == "OT-SRC-UNBINDABLE"
    assert expected(NS | AT_EMPTY_PATH, target=Target(empty_path=True, foreign_mount=True)).rule == "OT-SRC-OTHERNS"
    assert expected(NS).rule == "OT-FD"
    assert expected(CLONE).rule == expected(AT_NO_AUTOMOUNT).rule == "OT-FLAGS-UNKNOWN"  # known bits accepted
    assert expected(CLONE, NOPRIV).rule == ""  # OPEN_TREE_CLONE's own privilege check: no rule here
