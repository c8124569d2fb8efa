"""What the new namespace holds, seen through listmount/statmount and from inside after setns.

Each test builds a real mount tree (tmpfs with nested submounts, bind mounts, a bind mount of
a mount namespace file) in a child's private mount namespace.
"""
from __future__ import annotations

import os

import pytest

from . import syscalls as k
from .helpers import in_child, private_mount_ns, scratch_tmpfs

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC
NS_REC = NS | k.AT_RECURSIVE

pytestmark = pytest.mark.needs_feature("open_tree_namespace")


def newer_mntns_fd() -> int:
    """An fd on a mount namespace newer than ours: only such a file may be bind-mounted
    (an older or the same namespace would risk a reference loop, mnt_ns_loop())."""
    return k.open_tree(k.AT_FDCWD, "/", NS)


def bind_mntns_file(fd: int, target: str) -> None:
    open(target, "w").close()
    k.mount(f"/proc/self/fd/{fd}", target, None, k.MS_BIND)


def build_tree(nsfd: int) -> str:
    """T (tmpfs) with T/a (tmpfs), T/a/inner (tmpfs), T/b bind-mounted on T/c, a file T/marker,
    and a mount namespace file bind-mounted on T/nsfile."""
    t = scratch_tmpfs()
    for d in ("a", "b", "c"):
        os.mkdir(f"{t}/{d}")
    k.mount("otns-a", f"{t}/a", "tmpfs", 0, "size=1m")
    os.mkdir(f"{t}/a/inner")
    k.mount("otns-inner", f"{t}/a/inner", "tmpfs", 0, "size=1m")
    open(f"{t}/b/in-b", "w").close()
    k.mount(f"{t}/b", f"{t}/c", None, k.MS_BIND)
    open(f"{t}/marker", "w").close()
    bind_mntns_file(nsfd, f"{t}/nsfile")
    return t


def snapshot(flags: int) -> dict:
    def child():
        private_mount_ns()
        nsfd = newer_mntns_fd()
        t = build_tree(nsfd)
        fd = k.open_tree(k.AT_FDCWD, t, flags)
        new_id = k.mntns_id(fd)
        mounts = k.mounts_of(new_id)
        return {"mounts": [(m.point, m.fs_type) for m in mounts], "ids": [m.mnt_id for m in mounts],
                "first_parent": mounts[0].parent_id if mounts else None}
    return in_child(child)


@pytest.mark.rule("OT-NONREC-ONE")
def test_without_recursive_one_mount() -> None:
    s = snapshot(NS)
    assert s["mounts"] == [("/", "tmpfs")], f"a non-recursive copy holds {s['mounts']}, expected just the tmpfs at /"


@pytest.mark.rule("OT-REC-BELOW", "OT-NO-MNTNS-BINDS")
def test_recursive_copies_the_subtree_and_nothing_else() -> None:
    s = snapshot(NS_REC)
    points = sorted(p for p, _ in s["mounts"])
    # T, T/a, T/a/inner, and the bind mount on T/c; never T/nsfile; nothing from outside T.
    assert points == ["/", "/a", "/a/inner", "/c"], f"the recursive copy holds {points}"
    assert all(fs == "tmpfs" for _, fs in s["mounts"]), s["mounts"]


@pytest.mark.rule("OT-ID")
def test_root_is_hidden() -> None:
    s = snapshot(NS_REC)
    assert s["first_parent"] not in s["ids"], "the copy's parent (the hidden root) is listed"
    assert s["first_parent"] != s["ids"][0]


@pytest.mark.rule("OT-SETNS")
def test_after_setns_root_cwd_and_files() -> None:
    def child():
        private_mount_ns()
        nsfd = newer_mntns_fd()
        t = build_tree(nsfd)
        before = [m.mnt_id for m in k.mounts_of()]
        fd = k.open_tree(k.AT_FDCWD, t, NS_REC)

        def grandchild():
            k.setns(fd, k.CLONE_NEWNS)
            return {"cwd": os.getcwd(), "root_files": sorted(os.listdir("/")),
                    "in_c": os.listdir("/c"), "inner_is_mount": os.path.ismount("/a/inner")}
        seen = in_child(grandchild)
        seen["own_unchanged"] = [m.mnt_id for m in k.mounts_of()] == before
        return seen
    seen = in_child(child)
    assert seen["cwd"] == "/", f"after setns the cwd is {seen['cwd']!r}, a conforming kernel puts it at /"
    assert {"a", "b", "c", "marker", "nsfile"} <= set(seen["root_files"]), seen["root_files"]
    assert seen["in_c"] == ["in-b"], "the bind mount's content is not visible in the copy"
    assert seen["inner_is_mount"], "the nested submount is not a mount point in the copy"
    assert seen["own_unchanged"], "making the namespace changed the caller's own mount table"


