"""`otns diff`: the tests whose outcome differs between two results folders."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from base.errors import EXIT_NOT_AS_EXPECTED, EXIT_OK

from ..results.files import load_folder
from .common import stdout

NAME = "diff"


def add_parser(sub) -> None:
    d = sub.add_parser("diff", help="tests whose outcome differs between two result folders")
    d.add_argument("a", type=Path, metavar="RESULTS_A", help="the first result folder (e.g. the older kernel's)")
    d.add_argument("b", type=Path, metavar="RESULTS_B", help="the second result folder")


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    from ..report import grid as report
    a, b = load_folder(args.a), load_folder(args.b)
    changed = report.diff(a, b)
    table = Table(title=escape(f"{len(changed)} tests differ: {a.name} ({a.summary.get('release')}) -> "
                               f"{b.name} ({b.summary.get('release')})"))
    for col in ("test", a.name, b.name):
        table.add_column(Text(col))
    for name, x, y in changed:
        table.add_row(Text(name), x or "-", y or "-")
    stdout().print(table)
    return EXIT_NOT_AS_EXPECTED if changed else EXIT_OK
