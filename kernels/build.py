"""Build a kernel from a source tree with virtme-ng, the project's config fragment and ccache.

A tree is a git checkout, Debian's linux-source-X.Y tarball (unpacked into the cache once)
or what `apt-get source linux` leaves (a folder holding linux-X.Y.Z/). Never `vng --commit`:
it runs `git reset --hard`, which would wreck a `git bisect`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from otns.errors import BadInput, OtnsError

FRAGMENT = Path(__file__).with_name("otns.config")
IMAGE = Path("arch/x86/boot/bzImage")


class BuildFailed(OtnsError):
    exit_code = 3


@dataclass
class Built:
    tree: Path
    image: Path
    seconds: float
    log: Path


def _is_tree(p: Path) -> bool:
    return (p / "Makefile").is_file() and (p / "arch" / "x86").is_dir() and (p / "kernel").is_dir()


def find_tree(path: Path, cache_dir: Path) -> Path:
    """The kernel source tree a user named: a tree, a folder holding one, or a tarball."""
    path = path.expanduser().resolve()
    if not path.exists():
        raise BadInput(f"no such kernel tree: {path}")
    if path.is_file() and path.name.startswith("linux") and ".tar" in path.name:
        return _unpack(path, cache_dir)
    if path.is_dir():
        if _is_tree(path):
            return path
        inner = [d for d in path.iterdir() if d.is_dir() and _is_tree(d)]
        if len(inner) == 1:  # apt-get source linux: the tree is linux-X.Y.Z/ inside
            return inner[0]
        tarballs = sorted(path.glob("linux-source-*.tar.*"))
        if len(tarballs) == 1:
            return _unpack(tarballs[0], cache_dir)
    raise BadInput(f"{path} is not a kernel source tree (no Makefile, arch/x86 and kernel/)")


def _unpack(tarball: Path, cache_dir: Path) -> Path:
    """Unpack a source tarball into the cache once; atomic, so a killed unpack is never reused."""
    dest = cache_dir / "trees" / tarball.name.split(".tar")[0]
    if _is_tree(dest) or any(_is_tree(d) for d in dest.glob("*") if d.is_dir()):
        return dest if _is_tree(dest) else next(d for d in dest.iterdir() if _is_tree(d))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}-", dir=dest.parent))
    try:
        with tarfile.open(tarball) as tf:
            tf.extractall(tmp, filter="tar")
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return find_tree(dest, cache_dir)


def build(tree: Path, cache_dir: Path, log: Path | None = None) -> Built:
    """vng --build in the tree (incremental: make only redoes what changed; ccache the rest)."""
    for tool in ("make", "gcc", "ccache", "flex", "bison", "bc"):
        if shutil.which(tool) is None:
            raise BadInput(f"{tool} is not installed: run scripts/setup --build")
    log = log or cache_dir / "builds" / f"{tree.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CCACHE_DIR": str(cache_dir / "ccache"),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    cmd = ["vng", "--build", "--skip-modules", "--config", str(FRAGMENT), "CC=ccache gcc"]
    start = time.monotonic()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, cwd=tree, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    seconds = time.monotonic() - start
    image = tree / IMAGE
    if rc != 0 or not image.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise BuildFailed(f"kernel build failed in {tree} (exit {rc}): {tail[0]} (log: {log})")
    return Built(tree, image, seconds, log)
