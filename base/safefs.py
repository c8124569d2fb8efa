"""Files in folders that something untrusted could write (the guest, a result folder from
elsewhere): read them without trusting them, write beside them without following what was planted.

Reads never follow a symbolic link, never open anything but a regular file (a fifo would
block, a device node could do anything), and stop at a size limit. Writes go through a
folder descriptor to a fresh temporary name (O_EXCL, O_NOFOLLOW) that is then renamed over
the target, so a planted link is replaced, never written through.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from base.filenames import INCOMPLETE, LEGACY, MARKER

from . import fdtree
from .errors import BadInput, DiskFull

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
    """Remove a name in a folder, whatever it is: a folder with its content at any depth, no link followed."""
    fdtree.remove(dir_fd, name)


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
    with _disk_full_names(path), _folder_fd(path.parent) as dfd:
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
    _remove_dead_fills(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}-{os.getpid()}-", dir=dest.parent))
    try:
        yield tmp
        if replace:
            shutil.rmtree(dest, ignore_errors=True)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _remove_dead_fills(dest: Path) -> None:
    """The temporary folders new_folder left for `dest` in processes that were killed (kill -9:
    no chance to remove them); their names carry the process id."""
    prefix = f".tmp-{dest.name}-"
    with _folder_fd(dest.parent) as dfd:
        for name in os.listdir(dfd):
            # PID-RANDOM (mkdtemp's part has no "-"): not another folder's whose name goes on with "-N"
            parts = name[len(prefix):].split("-") if name.startswith(prefix) else []
            if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) != os.getpid() and not _alive(int(parts[0])):
                _remove_entry(dfd, name)


def set_aside(path: Path, suffix: str) -> Path:
    """Rename path to path + suffix (a rename moves a link itself, never what it points to)."""
    with _folder_fd(path.parent) as dfd:
        _remove_entry(dfd, path.name + suffix)
        os.rename(path.name, path.name + suffix, src_dir_fd=dfd, dst_dir_fd=dfd)
    return path.with_name(path.name + suffix)


@contextmanager
def _disk_full_names(path: Path) -> Iterator[None]:
    """A full disk (or quota) while writing `path` is a DiskFull naming it: the OSError names
    only a temporary name relative to its folder."""
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"disk full: cannot write {path} ({e.strerror}); what was written before is kept") from None
        raise


def open_new(path: Path) -> IO[str]:
    """A new file at path for writing; whatever had that name is removed first, not followed."""
    with _disk_full_names(path), _folder_fd(path.parent) as dfd:
        _remove_entry(dfd, path.name)
        fd = os.open(path.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                     dir_fd=dfd)
    return os.fdopen(fd, "w", encoding="utf-8", errors="replace")


def prepare_results(folder: Path, keep: tuple[str, ...] = ()) -> Path:
    """Make `folder` an empty otns results folder (keeping only the names in `keep`).

    A folder that does not exist is created, an empty one or one otns marked is cleaned
    completely (at any depth); anything else (`/`, `/root`, a folder of the user's) is refused:
    it would be shared with the guest and emptied. The mark goes last, so a cleaning that
    fails halfway leaves a folder the next run still takes as otns's.
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
            for name in sorted(names, key=lambda n: n == MARKER):
                if name not in keep:
                    _remove_entry(dfd, name)
    else:
        folder.mkdir(parents=True)
    write_atomic(folder / MARKER, "This folder holds otns results; otns empties it when it runs here again.\n")
    return folder


def _lock_holder(st: os.stat_result) -> str:
    """Who holds an flock on this inode, from /proc/locks: "pid N (its command line)"."""
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "another process"
    for line in lines:
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == key and fields[4].isdigit():
            pid = fields[4]
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                command = printable(b" ".join(argv).decode("utf-8", "replace").strip(), 200)
            except OSError:
                command = ""
            return f"pid {pid}" + (f" ({command})" if command else "")
    return "another process"


# The folders this process holds (by identity), with how many blocks hold each: owned() nests.
_HELD: dict[tuple[int, int], int] = {}


@contextmanager
def owned(folder: Path) -> Iterator[Path]:
    """Hold `folder` (created if absent) for one run: another process that wants it while the
    block runs is refused with BadInput naming the holder, instead of emptying it under the
    first. The lock is an flock on the folder itself: the kernel drops it when its holder dies.
    Within one process it nests (a matrix entry holds its folder around the run it makes there)."""
    folder = Path(os.path.abspath(folder))
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"results folder {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino)
    try:
        if key not in _HELD:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BadInput(f"results folder {folder} is in use by another otns run, {_lock_holder(st)}: "
                               f"wait for it or name another folder") from None
        _HELD[key] = _HELD.get(key, 0) + 1
        try:
            yield folder
        finally:
            _HELD[key] -= 1
            if not _HELD[key]:
                del _HELD[key]
    finally:
        os.close(fd)  # the outermost block's descriptor holds the lock: closing it releases it


def mark_incomplete(folder: Path) -> None:
    write_atomic(folder / INCOMPLETE, "This run did not finish (interrupted or killed): its results are partial.\n")


def mark_complete(folder: Path) -> None:
    with _folder_fd(folder) as dfd:
        _remove_entry(dfd, INCOMPLETE)


def printable(text: str, limit: int = 200) -> str:
    """Text from something untrusted, safe to print on a terminal: control characters (escape
    sequences, NUL, newlines) as \\xNN, cut to `limit` characters."""
    out = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                  for c in text[:limit])
    return out + ("..." if len(text) > limit else "")


