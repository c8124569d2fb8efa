"""`otns build`: build a kernel from a source tree."""
from __future__ import annotations

import argparse
import contextlib
import re
import threading
import time
from pathlib import Path

from base import cachedir
from base.errors import EXIT_OK

from .common import err

NAME = "build"


def add_parser(sub) -> None:
    bu = sub.add_parser("build", help="build a kernel from a source tree (virtme-ng, the project's config, ccache)",
                        description="Build TREE with allnoconfig plus kernels/otns.config (what the guest and the "
                                    "suite need, built in) through ccache, then prove the bzImage holds the vmlinux "
                                    "just linked. Then: otns run --kernel TREE. Exit 0 built, 3 when the build or "
                                    "the proof failed.")
    bu.add_argument("tree", type=Path, nargs="?", default=Path("."),
                    help="a git checkout, a linux-source-X.Y tarball, or an `apt-get source linux` folder")


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    from kernels import build

    tree = build.find_tree(args.tree, cache_dir)
    log = cache_dir / cachedir.BUILDS / f"{tree.name}.log"
    counts = cache_dir / cachedir.BUILDS / f"{tree.name}.objects"  # how many the last full build of this tree compiled
    err.print(f"otns: building {tree} (log: {log})", markup=False)
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(log, _last_count(counts), stop), daemon=True)
    watcher.start()
    try:
        built = build.build(tree, cache_dir, log=log)
    finally:
        stop.set()
        watcher.join(timeout=2)
    done = compiled(log)
    if done > 100:  # a first or near-full build: the next one's "of about N"
        counts.write_text(f"{done}\n")
    err.print(f"built {built.image} in {built.seconds:.0f} s ({done} objects compiled); "
              f"boot it with: otns run --kernel {tree}", markup=False)
    return EXIT_OK


# make's own lines for each object it compiles ("  CC      fs/namespace.o").
_COMPILED = re.compile(rb"^\s+CC\s+\S+\.o$", re.M)
EVERY = 20.0  # seconds between lines when the output is not a terminal


def compiled(log: Path) -> int:
    try:
        return len(_COMPILED.findall(log.read_bytes()))
    except OSError:
        return 0


def _last_count(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _watch(log: Path, total: int | None, stop: threading.Event) -> None:
    """Objects compiled so far, from make's log: a live line in a terminal, a line every EVERY
    seconds otherwise (a first build takes minutes)."""
    start = time.monotonic()
    of = f" of about {total}" if total else ""
    last_said = start
    with err.status("building") if err.is_terminal else _nothing() as status:
        while not stop.wait(1.0):
            text = f"build: {compiled(log)}{of} objects compiled, {time.monotonic() - start:.0f} s"
            if status is not None:
                status.update(text)
            elif time.monotonic() - last_said >= EVERY:
                last_said = time.monotonic()
                err.print(f"otns: {text}", markup=False)


@contextlib.contextmanager
def _nothing():
    yield None
