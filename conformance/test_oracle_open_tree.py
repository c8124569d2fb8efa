"""The differential oracle for OPEN_TREE_NAMESPACE: the feature against the classic construction.

For a generated source tree and one kind of caller, the caller builds the same namespace twice:
`open_tree(path, OPEN_TREE_NAMESPACE [| AT_RECURSIVE])`, and the classic way, `unshare(CLONE_NEWNS)`
then a bind mount (`MS_BIND [| MS_REC]`) of the same path onto a private stage. Both must fail
alike or agree on every mount below their tops (conformance/oracle.py: the whole statmount()
record, mountinfo, locks and locked flags, bindability) and on where mount events propagate
(from the source, from its masters, and from inside each copy). The exceptions by design are the
OR-* rules of docs/semantics.md, and nothing else is left out.
"""
from __future__ import annotations

import errno
import os

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from . import oracle
from . import syscalls as k
from .helpers import fds_from_child, in_child, private_mount_ns, scratch_tmpfs
from .oracle_callers import KINDS, CallerKind, become
from .oracle_trees import Layout, Node, Tree, build, trees, userns_fd

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC

pytestmark = pytest.mark.needs_feature("open_tree_namespace")


# Besides the generated trees, every kind of caller meets one tree with a bit of everything: each
# propagation type, flags and atime modes, an idmapped bind, a covered mount, a proc mount beside
# the path, the path below the top's root; copied recursively and not.
RICH = Tree(Node(-1, "", "tmpfs", "shared", k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NOSYMFOLLOW | k.MOUNT_ATTR_NODIRATIME,
                 k.MOUNT_ATTR_NOATIME), (
    Node(-1, "sub", "tmpfs", "shared", k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NODEV, k.MOUNT_ATTR_NOATIME),
    Node(0, "", "bind", "slave", k.MOUNT_ATTR_NOEXEC, k.MOUNT_ATTR_STRICTATIME, idmap=True),
    Node(-1, "sub", "ramfs", "slave_shared", k.MOUNT_ATTR_NOSYMFOLLOW, covered=True),
    Node(-1, "sub", "tmpfs", "unbindable"),
    Node(-1, "side", "proc", "private", k.MOUNT_ATTR_NODIRATIME),
), below=True, recursive=True)
RICH_OWN = Tree(RICH.top, tuple(Node(n.parent, n.place, "tmpfs" if n.fs == "proc" else n.fs, n.propagation,
                                     n.flags, n.atime, False, n.covered) for n in RICH.nodes), True, True)


def _caller(tree: Tree, kind: CallerKind, layout: Layout):
    """In the caller: both constructions of the same path. The errnos, and the fds of the
    caller's namespace (the source), the feature's and the classic one."""
    become(kind)
    if kind.builds:
        build(tree, layout, None)
    source = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    path = layout.path(tree)
    feature = None
    try:
        feature = k.open_tree(k.AT_FDCWD, path, NS | (k.AT_RECURSIVE if tree.recursive else 0))
        err_feature = 0
    except OSError as e:
        err_feature = e.errno
    k.unshare(k.CLONE_NEWNS)
    k.mount("otns-stage", layout.stage, "tmpfs", 0, "size=64k")
    k.mount(None, layout.stage, None, k.MS_PRIVATE)
    os.mkdir(f"{layout.stage}/top")
    top = f"{layout.stage}/top"
    try:
        k.mount(path, top, None, k.MS_BIND | (k.MS_REC if tree.recursive else 0))
        err_classic = 0
    except OSError as e:
        err_classic = e.errno
    if err_classic == errno.EPERM and kind.foreign and tree.recursive and not tree.below:
        top = path  # OR-FOREIGN-UNBINDABLE: the unshare()d copy itself, seen from the path
    classic = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    return (err_feature, err_classic, top), [source, feature, classic]


ORIGINS_A = {"A": "self", "B": "other", "S": "source", "M": "master"}
ORIGINS_B = {"B": "self", "A": "other", "S": "source", "M": "master"}


def run_example(tree: Tree, kind: CallerKind) -> dict:
    """In a disposable child, root in the initial namespaces: build the tree, have the caller
    build both namespaces, and observe them."""
    private_mount_ns()
    layout = Layout(scratch_tmpfs())
    users = userns_fd() if any(n.idmap for n in tree.nodes) else None
    if not kind.builds:
        build(tree, layout, users)
    own = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    (err_a, err_b, stage), (fd_s, fd_a, fd_b) = fds_from_child(lambda: _caller(tree, kind, layout))
    out: dict = {"errors": (k.errname(err_a), k.errname(err_b)), "classic": stage}
    if err_a or (err_b and stage != layout.path(tree)):
        return out
    tree_ns = fd_s if kind.builds else own
    # labels for the groups of the namespaces the source lives in: root's, then the caller's
    oracle.hop(own, "/")
    known = oracle.labels_of(oracle.records(), "root")
    oracle.hop(fd_s, "/")
    for g, name in oracle.labels_of(oracle.records(), "caller").items():
        known.setdefault(g, name)
    labeler = oracle.Labeler(known)
    oracle.hop(fd_a, "/")
    out["A"] = oracle.observe(proc, labeler)
    oracle.hop(fd_b, stage)
    out["B"] = oracle.observe(proc, labeler)
    # events: on the source's mounts, on the masters of its slaves, then inside each copy
    oracle.hop(fd_s, layout.path(tree))
    oracle.mount_events(oracle.observe(proc, labeler, probes=False), "S")
    oracle.hop(tree_ns, "/")
    for i in range(-1, len(tree.nodes)):
        if os.path.isdir(f"{layout.master(i)}/ev"):
            k.mount(f"{oracle.EVENT}-M-{i}", f"{layout.master(i)}/ev", "tmpfs", 0, "size=64k")
    oracle.hop(fd_a, "/")
    oracle.mount_events(out["A"], "A")
    oracle.hop(fd_b, stage)
    oracle.mount_events(out["B"], "B")
    oracle.hop(fd_a, "/")
    out["A events"] = oracle.arrivals(ORIGINS_A)
    oracle.hop(fd_b, stage)
    out["B events"] = oracle.arrivals(ORIGINS_B)
    oracle.hop(fd_s, layout.path(tree))
    seen = oracle.arrivals({})
    out["source events"] = {name: [p for o, p in seen if o.startswith(name + "-")] for name in "AB"}
    # last, as it takes the tree apart: is the top itself locked?
    oracle.hop(fd_a, "/")
    out["A top"] = k.errname(k.errno_of(k.umount2, "/", k.MNT_DETACH))
    oracle.hop(fd_b, stage)
    out["B top"] = k.errname(k.errno_of(k.umount2, "/", k.MNT_DETACH))
    return out


