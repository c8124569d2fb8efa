"""Error ordering: a bad flag beats missing privilege, which beats a bad path (docs/semantics.md: OT-FLAGS-* to OT-LOOKUP);
after the lookup, a non-directory beats the namespace limit, which beats the copy's own checks.

Every pairing (and all three at once) of each kind of fault, as an unprivileged uid where
privilege is missing. The expected errno comes from the reference model.
"""
from __future__ import annotations

import errno
import itertools
import os

import pytest

from . import model
from . import syscalls as k
from .helpers import become_nobody, enter_userns, in_child, private_mount_ns, scratch_tmpfs, write_file

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


def _rules(case) -> list[str]:
    """The rule whose errno wins (the model's), then the rule of each other fault in the case."""
    faults, fname, pname = case
    flags = BAD_FLAGS[fname] if fname else NS
    caller = model.Caller(cap_current_userns="privilege" not in faults, may_mount="privilege" not in faults)
    lookup = model.Target(lookup_errno=BAD_PATHS[pname][1] if pname else 0)
    every = [model.expected(flags, caller, lookup).rule, model.expected(flags).rule if fname else "",
             "OT-CAP" if "privilege" in faults else "", "OT-LOOKUP" if pname else ""]
    return list(dict.fromkeys(r for r in every if r))


@pytest.mark.needs_feature("open_tree_namespace")
@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.rule(*_rules(c)), id=_id(c)) for c in CASES])
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


# After the lookup (OT-DIR, OT-LIMIT, then the copy's own checks): a foreign caller whose user
# namespace may create no more mount namespaces. Each source, without and with that limit.
AFTER_LOOKUP = {
    # source: (errno without the limit, errno at the limit, the known fix that made it so)
    "regular-file": (errno.ENOTDIR, errno.ENOTDIR, "ENOTDIR_TARGET"),
    "unbindable-mount": (errno.EINVAL, errno.ENOSPC, ""),
    "mount-with-children": (errno.EINVAL, errno.ENOSPC, "COVERED_MOUNTS"),
    "mount-of-another-namespace": (errno.EINVAL, errno.ENOSPC, ""),
}


@pytest.mark.rule("OT-DIR", "OT-LIMIT", "OT-SRC-UNBINDABLE", "OT-FOREIGN-NONREC", "OT-SRC-OTHERNS")
@pytest.mark.fix("ENOTDIR_TARGET", "COVERED_MOUNTS")
@pytest.mark.needs_feature("open_tree_namespace")
def test_error_order_after_lookup() -> None:
    def child():
        private_mount_ns()
        t = scratch_tmpfs()
        open(f"{t}/file", "w").close()
        unbindable = scratch_tmpfs()
        k.mount(None, unbindable, None, k.MS_UNBINDABLE)
        parent = scratch_tmpfs()
        os.mkdir(f"{parent}/child")
        k.mount("otns-child", f"{parent}/child", "tmpfs", 0, "size=1m")
        home = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        private_mount_ns()
        other = os.open(scratch_tmpfs(), os.O_PATH | os.O_DIRECTORY)
        os.open("/proc/self/ns/mnt", os.O_RDONLY)  # held: keeps that namespace alive
        k.setns(home, k.CLONE_NEWNS)
        enter_userns()
        sources = {"regular-file": (k.AT_FDCWD, f"{t}/file"), "unbindable-mount": (k.AT_FDCWD, unbindable),
                   "mount-with-children": (k.AT_FDCWD, parent), "mount-of-another-namespace": (other, "")}
        flags = NS | k.AT_EMPTY_PATH

        def attempt() -> dict[str, int]:
            return {name: k.errno_of(k.open_tree, dfd, path, flags if path == "" else NS)
                    for name, (dfd, path) in sources.items()}
        free = attempt()
        write_file("/proc/sys/user/max_mnt_namespaces", "0")
        return free, attempt()
    free, limited = in_child(child)
    for name, (want_free, want_limited, change) in AFTER_LOOKUP.items():
        ref = f" (known fix {change})" if change else ""
        assert free[name] == want_free, (f"OT-DIR/OT-SRC-*/OT-FOREIGN-NONREC: {name} gave {k.errname(free[name])}, "
                                         f"a conforming kernel {k.errname(want_free)}{ref}")
        assert limited[name] == want_limited, (
            f"OT-LIMIT: {name} with max_mnt_namespaces reached gave {k.errname(limited[name])}; a conforming kernel "
            f"gives {k.errname(want_limited)} (OT-DIR comes before OT-LIMIT, OT-LIMIT before the copy's own "
            f"checks){ref}")
