"""A source that is a directory inside a mount, not the mount's root (docs/semantics.md
OT-SUBDIR-ROOT, OT-REC-BELOW, OT-FOREIGN-NONREC, OT-SRC-LOCKEDCHILD).

The tree, a tmpfs T built in a child's private mount namespace:
    T/sub/marker           a file
    T/sub/below            a tmpfs, below the path T/sub
    T/sub/deep/er/m        a tmpfs two directories further down
    T/elsewhere            a tmpfs beside T/sub, in the same mount T
    T/quiet/marker         a directory with nothing mounted below it
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable

import pytest

from . import syscalls as k
from .helpers import enter_userns, enter_userns_and_mntns, in_child, private_mount_ns, scratch_tmpfs

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC
NS_REC = NS | k.AT_RECURSIVE

pytestmark = pytest.mark.needs_feature("open_tree_namespace")


def build_tree() -> str:
    t = scratch_tmpfs()
    for d in ("sub/below", "sub/deep/er/m", "elsewhere", "quiet"):
        os.makedirs(f"{t}/{d}")
    for f in ("sub/marker", "quiet/marker"):
        open(f"{t}/{f}", "w").close()
    for name, where in (("otns-below", "sub/below"), ("otns-deep", "sub/deep/er/m"), ("otns-else", "elsewhere")):
        k.mount(name, f"{t}/{where}", "tmpfs", 0, "size=1m")
    return t


def non_recursive_copy(path: str, become: Callable[[], None]) -> int:
    """The errno (0: success) of a non-recursive copy of T/path, made in a child after become()."""
    def child():
        private_mount_ns()
        t = build_tree()
        become()
        return k.errno_of(k.open_tree, k.AT_FDCWD, f"{t}/{path}", NS)
    return in_child(child)


@pytest.mark.rule("OT-SUBDIR-ROOT")
def test_copy_is_rooted_at_the_directory() -> None:
    def child():
        private_mount_ns()
        t = build_tree()
        fd = k.open_tree(k.AT_FDCWD, f"{t}/sub", NS)
        top = k.statmount(k.listmount(k.mntns_id(fd))[0], k.mntns_id(fd))

        def grandchild():
            k.setns(fd, k.CLONE_NEWNS)
            return sorted(os.listdir("/"))
        return top.root, top.point, in_child(grandchild)
    root, point, listing = in_child(child)
    assert (root, point) == ("/sub", "/"), (
        f"OT-SUBDIR-ROOT: the copy of T/sub is mounted at {point!r} with root {root!r} in T's filesystem; "
        "a conforming kernel roots it at the looked-up directory (root '/sub', mounted at '/')")
    assert listing == ["below", "deep", "marker"], (
        f"OT-SUBDIR-ROOT: after setns, / holds {listing}; a conforming kernel shows T/sub's entries")


@pytest.mark.rule("OT-REC-BELOW")
def test_recursive_copy_takes_only_mounts_below_the_path() -> None:
    def child():
        private_mount_ns()
        t = build_tree()
        fd = k.open_tree(k.AT_FDCWD, f"{t}/sub", NS_REC)
        return sorted(m.point for m in k.mounts_of(k.mntns_id(fd))), k.mnt_ns_nr_mounts(fd)
    points, counted = in_child(child)
    assert points == ["/", "/below", "/deep/er/m"], (
        f"OT-REC-BELOW: a recursive copy of T/sub holds {points}; a conforming kernel copies the mounts below "
        "T/sub (at /below and /deep/er/m) and not T/elsewhere, which is in the same mount but not below the path")
    # A copy of T/elsewhere would hang outside the copy's root, where listmount and mountinfo do
    # not look (they list what is reachable from the root); the namespace's own count sees it.
    assert counted == len(points), (
        f"OT-REC-BELOW: the namespace counts {counted} mounts (NS_MNT_GET_INFO) where {len(points)} are "
        "reachable: a conforming kernel copies nothing that is not below the path, reachable or not")


COVERED = pytest.mark.fix("COVERED_MOUNTS")  # the refusals came with it; the copies that work did not change


@pytest.mark.rule("OT-FOREIGN-NONREC")
@pytest.mark.parametrize("path, want", [pytest.param("quiet", 0, id="mount-elsewhere"),
                                        pytest.param("sub", errno.EINVAL, marks=COVERED, id="mount-below"),
                                        pytest.param("sub/deep", errno.EINVAL, marks=COVERED,
                                                     id="mount-two-levels-below"),
                                        pytest.param("sub/deep/er/m", 0, id="top-of-a-child")])
def test_foreign_non_recursive_counts_only_children_below_the_path(path: str, want: int) -> None:
    # sub/deep/er/m is the child mount itself: lookup ends on its root, which has no children.
    got = non_recursive_copy(path, enter_userns)
    why = ("a mount below the path would be uncovered by the copy" if want else
           "the mounts in T are not below this path, so nothing is uncovered")
    assert got == want, (f"OT-FOREIGN-NONREC: a foreign caller's non-recursive copy of T/{path} gave "
                         f"{k.errname(got)}; a conforming kernel gives {k.errname(want)} ({why})")


@pytest.mark.rule("OT-SRC-LOCKEDCHILD")
@pytest.mark.parametrize("path, want", [("quiet", 0), ("sub", errno.EINVAL)],
                         ids=["locked-mount-elsewhere", "locked-mount-below"])
def test_locked_children_count_only_below_the_path(path: str, want: int) -> None:
    # The caller owns its mount namespace (not foreign): only *locked* children below the path
    # refuse a non-recursive copy, and the copies of T's children made by unshare are locked.
    got = non_recursive_copy(path, enter_userns_and_mntns)
    assert got == want, (f"OT-SRC-LOCKEDCHILD: a non-recursive copy of T/{path}, whose mount has locked children "
                         f"{'below' if want else 'only elsewhere than below'} the path, gave {k.errname(got)}; "
                         f"a conforming kernel gives {k.errname(want)}")
