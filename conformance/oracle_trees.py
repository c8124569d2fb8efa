"""Generated source trees for the oracle: nested mounts of several filesystem types, every
propagation type, every lockable flag and atime mode, idmapped mounts, mounts covering others,
and a path at the top mount's root or below it. A tree is data (`Tree`); `trees()` is its
hypothesis strategy (it shrinks towards one plain tmpfs); `build()` mounts it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import strategies as st

from . import oracle_profile
from . import syscalls as k
from .helpers import wait_child, write_file

oracle_profile.load()  # before the oracle tests' @given decorators read the settings

FSTYPES = ("tmpfs", "ramfs", "bind", "proc")  # bind: a directory of another tmpfs (its root is not "/")
PROPAGATIONS = ("private", "shared", "slave", "slave_shared", "unbindable")
FLAG_BITS = (k.MOUNT_ATTR_RDONLY, k.MOUNT_ATTR_NOSUID, k.MOUNT_ATTR_NODEV, k.MOUNT_ATTR_NOEXEC,
             k.MOUNT_ATTR_NOSYMFOLLOW, k.MOUNT_ATTR_NODIRATIME)
ATIMES = (k.MOUNT_ATTR_RELATIME, k.MOUNT_ATTR_NOATIME, k.MOUNT_ATTR_STRICTATIME)
PLACES = ("sub", "side")  # where a child of the top goes: below the path, or beside it


@dataclass(frozen=True)
class Node:
    parent: int  # index of an earlier node, or -1 for the top mount
    place: str  # for a child of the top: PLACES; else ""
    fs: str = "tmpfs"
    propagation: str = "private"
    flags: int = 0
    atime: int = k.MOUNT_ATTR_RELATIME
    idmap: bool = False
    covered: bool = False  # another tmpfs is mounted on the same point after it


@dataclass(frozen=True)
class Tree:
    top: Node
    nodes: tuple[Node, ...]
    below: bool  # the path is the top's directory "sub", not its root
    recursive: bool


def _node(parent: int, idmap: bool, fstypes: tuple[str, ...]) -> st.SearchStrategy[Node]:
    return st.builds(
        Node, st.just(parent), st.sampled_from(PLACES) if parent < 0 else st.just(""),
        st.sampled_from(fstypes), st.sampled_from(PROPAGATIONS),
        st.lists(st.sampled_from(FLAG_BITS), unique=True, max_size=3).map(sum),
        st.sampled_from(ATIMES), st.booleans() if idmap else st.just(False), st.booleans())


@st.composite
def trees(draw, max_nodes: int = 4, idmap: bool = True, fstypes: tuple[str, ...] = FSTYPES,
          recursive: bool | None = None) -> Tree:
    top = draw(st.builds(Node, st.just(-1), st.just(""), st.just("tmpfs"),
                         st.sampled_from(PROPAGATIONS[:4]),  # an unbindable source is refused outright
                         st.lists(st.sampled_from(FLAG_BITS), unique=True, max_size=2).map(sum),
                         st.sampled_from(ATIMES)))
    nodes: list[Node] = []
    for _ in range(draw(st.integers(0, max_nodes))):
        # a parent that can hold directories: the top, or an earlier node that is not proc
        parents = [-1] + [i for i, n in enumerate(nodes) if n.fs != "proc"]
        nodes.append(draw(_node(draw(st.sampled_from(parents)), idmap, fstypes)))
    rec = draw(st.booleans()) if recursive is None else recursive
    return Tree(top, tuple(nodes), draw(st.booleans()), rec)


@dataclass(frozen=True)
class Layout:
    """Where a tree lives: all under one scratch directory."""
    base: str

    @property
    def top(self) -> str:
        return f"{self.base}/src"

    def path(self, tree: Tree) -> str:
        return f"{self.top}/sub" if tree.below else self.top

    def point(self, tree: Tree, i: int) -> str:
        n = tree.nodes[i]
        up = f"{self.top}/{n.place}" if n.parent < 0 else self.point(tree, n.parent)
        return f"{up}/d{i}"

    def master(self, i: int) -> str:
        return f"{self.base}/masters/m{i}"

    @property
    def stage(self) -> str:
        return f"{self.base}/stage"


def _dirs(tree: Tree, i: int) -> list[str]:
    """The directories a mount of node i (or the top, i = -1) holds: ev, and its children's."""
    kids = [f"d{j}" for j, n in enumerate(tree.nodes) if n.parent == i and not (i < 0 and n.place != "sub")]
    if i < 0:
        return ["ev", "sub", "side", *(f"side/d{j}" for j, n in enumerate(tree.nodes)
                                       if n.parent < 0 and n.place == "side"),
                *(f"sub/{d}" for d in kids), "sub/ev"]
    return ["ev", *kids]


