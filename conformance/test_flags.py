"""Every flag combination and every single bit, against the reference model (conformance/model.py).

The model knows whether the kernel has OPEN_TREE_NAMESPACE from the run-time probe, so these
checks hold on every kernel: on one without the feature, the flag is just an unknown bit.
"""
from __future__ import annotations

import errno
import fcntl
import itertools
import os

import pytest

from . import model
from . import syscalls as k
from .helpers import become_nobody, fd_kind, in_child

ALL_BITS = list(k.FLAG_NAMES)
COMBINATIONS = [sum(c) for n in range(len(ALL_BITS) + 1) for c in itertools.combinations(ALL_BITS, n)]


def ruled(flags: int, value: int, name: str):
    """A parameter marked with the rule that decides open_tree(flags) as root, by the model."""
    return pytest.param(value, marks=pytest.mark.rule(model.expected(flags).rule), id=name)


def observe(flags: int, path: str = "/") -> tuple[int, str, bool]:
    """(errno, fd kind, close-on-exec) of open_tree(AT_FDCWD, path, flags)."""
    try:
        fd = k.open_tree(k.AT_FDCWD, path, flags)
    except OSError as e:
        return e.errno, "", False
    try:
        return 0, fd_kind(fd), bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
    finally:
        os.close(fd)


def check(flags: int, got: tuple[int, str, bool], want: model.Expect, who: str = "root") -> None:
    err, kind, cloexec = got
    what = f"open_tree('/', {k.flag_names(flags)}) as {who}"
    assert err == want.errno, (f"{what}: the kernel gave {k.errname(err) if err else 'an fd'}, "
                               f"a conforming kernel gives {want}")
    if not err:
        assert kind == want.kind, f"{what}: the kernel returned a {kind} fd, a conforming kernel a {want.kind} fd"
        assert cloexec == bool(flags & k.OPEN_TREE_CLOEXEC), f"{what}: FD_CLOEXEC is {cloexec}"


@pytest.fixture(scope="module")
def caller(features) -> model.Caller:
    return model.Caller(has_feature=features["open_tree_namespace"].present)


@pytest.mark.parametrize("flags", [ruled(f, f, k.flag_names(f)) for f in COMBINATIONS])
def test_combination(flags: int, caller: model.Caller) -> None:
    check(flags, observe(flags), model.expected(flags, caller))


@pytest.mark.parametrize("bit", [ruled(1 << b, b, f"bit{b}") for b in range(32)])
def test_single_bit(bit: int, caller: model.Caller) -> None:
    flags = 1 << bit
    check(flags, observe(flags), model.expected(flags, caller))


@pytest.mark.rule("OT-CAP", "OT-FLAGS-UNKNOWN", "OT-FLAGS-RECURSIVE", "OT-FLAGS-EXCLUSIVE")
def test_all_combinations_unprivileged(caller: model.Caller) -> None:
    # One child for all 128: a uid with no capabilities anywhere.
    def child():
        become_nobody()
        return {f: observe(f) for f in COMBINATIONS}
    seen = in_child(child)
    nobody = model.Caller(has_feature=caller.has_feature, cap_current_userns=False, may_mount=False)
    wrong = []
    for flags, got in seen.items():
        want = model.expected(flags, nobody)
        if got[0] != want.errno or (not got[0] and got[1] != want.kind):
            wrong.append(f"{k.flag_names(flags)}: {k.errname(got[0])}, expected {want}")
    assert not wrong, "as an unprivileged uid:\n" + "\n".join(wrong)


@pytest.mark.rule("OT-FLAGS-UNKNOWN")
def test_unknown_bits_are_einval_on_any_kernel() -> None:
    # The floor every kernel meets, feature or not (kept as its own check for readability).
    for bit in range(32):
        flag = 1 << bit
        if flag & (model.BASE_FLAGS | k.OPEN_TREE_NAMESPACE):
            continue
        got = k.errno_of(k.open_tree, k.AT_FDCWD, "/", flag)
        assert got == errno.EINVAL, f"bit {bit} ({flag:#x}) gave {k.errname(got)}, a conforming kernel EINVAL"
