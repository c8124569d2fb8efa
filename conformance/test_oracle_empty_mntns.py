"""The differential oracle for empty mount namespaces.

`unshare(UNSHARE_EMPTY_MNTNS)` against the classic construction, `unshare(CLONE_NEWNS)` and then
detaching everything on the namespace's root (`umount2("/", MNT_DETACH)`), which only a caller
whose mounts are not locked can do: root in the initial namespaces (OR-EM-LOCKED). And the two
ways the feature is offered, `clone3(CLONE_EMPTY_MNTNS)` against `unshare(UNSHARE_EMPTY_MNTNS)`,
for every kind of caller. Each pair must agree on everything conformance/oracle.py observes of
the one mount the namespace holds, whatever the caller's namespace held (a generated tree).
"""
from __future__ import annotations

import os

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from . import oracle
from . import syscalls as k
from .helpers import fds_from_child, in_child, private_mount_ns, scratch_tmpfs, wait_child
from .oracle_callers import KINDS, CallerKind, become
from .oracle_trees import Layout, Node, Tree, build, trees

pytestmark = pytest.mark.needs_feature("empty_mntns")


def _clone3_ns(proc: int) -> int:
    """The mount namespace of a child made by clone3(CLONE_EMPTY_MNTNS), as an fd (read through
    the procfs fd `proc`: the child has none)."""
    r, w = os.pipe()
    pid = k.clone3(k.CLONE_EMPTY_MNTNS)
    if pid == 0:
        try:
            os.close(w)
            os.read(r, 1)
        finally:
            os._exit(0)
    os.close(r)
    try:
        return os.open(f"{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc)
    finally:
        os.close(w)
        wait_child(pid)


def _caller(kind: CallerKind, classic: str):
    """Two empty namespaces: the feature's by unshare(), and the other by `classic` ("clone3",
    or "detach": unshare(CLONE_NEWNS) then umount2("/", MNT_DETACH))."""
    proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    become(kind)
    other, err_other = None, 0
    try:
        if classic == "clone3":
            other = _clone3_ns(proc)
        else:
            pid = os.fork()  # the classic namespace in a child: this process still needs its own
            if pid == 0:
                code = 1
                try:
                    k.unshare(k.CLONE_NEWNS)
                    code = 2
                    k.umount2("/", k.MNT_DETACH)
                    os.kill(os.getpid(), 19)  # SIGSTOP: held while the parent opens its namespace
                    code = 0
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, os.WUNTRACED)
            if os.WIFSTOPPED(status):
                other = os.open(f"{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc)
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            else:  # the unshare (1) or the detach (2) failed
                err_other = -os.waitstatus_to_exitcode(status)
    except OSError as e:
        err_other = e.errno
    try:
        k.unshare(k.UNSHARE_EMPTY_MNTNS)
        return (0, err_other), [os.open("self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc), other]
    except OSError as e:
        return (e.errno, err_other), [None, other]


def run_example(tree: Tree, kind: CallerKind, classic: str) -> dict:
    private_mount_ns()
    build(tree, Layout(scratch_tmpfs()), None)
    proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    (err_a, err_b), (fd_a, fd_b) = fds_from_child(lambda: _caller(kind, classic))
    out: dict = {"errors": (k.errname(err_a), k.errname(err_b))}
    if err_a or err_b:
        return out
    labeler = oracle.Labeler(oracle.labels_of(oracle.records(), "root"))
    oracle.hop(fd_a, "/")
    out["A"] = oracle.observe(proc, labeler)
    oracle.hop(fd_b, "/")
    out["B"] = oracle.observe(proc, labeler)
    return out


def check(tree: Tree, kind: CallerKind, classic: str) -> None:
    names = ("UNSHARE_EMPTY_MNTNS", "CLONE_EMPTY_MNTNS" if classic == "clone3" else "unshare+detach")
    out = in_child(lambda: run_example(tree, kind, classic))
    err_a, err_b = out["errors"]
    if err_a != err_b:
        diffs = [f"the call: {names[0]} gave {err_a}, {names[1]} {err_b}"]
    elif err_a != "success":
        diffs = []
    else:
        diffs = oracle.compare(out["A"], out["B"], names)
    assert not diffs, (f"the two constructions differ for a {kind.name} caller ({len(diffs)}):\n  "
                       + "\n  ".join(diffs) + f"\nthe caller's namespace held: {tree}")


SHARED = Tree(Node(-1, "", "tmpfs", "shared"), (Node(-1, "sub", "tmpfs", "slave_shared", k.MOUNT_ATTR_RDONLY),),
              False, True)


@pytest.mark.timeout(600)  # only a failure takes long: hypothesis shrinks it
@pytest.mark.rule("OR-EMPTY")
@given(tree=trees(max_nodes=2, idmap=False, fstypes=("tmpfs", "bind")))
@example(tree=SHARED)
def test_unshare_empty_matches_unshare_and_detach(tree: Tree) -> None:
    check(tree, KINDS["root"], "detach")


@pytest.mark.timeout(600)
@pytest.mark.rule("OR-EMPTY")
@pytest.mark.needs_feature("clone_empty_mntns")
@given(kind=st.sampled_from([n for n in KINDS if n != "owner"]),
       tree=trees(max_nodes=2, idmap=False, fstypes=("tmpfs", "bind")))
@example(kind="root", tree=SHARED)
@example(kind="foreign", tree=SHARED)
@example(kind="inherited", tree=SHARED)
def test_clone3_empty_matches_unshare_empty(kind: str, tree: Tree) -> None:
    check(tree, KINDS[kind], "clone3")


@pytest.mark.rule("OR-EMPTY")
@pytest.mark.parametrize("kind", ["foreign", "inherited"])
def test_no_classic_empty_namespace_for_a_caller_in_a_user_namespace(kind: str) -> None:
    """OR-EMPTY's limit: such a caller may unshare(CLONE_NEWNS) but not detach what is mounted on
    the root of the copy (it is locked), while UNSHARE_EMPTY_MNTNS works."""
    out = in_child(lambda: run_example(SHARED, KINDS[kind], "detach"))
    assert out["errors"] == ("success", "-2"), (
        f"OR-EMPTY: for a {kind} caller UNSHARE_EMPTY_MNTNS gave {out['errors'][0]} and the classic detach "
        f"{'failed at unshare()' if out['errors'][1] == '-1' else out['errors'][1]}; a conforming kernel "
        "makes the empty namespace and refuses to detach the locked root tree (umount EINVAL)")
