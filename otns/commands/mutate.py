"""`otns mutate`: break one rule at a time in a kernel tree (otns.mutate.mutator runs it, this prints)."""
from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from base.errors import EXIT_NOT_AS_EXPECTED, EXIT_OK, BadInput
from kernels import build, faults
from kernels.faults import Fault

from ..coverage.gcov import unreached_lines
from ..mutate import selection
from ..mutate.mutator import (
    SURVIVED,
    FaultResult,
    MutateOptions,
    Mutator,
    Report,
    kernel_version,
    merge,
    resumable,
    short_id,
)
from ..mutate.rulemap import tests_by_rule
from ..options import check_count
from ..results.files import MUTATE_JSON, MUTATE_MD
from .common import add_vm_opts, err, stdout, vm_settings

NAME = "mutate"


def add_parser(sub) -> None:
    mu = sub.add_parser("mutate", help="break one rule at a time in a kernel tree: which faults does the suite catch?",
                        description="Apply each one-rule fault of kernels/faults.toml to TREE in turn, build "
                                    "incrementally, run the whole suite, restore the file; print which faults "
                                    "were caught (by which tests) and which survived. Exit 0 when every fault "
                                    "that built and ran was caught, 1 when some survived.")
    mu.add_argument("tree", type=Path, nargs="?", default=Path("."), help="a kernel tree, as for otns build")
    mu.add_argument("--faults", default=None, help="only these faults: ids or rule ids, comma-separated")
    mu.add_argument("--list", action="store_true", help="list the faults and exit")
    mu.add_argument("--table", type=Path, default=None,
                    help="a fault table of your own (TOML, as kernels/faults.toml), e.g. for another kernel version")
    mu.add_argument("--out", type=Path, default=None, help="results folder (default: results/mutate-TIME)")
    mu.add_argument("--resume", type=Path, default=None, metavar="DIR",
                    help="go on with an interrupted run's output folder (same options as that run): the faults it "
                         "judged keep their rows, the rest run, into DIR")
    add_vm_opts(mu, machine=False)
    mu.add_argument("--sample", type=int, default=None, metavar="N",
                    help="only N of the selected faults, drawn at random (the same N for the same --seed)")
    mu.add_argument("--seed", type=int, default=0, help="the seed of --sample (default 0)")
    mu.add_argument("--shard", default=None, metavar="i/n",
                    help="only the i-th of n interleaved slices of the (sampled) list, for n machines")
    mu.add_argument("--merge", type=Path, nargs="+", default=None, metavar="DIR",
                    help="join the tables of shard runs (their output folders) into --out; builds nothing")
    mu.add_argument("--auto", action="store_true",
                    help="faults generated from the code of the features' functions (kernels/feature_code.toml) "
                         "by operators (negate a condition, drop an operand or a flag, delete a statement, another "
                         "errno, swap two checks, off by one) instead of the hand-written table")
    mu.add_argument("--coverage", type=Path, default=None, metavar="DIR",
                    help="an otns coverage output folder of this tree: faults on lines the suite never runs are "
                         "reported 'not reached' without a build")
    mu.add_argument("--every-test", action="store_true",
                    help="run the whole suite on every fault, to name every test that catches it (slower); "
                         "by default the tests of the fault's rule run first and the first failure decides")


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    out = stdout()  # never fold test ids in a log
    if args.resume and (args.out or args.merge or args.list):
        raise BadInput("--resume writes into the folder it resumes: it takes no --out, --merge or --list")
    folder = (args.resume or args.out or Path("results") / f"mutate-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    if args.merge:
        report = merge([p.resolve() for p in args.merge], folder)
        out.print(result_table(report))
        err.print(f"[bold]{escape(report.score_line())}[/] ({report.shard}); table: {escape(str(folder / MUTATE_MD))}")
        return EXIT_NOT_AS_EXPECTED if report.count(SURVIVED) else EXIT_OK
    vm = vm_settings(args)
    if args.sample is not None:
        check_count(args.sample, "--sample", 1, 1_000_000)
    if args.auto and args.table:
        raise BadInput("--auto generates its faults: it takes no --table")
    tree = build.find_tree(args.tree, cache_dir) if args.auto or not args.list else None
    selected = selection.choose(tree, args.auto, args.table, args.faults, args.sample, args.seed, args.shard)
    if args.list:
        out.print(list_table(selected, "generated from the code" if args.auto else args.table or faults.TABLE))
        return EXIT_OK
    assert tree is not None
    judged: list[FaultResult] = []
    spent = 0.0
    if args.resume:
        judged, selected, spent = resumable(folder, selected, kernel_version(tree))
        if not selected:
            raise BadInput(f"{folder} judged every fault of this selection: nothing to resume")
    opts = MutateOptions(tree=tree, cache_dir=cache_dir, out=folder, faults=selected, vm=vm,
                         every_test=args.every_test, shard=args.shard or "",
                         rule_tests={} if args.every_test else tests_by_rule(),
                         unreached=unreached_lines(args.coverage.resolve(), tree) if args.coverage else {},
                         judged=judged, judged_seconds=spent)

    def on_row(r: FaultResult) -> None:
        by = f" by {len(r.caught_by)} tests, first {short_id(r.caught_by[0])}" if r.caught_by else ""
        err.print(f"  -> {r.status}{by}{': ' + r.detail if r.detail else ''}", markup=False)

    if judged:
        err.print(f"otns: resuming {folder}: {len(judged)} faults judged, {len(selected)} to run", markup=False)
    err.print(f"otns: {len(selected)} faults on {tree} ({kernel_version(tree)}); results in {folder}", markup=False)
    report = Mutator(opts, lambda m: err.print(m, markup=False), on_row).run()
    out.print(result_table(report))
    err.print(f"[bold]{escape(report.score_line())}[/] in {report.seconds / 60:.0f} min; "
              f"table: {escape(str(folder / MUTATE_MD))}, {escape(str(folder / MUTATE_JSON))}")
    return EXIT_NOT_AS_EXPECTED if report.count(SURVIVED) else EXIT_OK


def list_table(selected: list[Fault], source: Path | str):
    table = Table(title=f"{len(selected)} faults ({source})")
    for col in ("id", "rule", "file", "what it breaks"):
        table.add_column(col)
    for f in selected:
        table.add_row(f.id, f.rule, f.file, f.why)
    return table


def result_table(report: Report):
    table = Table(title=f"otns mutate {report.kernel_version}: {report.score_line()}")
    for col in ("fault", "rule", "status", "caught by / why not"):
        table.add_column(col)
    for r in report.rows:
        by = short_id(r.caught_by[0]) + (f" (+{len(r.caught_by) - 1})" if len(r.caught_by) > 1 else "") \
            if r.caught_by else ""
        table.add_row(r.fault.id, r.fault.rule, r.status, Text("; ".join(x for x in (by, r.detail) if x)))
    return table
