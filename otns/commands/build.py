"""`otns build`: build a kernel from a source tree."""
from __future__ import annotations

import argparse
from pathlib import Path

from base import cachedir
from base.errors import EXIT_OK

from .common import err

NAME = "build"


def add_parser(sub) -> None:
    bu = sub.add_parser("build", help="build a kernel from a source tree (virtme-ng, the project's config, ccache)")
    bu.add_argument("tree", type=Path, nargs="?", default=Path("."),
                    help="a git checkout, a linux-source-X.Y tarball, or an `apt-get source linux` folder")


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    from kernels import build

    tree = build.find_tree(args.tree, cache_dir)
    err.print(f"otns: building {tree} (log: {cache_dir / cachedir.BUILDS / (tree.name + '.log')})", markup=False)
    built = build.build(tree, cache_dir)
    err.print(f"built {built.image} in {built.seconds:.0f} s; boot it with: otns run --kernel {tree}", markup=False)
    return EXIT_OK
