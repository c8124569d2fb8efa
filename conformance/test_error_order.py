"""Error ordering: a bad flag beats missing privilege, which beats a bad path (SEMANTICS.md 1-5).

Every pairing (and all three at once) of each kind of fault, as an unprivileged uid where
privilege is missing. The expected errno comes from the reference model.
"""
from __future__ import annotations

import errno
import itertools

import pytest

from . import model
from . import syscalls as k
from .helpers import become_nobody, in_child

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC
BAD_FLAGS = {"unknown-bit": NS | 0x4, "recursive-alone": k.AT_RECURSIVE,
             "clone-and-namespace": NS | k.OPEN_TREE_CLONE}
BAD_PATHS = {"missing": ("/does/not/exist", errno.ENOENT), "loop-prefix": ("/proc/self/status/x", errno.ENOTDIR),
             "too-long": ("/" + "a" * 4096, errno.ENAMETOOLONG)}
FAULTS = ("flag", "privilege", "path")

CASES = []
for n in (2, 3):
    for faults in itertools.combinations(FAULTS, n):
        for fname in (BAD_FLAGS if "flag" in faults else [None]):
            for pname in (BAD_PATHS if "path" in faults else [None]):
                CASES.append((faults, fname, pname))


def _id(case) -> str:
    faults, fname, pname = case
    return "+".join(f for f in [fname, "no-privilege" if "privilege" in faults else None, pname] if f)


@pytest.mark.needs_feature("open_tree_namespace")
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_error_order(case) -> None:
    faults, fname, pname = case
    flags = BAD_FLAGS[fname] if fname else NS
    path, lookup_errno = BAD_PATHS[pname] if pname else ("/", 0)
    unprivileged = "privilege" in faults
    caller = model.Caller(cap_current_userns=not unprivileged, may_mount=not unprivileged)
    want = model.expected(flags, caller, model.Target(lookup_errno=lookup_errno))

    def attempt():
        if unprivileged:
            become_nobody()
        return k.errno_of(k.open_tree, k.AT_FDCWD, path, flags)
    got = in_child(attempt)
    assert got == want.errno, (f"{_id(case)}: the kernel gave {k.errname(got)}, a conforming kernel "
                               f"{k.errname(want.errno)} ({' beats '.join(f for f in FAULTS if f in faults)})")
