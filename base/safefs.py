"""Files in folders that something untrusted could write (the guest, a result folder from
elsewhere): read them without trusting them, write beside them without following what was planted.

Reads never follow a symbolic link, never open anything but a regular file (a fifo would
block, a device node could do anything), and stop at a size limit. Writes go through a
folder descriptor to a fresh temporary name (O_EXCL, O_NOFOLLOW) that is then renamed over
the target, so a planted link is replaced, never written through.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from base.filenames import INCOMPLETE, LEGACY, MARKER

from .errors import BadInput

MiB = 1024 * 1024
JSON_MAX = 16 * MiB


class BadFile(BadInput):
    """A file otns must read is not what it has to be: the message names the file and why."""


def _refuse(path: Path, why: str) -> BadFile:
    return BadFile(f"{path}: {why}")


def read_bytes(path: Path, limit: int) -> bytes:
    """The whole content of a regular file of at most `limit` bytes.

    FileNotFoundError when there is nothing at `path`; BadFile for a link, a fifo, a device,
    a folder, a file too large or unreadable.
    """
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(path, "is a symbolic link; not followed")
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, "is not a regular file")
    if st.st_size > limit:
        raise _refuse(path, f"is {st.st_size} bytes, more than the {limit} bytes otns reads")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise _refuse(path, f"cannot be opened ({e.strerror})") from None
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise _refuse(path, "changed while being opened")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(MiB, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise _refuse(path, f"grew past the {limit} bytes otns reads")
        return b"".join(chunks)
    except OSError as e:
        raise _refuse(path, f"cannot be read ({e.strerror})") from None
    finally:
        os.close(fd)


def read_text(path: Path, limit: int) -> str:
    return read_bytes(path, limit).decode("utf-8", "replace")


def read_json_object(path: Path, limit: int = JSON_MAX) -> dict:
    """A JSON object from a file (FileNotFoundError when absent, BadFile when anything else is wrong)."""
    data = read_bytes(path, limit)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise _refuse(path, f"is not valid JSON ({str(e)[:200] or type(e).__name__})") from None
    if not isinstance(doc, dict):
        raise _refuse(path, f"holds JSON {type(doc).__name__}, not an object")
    return doc


def _remove_entry(dir_fd: int, name: str) -> None:
    """Remove a name in a folder, whatever it is; a folder is removed with its content, no link followed."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


@contextmanager
def _folder_fd(folder: Path) -> Iterator[int]:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes, mode: int | None = None) -> None:
    """Replace path's content (text as UTF-8, or bytes) as one step: a reader sees the old file
    or the new one, never half of one, and a killed writer leaves the old one. Whatever was at
    that name (a link, a fifo, a folder planted by a guest) is replaced, never written through.
    `mode` sets the new file's permissions exactly; without it they are 0o644 less the umask."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with _folder_fd(path.parent) as dfd:
        tmp = f".{path.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd)
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
            try:
                os.rename(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except IsADirectoryError:
                _remove_entry(dfd, path.name)
                os.rename(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except FileNotFoundError:
                pass
            raise


@contextmanager
def new_folder(dest: Path, replace: bool = False) -> Iterator[Path]:
    """A temporary folder beside `dest` to fill in the block; renamed to `dest` when the block
    ends normally, removed when it does not, so a killed or failed fill never leaves half a folder
    at `dest`. `replace` removes what is at `dest` first (otherwise the rename fails on a folder
    that is not empty)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}-", dir=dest.parent))
    try:
        yield tmp
        if replace:
            shutil.rmtree(dest, ignore_errors=True)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def set_aside(path: Path, suffix: str) -> Path:
    """Rename path to path + suffix (a rename moves a link itself, never what it points to)."""
    with _folder_fd(path.parent) as dfd:
        _remove_entry(dfd, path.name + suffix)
        os.rename(path.name, path.name + suffix, src_dir_fd=dfd, dst_dir_fd=dfd)
    return path.with_name(path.name + suffix)


def open_new(path: Path) -> IO[str]:
    """A new file at path for writing; whatever had that name is removed first, not followed."""
    with _folder_fd(path.parent) as dfd:
        _remove_entry(dfd, path.name)
        fd = os.open(path.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                     dir_fd=dfd)
    return os.fdopen(fd, "w", encoding="utf-8", errors="replace")


def prepare_results(folder: Path, keep: tuple[str, ...] = ()) -> Path:
    """Make `folder` an empty otns results folder (keeping only the names in `keep`).

    A folder that does not exist is created, an empty one or one otns marked is cleaned
    completely; anything else (`/`, `/root`, a folder of the user's) is refused: it would be
    shared read-write with the guest and emptied.
    """
    folder = Path(os.path.abspath(folder))
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"results folder {folder} exists and is not a folder")
    if folder.is_dir():
        names = os.listdir(folder)
        if names and MARKER not in names and not set(names) <= LEGACY:
            raise BadInput(f"results folder {folder} is not empty and otns did not make it: refusing to share it "
                           f"with the guest and to clean it (name a new or empty folder)")
        with _folder_fd(folder) as dfd:
            for name in names:
                if name not in keep:
                    _remove_entry(dfd, name)
    else:
        folder.mkdir(parents=True)
    write_atomic(folder / MARKER, "This folder holds otns results; otns empties it when it runs here again.\n")
    return folder


def mark_incomplete(folder: Path) -> None:
    write_atomic(folder / INCOMPLETE, "This run did not finish (interrupted or killed): its results are partial.\n")


def mark_complete(folder: Path) -> None:
    with _folder_fd(folder) as dfd:
        _remove_entry(dfd, INCOMPLETE)


def defuse(folder: Path) -> list[str]:
    """After a guest had `folder` read-write: remove what it could use against the host's users
    (device nodes, fifos, sockets, links) and drop set-id and group/world-write bits.
    Returns what was removed, relative to the folder."""
    removed = []
    risky = stat.S_ISUID | stat.S_ISGID | stat.S_IWGRP | stat.S_IWOTH
    for top, dirs, files in os.walk(folder, followlinks=False):
        with _folder_fd(Path(top)) as dfd:
            for name in [*dirs, *files]:
                st = os.lstat(name, dir_fd=dfd)
                if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                    os.unlink(name, dir_fd=dfd)
                    removed.append(os.path.relpath(os.path.join(top, name), folder))
                    if name in dirs:
                        dirs.remove(name)
                elif st.st_mode & risky:
                    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
                    fd = os.open(name, flags | (os.O_DIRECTORY if stat.S_ISDIR(st.st_mode) else 0), dir_fd=dfd)
                    try:
                        os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~risky)
                    finally:
                        os.close(fd)
    return removed
