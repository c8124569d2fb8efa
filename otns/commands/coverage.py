"""`otns coverage`: the kernel lines and branches of the features that the suite reaches."""
from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from rich.table import Table

from base.errors import EXIT_NOT_AS_EXPECTED, EXIT_OK

from ..options import VmSettings
from .common import add_vm_opts, err, stdout, vm_settings

NAME = "coverage"
# gcov's counters slow every function of the features down: twice otns run's time limit.
COVERAGE_VM = VmSettings(timeout=600.0)


def add_parser(sub) -> None:
    co = sub.add_parser("coverage", help="which lines and branches of the features' kernel code the suite reaches",
                        description="Build a copy of TREE with gcov on the features' objects "
                                    "(kernels/feature_code.toml), run the suite on it, and report per function "
                                    "the lines and branches reached (HTML, JSON, lcov, coverage.md). Every gap "
                                    "is explained by kernels/unreached.toml or listed. Exit 0 when every gap has "
                                    "a reason, 1 when some have none.")
    co.add_argument("tree", type=Path, nargs="?", default=Path("."),
                    help="a kernel tree, as for otns build (e.g. debian-source:7.2)")
    co.add_argument("--out", type=Path, default=None, help="output folder (default: results/coverage-TIME)")
    co.add_argument("-k", dest="keyword", default=None, help="only the tests pytest's -k selects")
    add_vm_opts(co, COVERAGE_VM, machine=False)


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    from kernels import build

    from ..coverage.gcov import run

    vm = vm_settings(args)
    tree = build.find_tree(args.tree, cache_dir)
    out = (args.out or Path("results") / f"coverage-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    report = run(tree, cache_dir, out, ["-k", args.keyword] if args.keyword else [], vm,
                 lambda m: err.print(m, markup=False))
    table = Table(title=f"otns coverage {report.summary.release}: the features' functions")
    for col in ("file", "function", "lines", "branches", "unexplained gaps"):
        table.add_column(col)
    for f in report.functions:
        table.add_row(f.file, f.name, f"{f.lines_hit}/{f.lines}", f"{f.branches_hit}/{f.branches}",
                      str(sum(1 for g in f.gaps if not g.reason)))
    stdout().print(table)
    lh, lt, bh, bt = report.totals()
    gaps = report.unexplained()
    err.print(f"lines {lh}/{lt} ({100 * lh / max(lt, 1):.1f} %), branches {bh}/{bt} ({100 * bh / max(bt, 1):.1f} %); "
              f"{len(gaps)} gaps without a reason; report: {out / 'coverage.md'}, {out / 'html' / 'index.html'}, "
              f"{out / 'coverage.json'}, {out / 'coverage.info'}", markup=False)
    return EXIT_NOT_AS_EXPECTED if gaps else EXIT_OK
