"""Fetch a Debian kernel into the cache, atomically and once, and make it bootable.

A cached kernel is a folder kernels/IDENT/ holding the unpacked packages and meta.json.
It is built in a temporary folder and renamed into place only when complete, so a
download killed halfway leaves nothing a later run would use; a per-kernel lock makes
two runs fetching the same kernel wait for each other instead of clashing.
"""
from __future__ import annotations

import errno
import hashlib
import json
import lzma
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeGuard

from base import cachedir, commands, fdtree, safefs
from base.errors import BadInput, InfraError
from base.locks import locked
from base.safefs import new_folder

from .apt import PrivateApt
from .debian import DebianKernel
from .image import inspect_image
from .local import LocalKernel, config_for

# Modules the guest may need at boot: transports, the console, overlayfs for writable /tmp.
_GUEST_MODULE_DIRS = ("fs/9p", "net/9p", "fs/fuse", "fs/overlayfs", "fs/netfs")
_GUEST_MODULE_WORDS = ("virtio",)
# dpkg-deb and depmod on one kernel take seconds; this much means they are stuck.
TOOL_TIMEOUT = 600.0


def _find_image(root: Path) -> Path | None:
    for pattern in ("boot/vmlinuz-*", "usr/lib/modules/*/vmlinuz", "lib/modules/*/vmlinuz"):
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
    return None


def _prepare_modules(moddir: Path) -> None:
    """Decompress the modules the guest needs and index them (busybox insmod cannot read .ko.xz)."""
    release = moddir.name
    root = moddir.parent.parent.parent  # ROOT/lib/modules/R
    if root.name == "usr":
        root = root.parent
        if not (root / "lib").exists():
            (root / "lib").symlink_to("usr/lib")  # depmod -b wants ROOT/lib/modules
    kernel_dir = moddir / "kernel"
    if kernel_dir.is_dir():
        for comp in kernel_dir.rglob("*.ko.xz"):
            rel = comp.relative_to(kernel_dir).as_posix()
            if rel.startswith(_GUEST_MODULE_DIRS) or any(w in comp.name for w in _GUEST_MODULE_WORDS):
                plain = comp.with_suffix("")
                plain.write_bytes(lzma.decompress(comp.read_bytes()))
                comp.unlink()
    r = commands.run(["depmod", "-b", str(root), release], f"index {release}'s modules", timeout=TOOL_TIMEOUT)
    if r.returncode != 0:
        raise InfraError(f"depmod failed for {release}: {r.stderr.strip()[:200]}")
    # Dependencies of what we decompressed (e.g. netfs for 9p) must be plain too.
    dep = (moddir / "modules.dep").read_text()
    needed: set[str] = set()
    for line in dep.splitlines():
        target, _, deps = line.partition(":")
        if target.endswith(".ko"):
            needed.update(d for d in deps.split() if d.endswith(".ko.xz"))
    for rel in needed:
        comp = moddir / rel
        if comp.exists():
            comp.with_suffix("").write_bytes(lzma.decompress(comp.read_bytes()))
            comp.unlink()
    if needed:
        commands.run(["depmod", "-b", str(root), release], f"index {release}'s modules", timeout=TOOL_TIMEOUT)


META = "meta.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _indexes(rel: str) -> bool:
    """depmod's index files (modules.dep, ...): regenerated at will, so not inventoried."""
    return "/modules/" in rel and Path(rel).name.startswith("modules.")


