"""Fetch a Debian kernel into the cache, atomically and once, and make it bootable.

A cached kernel is a folder kernels/IDENT/ holding the unpacked packages and meta.json.
It is built in a temporary folder and renamed into place only when complete, so a
download killed halfway leaves nothing a later run would use; a per-kernel lock makes
two runs fetching the same kernel wait for each other instead of clashing.
"""
from __future__ import annotations

import errno
import json
import lzma
import shutil
import time
from pathlib import Path

from base import commands
from base.errors import InfraError
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
    needed = set()
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


def _local_from_cache(folder: Path, kernel: DebianKernel) -> LocalKernel:
    meta = json.loads((folder / "meta.json").read_text())
    image = folder / meta["image"]
    config, moddir = config_for(image, meta["release"])
    return LocalKernel(image=image, release=meta["release"], source=describe(kernel),
                       config=config, moddir=moddir)


def describe(kernel: DebianKernel) -> str:
    return f"debian {kernel.debian_version} {kernel.flavour} ({', '.join(kernel.suites)})"


def cached_folder(cache_dir: Path, kernel: DebianKernel) -> Path:
    return cache_dir / "kernels" / kernel.ident


def is_cached(cache_dir: Path, kernel: DebianKernel) -> bool:
    return (cached_folder(cache_dir, kernel) / "meta.json").is_file()


def cached(cache_dir: Path, kernel: DebianKernel) -> LocalKernel | None:
    """The kernel from the cache, or None; touches nothing (for --dry-run)."""
    folder = cached_folder(cache_dir, kernel)
    return _local_from_cache(folder, kernel) if (folder / "meta.json").is_file() else None


def fetch(cache_dir: Path, apt: PrivateApt, kernel: DebianKernel, show_progress: bool = True) -> LocalKernel:
    final = cached_folder(cache_dir, kernel)
    start = time.monotonic()
    with locked(cache_dir / "kernels" / f"{kernel.ident}.lock",
                f"otns: waiting for another run that is fetching {kernel.ident}"):
        if (final / "meta.json").is_file():
            return _local_from_cache(final, kernel)
        total = sum(p.size for p in kernel.packages())
        free = shutil.disk_usage(cache_dir).free
        if free < total * 4:
            raise InfraError(f"not enough free disk in {cache_dir}: {free >> 20} MiB free, "
                             f"about {(total * 4) >> 20} MiB needed for {kernel.release}")
        try:
            with new_folder(final) as tmp:
                debs = _download(apt, kernel, tmp / "debs", show_progress)
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
                        "kernel": kernel.to_json(), "fetched": time.time()}
                (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise InfraError(f"disk full while preparing {kernel.release} in {cache_dir}") from None
            raise
    local = _local_from_cache(final, kernel)
    local.fetch_seconds = time.monotonic() - start
    return local


def _download(apt: PrivateApt, kernel: DebianKernel, dest: Path, show_progress: bool) -> list[Path]:
    pkgs = kernel.packages()
    total = sum(p.size for p in pkgs)
    if not show_progress:
        return apt.download(pkgs, dest)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]fetch[/] {task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>5.1f}%"), TimeRemainingColumn(),
                  transient=True) as progress:
        task = progress.add_task(f"{kernel.release} ({total >> 20} MiB)", total=100.0)
        files = apt.download(pkgs, dest, lambda pct: progress.update(task, completed=pct))
        progress.update(task, completed=100.0)
    return files
