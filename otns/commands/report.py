"""`otns report`: the grid, HTML, combined JUnit (and KCIDB JSON) over results folders."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from base.errors import EXIT_OK, BadInput

from ..results.files import load_any
from .common import err, stdout

NAME = "report"


def add_parser(sub) -> None:
    rp = sub.add_parser("report", help="grid, HTML and combined JUnit over result folders",
                        description="Build the kernel x test grid over results folders (of otns run, or matrix "
                                    "outputs): failing and differing rows on the terminal, and in --out a "
                                    "self-contained report.html, grid.md and combined-junit.xml; --kcidb adds "
                                    "KernelCI's JSON. Exit 0 when the reports were written (whatever the "
                                    "verdicts), 2 for a folder that is not otns results.")
    rp.add_argument("folders", nargs="+", type=Path, help="matrix output folders or single-kernel result folders")
    rp.add_argument("--out", type=Path, required=True, help="where report.html, grid.md, combined-junit.xml go")
    rp.add_argument("--kcidb", type=Path, default=None, metavar="FILE",
                    help="also write the results as KCIDB JSON (KernelCI's report format, schema 5.3) to FILE")
    rp.add_argument("--kcidb-origin", default="otns", metavar="NAME",
                    help="the KCIDB origin the ids start with (your CI's name in KernelCI; default: %(default)s)")
    rp.add_argument("--kcidb-url", default=None, metavar="URL",
                    help="where the results folders are published (e.g. a CI artifact's URL): links to each "
                         "run's console log and files, by the folders' paths below the current folder")


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    from ..report import grid as report
    kernels = load_any(args.folders)
    if not kernels:
        raise BadInput("no result folders found")
    args.out.mkdir(parents=True, exist_ok=True)
    out = stdout()
    out.print(report.terminal_grid(kernels, out.width), crop=False)
    files = report.write_reports(kernels, args.out.resolve())
    err.print(f"reports: {files['html']}  {files['markdown']}  {files['junit']}", markup=False)
    if args.kcidb:
        from ..report import kcidb
        if not re.fullmatch(r"[a-z0-9_]+", args.kcidb_origin):
            raise BadInput(f"--kcidb-origin {args.kcidb_origin!r}: KCIDB origins are lower-case letters, digits, _")
        if args.kcidb_url and not re.match(r"https?://[^\s]+$", args.kcidb_url):
            raise BadInput(f"--kcidb-url {args.kcidb_url!r} is not an http(s) URL")
        kcidb.write(kernels, args.kcidb, args.kcidb_origin, args.kcidb_url)
        err.print(f"KCIDB: {args.kcidb}", markup=False)
    return EXIT_OK