def inventory(root: Path) -> dict[str, dict]:
    """Every regular file under root, by relative path: its size and SHA-256 (recorded at fetch)."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and not _indexes(rel) and rel != META:
            files[rel] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    return files


def _fair(rel: object) -> TypeGuard[str]:
    return isinstance(rel, str) and bool(rel) and not rel.startswith("/") and ".." not in rel.split("/")


# A kernel cached by an otns that recorded no sizes or checksums: its image's header says its
# size, so a truncated one is still found; the rest is recorded the next time it is used.
OLDER = "cached by an older otns"


def _whole_image(image: Path) -> bool:
    try:
        inspect_image(image)
    except (BadInput, OSError):
        return False
    return True


def damage(folder: Path) -> str | None:
    """What is wrong with a cached kernel folder, or None when it holds what was fetched: every
    file recorded at fetch is there at its size, and the image and config have their SHA-256.
    OLDER for a folder from an otns that kept no record, whose image is whole."""
    try:
        meta = safefs.read_json_object(folder / META)
    except FileNotFoundError:
        return f"no {META}"
    except safefs.BadFile as e:
        return str(e)
    image, release, files = meta.get("image"), meta.get("release"), meta.get("files")
    if not (_fair(image) and isinstance(release, str) and release):
        return f"{META} does not name an image and a release"
    if files is None:
        return OLDER if _whole_image(folder / image) else f"{image} is damaged"
    if not isinstance(files, dict) or image not in files:
        return f"{META} has no record of {image}"
    for rel, rec in files.items():
        if not (_fair(rel) and isinstance(rec, dict) and type(rec.get("size")) is int
                and isinstance(rec.get("sha256"), str)):
            return f"{META} has a malformed entry"
        try:
            st = os.lstat(folder / rel)
        except OSError:
            return f"{rel} is missing"
        if not stat.S_ISREG(st.st_mode) or st.st_size != rec["size"]:
            return f"{rel} is {st.st_size} bytes, {rec['size']} when fetched"
        if (rel == image or Path(rel).name.startswith("config")) and _sha256(folder / rel) != rec["sha256"]:
            return f"{rel} is not the file fetched (SHA-256 differs)"
    return None


def _local_from_cache(folder: Path, kernel: DebianKernel) -> LocalKernel:
    """A kernel folder that damage() passed."""
    meta = safefs.read_json_object(folder / META)
    image = folder / meta["image"]
    config, moddir = config_for(image, meta["release"])
    return LocalKernel(image=image, release=meta["release"], source=describe(kernel),
                       config=config, moddir=moddir)


def describe(kernel: DebianKernel) -> str:
    return f"debian {kernel.debian_version} {kernel.flavour} ({', '.join(kernel.suites)})"


def cached_folder(cache_dir: Path, kernel: DebianKernel) -> Path:
    return cache_dir / cachedir.KERNELS / kernel.ident


def is_cached(cache_dir: Path, kernel: DebianKernel) -> bool:
    """In the cache and whole (a damaged copy is fetched again)."""
    return damage(cached_folder(cache_dir, kernel)) in (None, OLDER)


def cached(cache_dir: Path, kernel: DebianKernel) -> LocalKernel | None:
    """The kernel from the cache, or None (absent or damaged); touches nothing (for --dry-run)."""
    folder = cached_folder(cache_dir, kernel)
    return _local_from_cache(folder, kernel) if damage(folder) in (None, OLDER) else None


def _set_aside(final: Path) -> None:
    """A damaged kernel folder: renamed away at once (a run booting from it keeps its open
    files), then removed."""
    aside = f".damaged-{final.name}-{os.getpid()}"
    dfd = os.open(final.parent, fdtree.DIR_FLAGS)
    try:
        fdtree.remove(dfd, aside)
        os.rename(final.name, aside, src_dir_fd=dfd, dst_dir_fd=dfd)
        fdtree.remove(dfd, aside)
    finally:
        os.close(dfd)


def fetch(cache_dir: Path, apt: PrivateApt, kernel: DebianKernel, show_progress: bool = True,
          notice: Callable[[str], object] = print) -> LocalKernel:
    final = cached_folder(cache_dir, kernel)
    start = time.monotonic()
    with locked(cache_dir / cachedir.KERNELS / f"{kernel.ident}.lock",
                f"otns: waiting for another run that is fetching {kernel.ident}"):
        problem = damage(final) if os.path.lexists(final) else "absent"
        if problem == OLDER:  # record it now: from here on it is checked like a fresh one
            meta = safefs.read_json_object(final / META)
            safefs.write_atomic(final / META, json.dumps({**meta, "files": inventory(final)}, indent=1))
            problem = None
        if problem is None:
            return _local_from_cache(final, kernel)
        if problem != "absent":
            notice(f"otns: the cached {kernel.ident} is damaged ({problem}); fetching it again")
            _set_aside(final)
        total = sum(p.size for p in kernel.packages())
        free = shutil.disk_usage(cache_dir).free
        if free < total * 4:
            raise InfraError(f"not enough free disk in {cache_dir}: {free >> 20} MiB free, "
                             f"about {(total * 4) >> 20} MiB needed for {kernel.release}")
        try:
            with new_folder(final) as tmp:
                debs = _download(apt, kernel, tmp / "debs", show_progress, notice)
                root = tmp / "root"
                for deb in debs:
                    r = commands.run(["dpkg-deb", "-x", str(deb), str(root)], f"unpack {deb.name}",
                                     timeout=TOOL_TIMEOUT)
                    if r.returncode != 0:
                        if "No space left" in r.stderr:
                            raise InfraError(f"disk full while unpacking {deb.name}")
                        raise InfraError(f"cannot unpack {deb.name}: {r.stderr.strip()[:200]}")
                shutil.rmtree(tmp / "debs")
                image = _find_image(root)
                if image is None:
                    raise InfraError(f"no kernel image inside {kernel.kernel_pkg.name}")
                info = inspect_image(image)
                _, moddir = config_for(image, info.release)
                if moddir is not None:  # even with every module built in (cloud): vng would run depmod in the cache
                    _prepare_modules(moddir)
                meta = {"image": image.relative_to(tmp).as_posix(), "release": info.release,
                        "kernel": kernel.to_json(), "fetched": time.time(), "files": inventory(tmp)}
                (tmp / META).write_text(json.dumps(meta, indent=1))
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise InfraError(f"disk full while preparing {kernel.release} in {cache_dir}") from None
            raise
    local = _local_from_cache(final, kernel)
    local.fetch_seconds = time.monotonic() - start
    return local


def _download(apt: PrivateApt, kernel: DebianKernel, dest: Path, show_progress: bool,
              notice: Callable[[str], object] = print) -> list[Path]:
    """The kernel's packages into dest. Progress is the bytes on disk, looked at twice a second
    (apt's own status moves by whole files), with the time elapsed (most of a small kernel's
    fetch is the archive's latency, not its bytes): a bar in a terminal; lines otherwise, at each
    quarter that shows on disk and at the end."""
    pkgs = kernel.packages()
    total = sum(p.size for p in pkgs)
    stop = threading.Event()
    said = [0]

    def report(done: int) -> None:
        quarter = min(4, done * 4 // total) if total else 4
        if not show_progress and quarter > said[0]:
            said[0] = quarter
            notice(f"otns: fetch {kernel.release}: {done >> 20} of {total >> 20} MiB")

    def watch(update: Callable[[int], None]) -> None:
        while not stop.wait(0.5):
            update(downloaded(dest))
    if not show_progress:
        began = time.monotonic()
        watcher = threading.Thread(target=watch, args=(report,), daemon=True)
        watcher.start()
        try:
            files = apt.download(pkgs, dest)
        finally:
            stop.set()
            watcher.join(timeout=2)
        notice(f"otns: fetched {kernel.release}: {total >> 20} MiB in {time.monotonic() - began:.1f} s")
        return files
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

    with Progress(TextColumn("[bold]fetch[/] {task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeElapsedColumn(), transient=True) as progress:
        task = progress.add_task(f"{kernel.release}", total=total)
        watcher = threading.Thread(target=watch, args=(lambda n: progress.update(task, completed=min(n, total)),),
                                   daemon=True)
        watcher.start()
        try:
            files = apt.download(pkgs, dest)
        finally:
            stop.set()
            watcher.join(timeout=2)
        progress.update(task, completed=total)
    return files


def downloaded(dest: Path) -> int:
    """Bytes under dest so far (apt writes the packages, or their partial files, there)."""
    done = 0
    for root, _, names in os.walk(dest):
        for name in names:
            try:
                done += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass  # renamed or removed between the listing and the look
    return done
