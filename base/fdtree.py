"""Walk and remove folder trees by file descriptor, at any depth and any path length.

A guest can leave folders nested thousands deep with paths far past PATH_MAX: os.walk skips,
in silence, a folder whose path is too long (ENAMETOOLONG), and os.fwalk and shutil.rmtree
recurse once per level, so a deep tree ends them with RecursionError. Here every step opens
one name relative to the folder above it (O_NOFOLLOW: no link is followed), one folder
descriptor is held at a time, and the way back up is '..', checked against the folder's
identity recorded on the way down, so a tree that changes under the walk stops it with an
error instead of sending it elsewhere.
"""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# entry(folder_fd, name, lstat, parents) -> descend into it (when it is a folder)
Entry = Callable[[int, str, os.stat_result, list[str]], bool]
# leave(folder_fd, name, parents): a folder's content is done; folder_fd is the folder above it
Leave = Callable[[int, str, list[str]], None]


class TreeChanged(OSError):
    """The tree changed while it was walked (a folder was replaced or moved)."""

    def __init__(self, where: str):
        super().__init__(errno.ESTALE, f"the tree changed while it was walked ({where})")


def _ident(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _names(fd: int) -> list[str]:
    # listdir(fd) reads through its own copy of the descriptor; reversed, so pop() gives them in order.
    return sorted(os.listdir(fd), reverse=True)


def walk(root: int, entry: Entry, leave: Leave | None = None) -> None:
    """Every entry below the folder `root` (a descriptor, left open), depth first: entry() is
    called with the folder holding it, and the walk descends when it returns True for a folder;
    leave() is called once that folder's content is done. Both may remove or change the
    entries they are given."""
    fd = os.open(".", DIR_FLAGS, dir_fd=root)
    idents = [_ident(os.fstat(fd))]
    pending = [_names(fd)]
    parents: list[str] = []
    try:
        while pending:
            if pending[-1]:
                name = pending[-1].pop()
                try:
                    st = os.lstat(name, dir_fd=fd)
                except FileNotFoundError:
                    continue
                if not (entry(fd, name, st, parents) and stat.S_ISDIR(st.st_mode)):
                    continue
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
                if _ident(os.fstat(child)) != _ident(st):
                    os.close(child)
                    raise TreeChanged(name)
                os.close(fd)
                fd = child
                parents.append(name)
                idents.append(_ident(st))
                pending.append(_names(fd))
                continue
            pending.pop()
            if not parents:
                break
            up = os.open("..", DIR_FLAGS, dir_fd=fd)
            if _ident(os.fstat(up)) != idents[-2]:
                os.close(up)
                raise TreeChanged(parents[-1])
            os.close(fd)
            fd = up
            idents.pop()
            name = parents.pop()
            if leave is not None:
                leave(fd, name, parents)
    finally:
        os.close(fd)


def remove(dir_fd: int, name: str) -> None:
    """Remove `name` in the folder `dir_fd`, whatever it is: a folder with all it holds, at any
    depth; a link itself, never what it points to. Nothing there: nothing to do."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    top = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    try:
        if _ident(os.fstat(top)) != _ident(st):
            raise TreeChanged(name)

        def entry(fd: int, child: str, cst: os.stat_result, parents: list[str]) -> bool:
            if stat.S_ISDIR(cst.st_mode):
                return True
            os.unlink(child, dir_fd=fd)
            return False
        walk(top, entry, lambda fd, child, parents: os.rmdir(child, dir_fd=fd))
    finally:
        os.close(top)
    os.rmdir(name, dir_fd=dir_fd)