@dataclass
class Unsafe:
    """Something a guest left that could be used against the host's users."""

    parents: list[str]  # the folders above it, from the swept folder down
    name: str
    what: str  # "block device 8:0", "set-uid file", ...

    def path(self) -> str:
        """Its path, shortened for one line: deep folders elided, each name cut, nothing unprintable."""
        parts = [printable(p, 40) for p in (*self.parents, self.name)]
        if len(parts) > 3:
            parts = [parts[0], f"...({len(parts) - 2} folders)...", parts[-1]]
        return "/".join(parts)


_KINDS = {stat.S_IFBLK: "block device", stat.S_IFCHR: "character device", stat.S_IFIFO: "fifo",
          stat.S_IFSOCK: "socket", stat.S_IFLNK: "symbolic link"}
_SET_ID = stat.S_ISUID | stat.S_ISGID
_SHARED_WRITE = stat.S_IWGRP | stat.S_IWOTH
# The extended attribute that gives a file capabilities when it is run (setcap).
_FILE_CAPS = "security.capability"


def _kind(st: os.stat_result) -> str:
    what = _KINDS.get(stat.S_IFMT(st.st_mode), "special file")
    if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode):
        what += f" {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    return what


def _file_caps(dir_fd: int, name: str) -> bool:
    """Whether a regular file carries file capabilities; removes them."""
    path = f"/proc/self/fd/{dir_fd}/{name}"
    try:
        if _FILE_CAPS not in os.listxattr(path, follow_symlinks=False):
            return False
        os.removexattr(path, _FILE_CAPS, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.ENODATA):
            return False
        raise
    return True


def defuse(folder: Path) -> list[Unsafe]:
    """After a guest had `folder` read-write: remove what it could use against the host's users
    (device nodes, fifos, sockets, links), drop set-id bits and file capabilities, at any depth
    and path length. What was found is returned; group and world write bits are dropped and the
    owner becomes the host's user too, but those are not findings (a guest's umask and uids)."""
    found: list[Unsafe] = []
    me = (os.geteuid(), os.getegid())

    def entry(fd: int, name: str, st: os.stat_result, parents: list[str]) -> bool:
        is_dir = stat.S_ISDIR(st.st_mode)
        if not (is_dir or stat.S_ISREG(st.st_mode)):
            os.unlink(name, dir_fd=fd)
            found.append(Unsafe(list(parents), name, _kind(st)))
            return False
        mode = stat.S_IMODE(st.st_mode)
        if mode & _SET_ID:
            bits = " and ".join(b for b, m in (("set-uid", stat.S_ISUID), ("set-gid", stat.S_ISGID)) if mode & m)
            found.append(Unsafe(list(parents), name, f"{bits} {'folder' if is_dir else 'file'}"))
        if not is_dir and _file_caps(fd, name):
            found.append(Unsafe(list(parents), name, "file with capabilities"))
        if mode & (_SET_ID | _SHARED_WRITE) or (st.st_uid, st.st_gid) != me:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_DIRECTORY if is_dir else 0)
            efd = os.open(name, flags, dir_fd=fd)
            try:
                if (st.st_uid, st.st_gid) != me:
                    os.fchown(efd, *me)
                os.fchmod(efd, mode & ~(_SET_ID | _SHARED_WRITE))  # after chown, which may clear set-id bits itself
            finally:
                os.close(efd)
        return is_dir

    with _folder_fd(folder) as dfd:
        fdtree.walk(dfd, entry)
    return found


def _severity(u: Unsafe) -> int:
    return next((i for i, w in enumerate(("device", "set-", "capabilities")) if w in u.what), 3)


def describe_unsafe(found: list[Unsafe], shown: int = 5) -> str:
    """One line naming what defuse found: the worst first (device nodes, set-id bits), the first few."""
    items = [f"{u.path()} ({u.what})" for u in sorted(found, key=_severity)[:shown]]
    more = f" and {len(found) - shown} more" if len(found) > shown else ""
    return f"{len(found)} unsafe entr{'y' if len(found) == 1 else 'ies'}: {', '.join(items)}{more}"
