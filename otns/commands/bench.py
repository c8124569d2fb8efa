"""`otns bench`: time OPEN_TREE_NAMESPACE against unshare + pivot_root as the mount table grows."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from base.errors import EXIT_NOT_AS_EXPECTED, EXIT_OK
from kernels.debian import FLAVOURS
from kernels.spec import parse_spec

from ..bench.measure import BENCH_VM, DEFAULT_MOUNTS
from ..bench.report import METHODS
from ..results.files import BENCH_CSV, BENCH_MD, BENCH_PNG
from .common import DEFAULT_KERNEL, FLAVOUR_HELP, add_vm_opts, err, int_list, notice, stdout, vm_settings

NAME = "bench"


def add_parser(sub) -> None:
    be = sub.add_parser("bench", help="time OPEN_TREE_NAMESPACE against unshare + pivot_root as the mount table grows",
                        description="Boot a kernel and, for callers with M mounts and P parallel workers, time "
                                    "creating and destroying container root namespaces by each method. Writes "
                                    f"{BENCH_CSV}, {BENCH_MD} and {BENCH_PNG}; exit 0 when open_tree stays flat in M "
                                    "while unshare+pivot_root grows, 1 when it does not.")
    be.add_argument("--kernel", "-r", default=DEFAULT_KERNEL, help="as for otns run (default: %(default)s)")
    be.add_argument("--flavour", choices=FLAVOURS, default="cloud", help=FLAVOUR_HELP)
    be.add_argument("--mounts", default=",".join(map(str, DEFAULT_MOUNTS)),
                    help="mount-table sizes M, comma-separated (default: %(default)s)")
    be.add_argument("--workers", default="", help="parallel workers P, comma-separated (default: 1 and the guest's CPUs)")
    be.add_argument("--methods", default=",".join(METHODS),
                    help="which methods (default: all; those the kernel lacks are skipped)")
    be.add_argument("--seconds", type=float, default=1.0, help="time budget per worker and cell (default: 1)")
    be.add_argument("--min-iter", type=int, default=5,
                    help="samples per worker and cell even past --seconds (default: %(default)s)")
    be.add_argument("--max-iter", type=int, default=200,
                    help="samples per worker and cell at most, even within --seconds (default: %(default)s)")
    add_vm_opts(be, BENCH_VM)
    be.add_argument("--results", type=Path, default=None, help="results folder (default: results/bench-RELEASE-TIME)")
    be.add_argument("--check", type=int, default=0, metavar="N",
                    help="time nothing: create N namespaces per method, look inside each, and check that "
                         "its root is the prepared rootfs and that nothing is left behind")


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    from ..bench import measure as bench
    from ..bench import report as br

    opts = bench.BenchOptions(spec=parse_spec(args.kernel, args.flavour), cache_dir=cache_dir, results=args.results,
                              mounts=int_list(args.mounts, "--mounts"), workers=int_list(args.workers, "--workers"),
                              methods=tuple(m for m in args.methods.split(",") if m), seconds=args.seconds,
                              min_iter=args.min_iter, max_iter=args.max_iter, vm=vm_settings(args),
                              show_progress=err.is_terminal, check=args.check, progress=lambda m: notice(f"otns {m}"))
    bench.validate(opts)
    res = bench.execute(opts, notice, lambda line: None)
    out = stdout()
    if args.check:
        table = Table(title=f"{res.release} ({res.accel}): {args.check} namespaces per method")
        for col in ("mounts", "method", "inside", "root", "left behind", "check"):
            table.add_column(col)
        failed = 0
        for c in res.raw.checks:
            problems = br.check_problems(c)
            failed += bool(problems)
            table.add_row(str(c["mounts"]), c["method"], str(c.get("mounts_inside", "-")), c.get("root_source", "-"),
                          f"fds {c.get('fds_before')}->{c.get('fds_after')}, "
                          f"namespaces alive {c.get('ns_alive_after')}/{c.get('iterations')}", "; ".join(problems) or "ok")
        out.print(table)
        for m, why in res.raw.skipped.items():
            err.print(f"not checked: {br.LABELS.get(m, m)}: {why}", markup=False)
        err.print(f"[bold]{'ALL METHODS OK' if not failed else f'{failed} CHECKS FAILED'}[/]  results: {escape(str(res.folder))}")
        return EXIT_NOT_AS_EXPECTED if failed else EXIT_OK
    for p in sorted({c.workers for c in res.cells}):
        table = Table(title=f"{res.release} ({res.accel}), P={p}: per-namespace cost, median / p90 (µs)")
        header, rows = br.cost_table(res.cells, p)
        for col in header:
            table.add_column(col, justify="right")
        for row in rows:
            table.add_row(*row)
        out.print(table)
    for m, why in res.raw.skipped.items():
        err.print(f"not measured: {br.LABELS.get(m, m)}: {why}", markup=False)
    err.print(f"{len(res.raw.samples)} namespaces timed in {res.seconds:.0f} s; results: {res.folder} "
              f"({BENCH_CSV}, {BENCH_MD}, {BENCH_PNG})", markup=False)
    err.print(f"[bold]verdict: {escape(res.verdict.line)}[/]")
    return EXIT_NOT_AS_EXPECTED if res.verdict.holds is False else EXIT_OK