def _mkdirs(root: str, names: list[str]) -> None:
    for d in names:
        os.makedirs(os.path.join(root, d), exist_ok=True)


def userns_fd() -> int:
    """An fd for a new user namespace mapping ids 0-65535 to 100000-165535 (for idmapped mounts)."""
    r, w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            os.close(ready_r)
            k.unshare(k.CLONE_NEWUSER)
            os.write(ready_w, b"!")
            os.read(r, 1)
        finally:
            os._exit(0)
    os.close(r)
    os.close(ready_w)
    try:
        if os.read(ready_r, 1) != b"!":
            raise OSError("the child could not make a user namespace")
        write_file(f"/proc/{pid}/uid_map", "0 100000 65536")
        write_file(f"/proc/{pid}/setgroups", "deny")
        write_file(f"/proc/{pid}/gid_map", "0 100000 65536")
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(w)
        os.close(ready_r)
        wait_child(pid)


def _attach(tree: Tree, layout: Layout, i: int, store: str, users: int | None) -> None:
    n, point = tree.nodes[i], layout.point(tree, i)
    if n.fs in ("tmpfs", "ramfs"):
        k.mount(f"otns-n{i}", point, n.fs, 0, "size=1m" if n.fs == "tmpfs" else None)
        _mkdirs(point, _dirs(tree, i))
        return
    if n.fs == "proc":
        k.mount("proc", point, "proc", 0)
        return
    backing = f"{store}/b{i}"
    _mkdirs(backing, _dirs(tree, i))
    if n.idmap and users is not None:
        fd = k.open_tree(k.AT_FDCWD, backing, k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC)
        try:
            attr = k.ctypes.create_string_buffer(
                k.struct.pack("<QQQQ", k.MOUNT_ATTR_IDMAP, 0, 0, users), k.MOUNT_ATTR_SIZE_VER0)
            k.mount_setattr(fd, "", k.AT_EMPTY_PATH, attr)
            k.move_mount(fd, "", k.AT_FDCWD, point, k.MOVE_MOUNT_F_EMPTY_PATH)
        finally:
            os.close(fd)
    else:
        k.mount(backing, point, None, k.MS_BIND)


_PROPAGATION_MS = {"private": k.MS_PRIVATE, "shared": k.MS_SHARED, "unbindable": k.MS_UNBINDABLE}


def _propagate(path: str, how: str, master: str) -> None:
    if how in _PROPAGATION_MS:
        k.mount(None, path, None, _PROPAGATION_MS[how])
        return
    # a slave needs a master: share it, bind it beside the tree (a peer), make it the slave
    k.mount(None, path, None, k.MS_SHARED)
    os.makedirs(master, exist_ok=True)
    k.mount(path, master, None, k.MS_BIND)
    k.mount(None, path, None, k.MS_SLAVE)
    if how == "slave_shared":
        k.mount(None, path, None, k.MS_SHARED)


def build(tree: Tree, layout: Layout, users: int | None) -> None:
    """Mount the tree under layout.base (a new directory in a private mount namespace): all
    mounts with their directories first, then propagation, then flags (a read-only mount takes
    no directories), then the covers (a cover has no `ev` directory: it sends no event)."""
    os.makedirs(layout.top)
    os.makedirs(layout.stage)
    store = f"{layout.base}/store"
    os.makedirs(store)
    k.mount("otns-store", store, "tmpfs", 0, "size=1m")
    k.mount("otns-top", layout.top, "tmpfs", 0, "size=1m")
    _mkdirs(layout.top, _dirs(tree, -1))
    for i in range(len(tree.nodes)):
        _attach(tree, layout, i, store, users)
    _propagate(layout.top, tree.top.propagation, layout.master(-1))
    for i, n in enumerate(tree.nodes):
        _propagate(layout.point(tree, i), n.propagation, layout.master(i))
    for i, n in reversed(list(enumerate(tree.nodes))):
        k.mount_setattr(k.AT_FDCWD, layout.point(tree, i), 0, n.flags | n.atime, k.MOUNT_ATTR__ATIME)
    k.mount_setattr(k.AT_FDCWD, layout.top, 0, tree.top.flags | tree.top.atime, k.MOUNT_ATTR__ATIME)
    for i, n in reversed(list(enumerate(tree.nodes))):  # deepest first: a cover hides the paths below
        if n.covered:
            k.mount(f"otns-cover{i}", layout.point(tree, i), "tmpfs", 0, "size=64k,mode=755")