@pytest.mark.rule("OT-NO-MNTNS-BINDS")
def test_copy_of_shared_root_recursive_has_no_mntns_file_binds() -> None:
    # OT-NO-MNTNS-BINDS on the whole root: a bind of a mount namespace file is left out, a bind of
    # another nsfs file (the caller's net namespace) is copied like any mount.
    def child():
        private_mount_ns()
        nsfd = newer_mntns_fd()
        t = scratch_tmpfs()
        bind_mntns_file(nsfd, f"{t}/mntns")
        open(f"{t}/netns", "w").close()
        k.mount("/proc/self/ns/net", f"{t}/netns", None, k.MS_BIND)
        own = {m.point: m.root for m in k.mounts_of() if m.fs_type == "nsfs"}
        fd = k.open_tree(k.AT_FDCWD, "/", NS_REC)
        return t, own, [(m.point, m.root) for m in k.mounts_of(k.mntns_id(fd)) if m.fs_type == "nsfs"]
    t, own, copied = in_child(child)
    assert own.get(f"{t}/mntns", "").startswith("mnt:") and own.get(f"{t}/netns", "").startswith("net:"), (
        f"setup: the nsfs binds are not in the caller's namespace as made: {own}")
    mntns = [m for m in copied if m[1].startswith("mnt:")]
    assert not mntns, f"OT-NO-MNTNS-BINDS: binds of mount namespace files were copied: {mntns}"
    assert (f"{t}/netns", own[f"{t}/netns"]) in copied, (
        f"OT-NO-MNTNS-BINDS: the bind of a net namespace file at {t}/netns was not copied (nsfs mounts in the copy: "
        f"{copied}); a conforming kernel leaves out only mount namespace files")


@pytest.mark.rule("OT-ID")
def test_ns_mnt_get_info_counts_the_copied_mounts() -> None:
    # OT-ID: NS_MNT_GET_INFO's nr_mounts (the hidden root not counted) equals what listmount shows.
    def child():
        private_mount_ns()
        nsfd = newer_mntns_fd()
        t = build_tree(nsfd)
        counts = {}
        for name, flags in (("plain", NS), ("recursive", NS_REC)):
            fd = k.open_tree(k.AT_FDCWD, t, flags)
            counts[name] = (k.mnt_ns_nr_mounts(fd), len(k.listmount(k.mntns_id(fd))))
        return counts
    counts = in_child(child)
    assert counts == {"plain": (1, 1), "recursive": (4, 4)}, (
        f"OT-ID: NS_MNT_GET_INFO's mount count against listmount's, by copy: {counts}; a conforming kernel "
        "counts the copied mounts (1 plain, 4 recursive here), not the hidden root")


@pytest.mark.rule("OT-ID")
def test_ns_mnt_get_info_counts_an_unshared_copy_as_listmount_does() -> None:
    # The classic construction the feature replaces, unshare(CLONE_NEWNS), counts its copy the
    # same way: every mount listmount shows, whatever the namespace holds.
    def child():
        private_mount_ns()
        t = scratch_tmpfs()
        for sub in ("a", "b"):
            os.mkdir(f"{t}/{sub}")
            k.mount("otns-sub", f"{t}/{sub}", "tmpfs", 0, "size=1m")
        k.unshare(k.CLONE_NEWNS)
        fd = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        return k.mnt_ns_nr_mounts(fd), len(k.listmount(k.mntns_id(fd)))
    counted, listed = in_child(child)
    assert counted == listed and listed >= 3, (
        f"OT-ID: after unshare(CLONE_NEWNS) NS_MNT_GET_INFO counts {counted} mounts where listmount shows {listed}; "
        "a conforming kernel counts every copied mount")


@pytest.mark.rule("OT-SLAVE-KEEPS-MASTER")
def test_copy_of_a_slave_keeps_its_master() -> None:
    # OT-SLAVE-KEEPS-MASTER: M (shared) is bound on S, S made a slave of M's peer group; the copy
    # of S is a slave of the same group, so a mount on M reaches it.
    def child():
        private_mount_ns()
        m = scratch_tmpfs()
        k.mount(None, m, None, k.MS_SHARED)
        os.mkdir(f"{m}/later")
        s = scratch_tmpfs()
        k.mount(m, s, None, k.MS_BIND)
        k.mount(None, s, None, k.MS_SLAVE)
        group = next(x.peer_group for x in k.mounts_of() if x.point == m)
        fd = k.open_tree(k.AT_FDCWD, s, NS)
        new_id = k.mntns_id(fd)
        top = k.statmount(k.listmount(new_id)[0], new_id)
        k.mount("otns-later", f"{m}/later", "tmpfs", 0, "size=1m")
        return group, top.propagation, top.master, [p.point for p in k.mounts_of(new_id)]
    group, propagation, master, points = in_child(child)
    assert group, "setup: the master tmpfs is not in a peer group"
    assert propagation & k.MOUNT_PROPAGATION_SLAVE and master == group, (
        f"OT-SLAVE-KEEPS-MASTER: the copy of a slave of peer group {group} has propagation {propagation:#x} and "
        f"master {master}; a conforming kernel makes it a slave of the same group")
    assert "/later" in points, (f"OT-SLAVE-KEEPS-MASTER: a mount made on the master did not reach the copy of its "
                                f"slave (mounts there: {points})")
