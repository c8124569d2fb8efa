"""`otns kernels list`: the Debian kernels in the archive's index."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.table import Table

from base.errors import EXIT_OK, BadInput
from kernels import catalog, fetch
from kernels.debian import FLAVOURS, newest_per_upstream

from .common import FLAVOUR_HELP, notice, stdout, writer

NAME = "kernels"


def add_parser(sub) -> None:
    k = sub.add_parser("kernels", help="Debian kernels available now",
                       description="The Debian kernels in the archive's index now (refreshed when old), as "
                                   "otns run --kernel debian:VERSION takes them, and which are in the cache.")
    ksub = k.add_subparsers(dest="kcommand", metavar="list")
    kl = ksub.add_parser("list", help="a table of the Debian kernels in the archive's index")
    kl.add_argument("--all", action="store_true", help="every package version of both flavours")
    kl.add_argument("--flavour", choices=FLAVOURS, default="cloud", help=FLAVOUR_HELP)
    kl.add_argument("--json", action="store_true",
                    help="a JSON list on stdout: version, package version, release, flavour, suites, cached")


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    if args.kcommand is None:
        raise BadInput("otns kernels needs a subcommand: otns kernels list [--all] [--flavour cloud|amd64]")
    _, kernels = catalog.load(cache_dir, notice=notice)
    rows = kernels if args.all else newest_per_upstream(kernels, args.flavour)
    if args.json:
        writer(sys.stdout)(json.dumps([{"version": k.upstream, "package_version": k.debian_version,
                                        "release": k.release, "flavour": k.flavour, "suites": list(k.suites),
                                        "cached": fetch.is_cached(cache_dir, k), "spec": f"debian:{k.upstream}"}
                                       for k in rows], indent=1) + "\n")
        return EXIT_OK
    table = Table(title=f"Debian kernels ({'all' if args.all else args.flavour})")
    for col in ("version", "package version", "release", "flavour", "suite", "cached"):
        table.add_column(col)
    for k in rows:
        table.add_row(k.upstream, k.debian_version, k.release, k.flavour, ", ".join(k.suites),
                      "yes" if fetch.is_cached(cache_dir, k) else "")
    stdout(160).print(table)
    return EXIT_OK