def differences(out: dict, tree: Tree, kind: CallerKind) -> list[str]:
    names = ("OPEN_TREE_NAMESPACE", "unshare+bind")
    err_a, err_b = out["errors"]
    # OR-FOREIGN-UNBINDABLE: a foreign caller's recursive copy keeps an unbindable child that
    # the classic bind refuses (EPERM: unbindable and locked); where the path is its mount's
    # root, the unshare()d copy seen from the path is the classic tree
    unbindable = (kind.foreign and tree.recursive and (err_a, err_b) == ("success", "EPERM")
                  and any(n.propagation == "unbindable" for n in tree.nodes))
    if unbindable and tree.below:
        return []
    if unbindable:
        names = ("OPEN_TREE_NAMESPACE", "unshare")
    elif err_a != err_b:
        return [f"the call: {names[0]} gave {err_a}, {names[1]} {err_b}"]
    elif err_a != "success":
        return []
    diffs = oracle.compare(out["A"], out["B"], names)
    if out["A events"] != out["B events"]:
        diffs.append(f"events arriving in the copy: {names[0]} {out['A events']}, {names[1]} {out['B events']}")
    if out["source events"]["A"] != out["source events"]["B"]:
        diffs.append(f"events from the copy arriving at the source: {names[0]} {out['source events']['A']}, "
                     f"{names[1]} {out['source events']['B']}")
    # OR-TOP-LOCK: the feature's top is locked for every caller but root in the initial namespaces
    # (foreign: OT-FOREIGN-LOCK; a caller whose namespace root is locked: OT-ROOT-LOCK); the classic
    # top is the caller's own new bind mount
    want = (("EINVAL", "EINVAL") if unbindable else ("EINVAL", "success") if kind.name != "root"
            else (out["B top"], out["B top"]))
    if (out["A top"], out["B top"]) != want:
        diffs.append(f"umount of the top (MNT_DETACH): {names[0]} {out['A top']}, {names[1]} {out['B top']} "
                     f"(OR-TOP-LOCK expects {want[0]}, {want[1]})")
    return diffs


def check(tree: Tree, kind: CallerKind) -> None:
    out = in_child(lambda: run_example(tree, kind))
    diffs = differences(out, tree, kind)
    assert not diffs, (f"the two constructions differ for a {kind.name} caller ({len(diffs)}):\n  "
                       + "\n  ".join(diffs) + f"\ntree: {tree}")


RICH_ROOT = Tree(RICH.top, RICH.nodes, False, True)
NO_UNBINDABLE = Tree(RICH.top, tuple(Node(n.parent, n.place, n.fs, "private" if n.propagation == "unbindable"
                                          else n.propagation, n.flags, n.atime, n.idmap, n.covered)
                                     for n in RICH.nodes), True, True)
INHERITING = [n for n, c in KINDS.items() if not c.builds]


# The caller is part of the generated input; each kind meets a rich tree at least once.
@pytest.mark.timeout(600)  # only a failure takes long: hypothesis shrinks it to the smallest tree
@pytest.mark.rule("OR-OPEN-TREE", "OR-TOP-LOCK", "OR-FOREIGN-UNBINDABLE")
@given(kind=st.sampled_from(INHERITING), tree=trees(idmap=True, fstypes=("tmpfs", "ramfs", "bind", "proc")))
@example(kind="root", tree=RICH)
@example(kind="root", tree=Tree(RICH.top, RICH.nodes, False, False))
@example(kind="foreign", tree=RICH_ROOT)
@example(kind="inherited", tree=RICH)
@example(kind="nested", tree=RICH_ROOT)
@example(kind="nested-foreign", tree=NO_UNBINDABLE)
def test_open_tree_ns_matches_unshare_and_bind(kind: str, tree: Tree) -> None:
    check(tree, KINDS[kind])


@pytest.mark.timeout(600)
@pytest.mark.rule("OR-OPEN-TREE", "OR-TOP-LOCK")
@given(tree=trees(idmap=False, fstypes=("tmpfs", "ramfs", "bind")))
@example(tree=RICH_OWN)
def test_open_tree_ns_matches_for_an_owner_that_built_its_tree(tree: Tree) -> None:
    check(tree, KINDS["owner"])
