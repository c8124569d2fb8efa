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
import time
from dataclasses import dataclass
from pathlib import Path

from base.errors import EXIT_INFRA, BadInput, OtnsError
from base.safefs import new_folder

from . import faults
from .arch import host
from .image import read_config

FRAGMENT = Path(__file__).with_name("otns.config")


class BuildFailed(OtnsError):
    exit_code = EXIT_INFRA


@dataclass
class Built:
    tree: Path
    image: Path
    seconds: float
    log: Path


def _is_tree(p: Path) -> bool:
    return (p / "Makefile").is_file() and (p / "arch" / host().kernel).is_dir() and (p / "kernel").is_dir()


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
    raise BadInput(f"{path} is not a kernel source tree (no Makefile, arch/{host().kernel} and kernel/)")


def _unpack(tarball: Path, cache_dir: Path) -> Path:
    """Unpack a source tarball into the cache once; atomic, so a killed unpack is never reused."""
    dest = cache_dir / "trees" / tarball.name.split(".tar")[0]
    if _is_tree(dest) or any(_is_tree(d) for d in dest.glob("*") if d.is_dir()):
        return dest if _is_tree(dest) else next(d for d in dest.iterdir() if _is_tree(d))
    with new_folder(dest) as tmp, tarfile.open(tarball) as tf:
        tf.extractall(tmp, filter="tar")
    return find_tree(dest, cache_dir)


def fragment() -> dict[str, str]:
    """The fragment as {CONFIG_X: value}, "n" for `# CONFIG_X is not set`."""
    unset = {line[2:-len(" is not set")]: "n" for line in FRAGMENT.read_text().splitlines()
             if line.startswith("# CONFIG_") and line.endswith(" is not set")}
    return {**read_config(FRAGMENT), **unset}


def _run(cmd: list[str], tree: Path, env: dict[str, str], log) -> int:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    return subprocess.run(cmd, cwd=tree, stdout=log, stderr=subprocess.STDOUT, env=env).returncode


def ensure_config(tree: Path, env: dict[str, str], log) -> list[str]:
    """Make .config hold the fragment; return the settings this tree's Kconfig cannot take.

    vng writes a fresh config only when there is none (its own defaults land after our
    fragment, so debug info would stay on), and keeps an existing one as it is; so the
    fragment is applied here, over either, and `make olddefconfig` settles the rest.
    A config that already holds everything is left untouched, so nothing is rebuilt.
    """
    dotconfig = tree / ".config"
    if not dotconfig.is_file():
        rc = _run(["vng", "--kconfig", "--config", str(FRAGMENT)], tree, env, log)
        if rc != 0 or not dotconfig.is_file():
            return ["(vng --kconfig failed)"]
    want = fragment()
    have = read_config(dotconfig)
    wrong = [k for k, v in want.items() if have.get(k, "n") != v]
    if not wrong:
        return []
    args: list[str] = []
    for key in wrong:
        name, value = key.removeprefix("CONFIG_"), want[key]
        args += ["--disable", name] if value == "n" else \
            ["--enable", name] if value == "y" else ["--set-val", name, value]
    if _run(["scripts/config", "--file", ".config", *args], tree, env, log) != 0 or \
            _run(["make", "olddefconfig"], tree, env, log) != 0:
        return ["(make olddefconfig failed)"]
    have = read_config(dotconfig)
    return [f"{k}={want[k]}" for k in want if have.get(k, "n") != want[k]]


def build(tree: Path, cache_dir: Path, log: Path | None = None, applied_fault: bool = False) -> Built:
    """Config, then vng --build in the tree (incremental: make redoes what changed; ccache the rest)."""
    for tool in ("make", "gcc", "ccache", "flex", "bison", "bc"):
        if shutil.which(tool) is None:
            raise BadInput(f"{tool} is not installed: run scripts/setup --build")
    log = log or cache_dir / "builds" / f"{tree.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # CCACHE_BASEDIR makes paths relative to the tree, so a second checkout of the same
    # source (a git clone, apt-get source, the tarball) hits the cache.
    env = {**os.environ, "CCACHE_DIR": str(cache_dir / "ccache"), "CCACHE_BASEDIR": str(tree),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    restored = [] if applied_fault else faults.restore(tree, faults.load())
    if restored:
        print(f"otns: {', '.join(restored)} still held an `otns mutate` fault (a killed run): restored",
              file=sys.stderr)
    start = time.monotonic()
    with open(log, "w") as f:
        unmet = ensure_config(tree, env, f)
        if unmet:
            # An old tree may lack a symbol (no DEBUG_INFO_NONE before 5.18): say so, go on;
            # the boot checks what the guest truly needs.
            print(f"otns: this tree's config cannot take: {', '.join(unmet)}", file=sys.stderr)
        rc = _run(["vng", "--build", "--skip-modules", "--config", str(FRAGMENT), "CC=ccache gcc"],
                  tree, env, f)
    seconds = time.monotonic() - start
    image = tree / host().image
    if rc != 0 or not image.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise BuildFailed(f"kernel build failed in {tree} (exit {rc}): {tail[0]} (log: {log})")
    return Built(tree, image, seconds, log)
