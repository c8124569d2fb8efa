"""`otns matrix`: the suite on many kernels at once, then the grid and reports."""
from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from rich.markup import escape

from base.errors import EXIT_CRASH, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_NOT_AS_EXPECTED, EXIT_OK, BadInput

from ..options import check_workers
from ..results.files import MATRIX_LOG, STATE, SUMMARY, matrix_log_tail, read_state, read_summary, state_verdict
from ..results.model import Verdict
from ..run.preflight import (
    PYTEST_INTERRUPTED,
    PYTEST_OK,
    PYTEST_TESTS_FAILED,
    check_kernels,
    check_pytest_args,
    narrowed,
)
from .common import add_vm_opts, err, notice, stdout, vm_settings

NAME = "matrix"


def add_parser(sub) -> None:
    m = sub.add_parser("matrix", help="run the suite on many kernels at once and compare them",
                       description="One VM per pytest-xdist worker. SPEC=conform: the kernel must have every "
                                   "feature; SPEC=may-lack: it may lack any; SPEC (or SPEC=version): it must have "
                                   "those its version has, as for otns run.")
    m.add_argument("specs", nargs="*", help="kernel specs, as for otns run --kernel (optionally =conform, "
                                            "=may-lack or =version)")
    m.add_argument("--from", dest="from_ci", type=Path, default=None,
                   help="read the kernel list from a GitHub workflow (e.g. CI.yml)")
    m.add_argument("--shard", default=None, help="run only the i-th of n slices of the list: i/n")
    m.add_argument("--out", type=Path, default=None, help="output folder (default: results/matrix-TIME)")
    m.add_argument("-n", "--workers", type=int, default=None, help="VMs at once, at least 1 (default: 2)")
    add_vm_opts(m, per_kernel=True, per_vm=True)
    m.add_argument("-k", dest="keyword", default=None, help="only tests matching this pytest -k expression")


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    from ..matrix.entries import check_unique, entries_from_ci, parse_entry
    from ..matrix.runner import DEFAULT_WORKERS, run
    from ..options import shard
    from ..report import grid as report
    from ..results.plan import Plan

    # Every option and kernel is checked before the first boot: a bad one fails now, not in a worker.
    vm = vm_settings(args)
    workers = check_workers(DEFAULT_WORKERS if args.workers is None else args.workers)
    entries = entries_from_ci(args.from_ci) if args.from_ci else []
    entries += [parse_entry(s) for s in args.specs]
    if not entries:
        raise BadInput("no kernels: name some specs or use --from CI.yml")
    check_unique(entries)
    total = len(entries)
    entries = shard(entries, args.shard)
    if not entries:
        raise BadInput(f"shard {args.shard} of {total} kernels is empty")
    keyword = ["-k", args.keyword] if args.keyword else []
    # Collected on the host once, with or without -k: that checks -k and leaves every guest the
    # bytecode it would otherwise read file by file (vm.pycache, vm.bytecode).
    selected = check_pytest_args(keyword, "-k" if keyword else "no arguments", cache_dir=cache_dir)
    if keyword:  # each guest gets only the files that hold the selected tests
        keyword = narrowed(keyword, selected)
    to_fetch = check_kernels(entries, cache_dir, notice)
    if to_fetch:
        notice(f"otns: {len(to_fetch)} kernel(s) to fetch first: {', '.join(to_fetch)}")
    out = (args.out or Path("results") / f"matrix-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    plan = Plan(entries=entries, out=out, cache_dir=cache_dir, vm=vm, pytest_args=keyword)
    rc = run(plan, workers, stdout(160))
    if rc not in (PYTEST_OK, PYTEST_TESTS_FAILED) or not any((out / e.slug / STATE).exists() for e in entries):
        # A failed test is "some kernel not as expected"; anything else means the runner itself broke.
        last = matrix_log_tail(out)
        err.print(f"otns: error: the matrix runner stopped (pytest exit {rc}): {last} "
                  f"(log: {out / MATRIX_LOG})", markup=False)
        return EXIT_INTERRUPTED if rc in (PYTEST_INTERRUPTED, EXIT_INTERRUPTED) and not last else EXIT_INFRA
    kernels = report.load_matrix(out)
    stdout().print(report.terminal_grid(kernels))
    files = report.write_reports(kernels, out)
    states = [read_state(out / e.slug) for e in entries]
    bad = [e.kernel for e, s in zip(entries, states, strict=True) if not s.get("ok")]
    crashed = [e.kernel for e, s in zip(entries, states, strict=True)
               if state_verdict(s) in (Verdict.CRASHED, Verdict.HUNG)]
    err.print(f"reports: {files['html']}  {files['markdown']}  {files['junit']}", markup=False)
    if not bad:
        err.print(f"[bold]ALL {len(entries)} KERNELS AS EXPECTED[/]")
        return EXIT_OK
    err.print(f"[bold]{len(bad)} of {len(entries)} KERNELS NOT AS EXPECTED:[/] {escape(', '.join(bad))}")
    for e, st in zip(entries, states, strict=True):
        if not st.get("ok"):
            err.print(f"  {e.kernel} (expect {e.expect}): {why_not(st, out / e.slug)}", markup=False)
    return EXIT_CRASH if crashed else EXIT_NOT_AS_EXPECTED


def why_not(state: dict, folder: Path) -> str:
    """One line on why a matrix kernel did not go as expected, from its state.json and summary.json."""
    if not state:
        return "it never ran"
    verdict = state.get("verdict") or state.get("state", "?")
    try:
        detail = str(read_summary(folder / SUMMARY).get("detail", ""))
    except (OSError, BadInput):
        detail = ""
    detail = state.get("detail") or detail
    if state_verdict(state) is Verdict.FEATURE_ABSENT and state.get("expect") == "conform":
        detail = f"marked conform, but {detail or 'the kernel lacks the feature'}"
    return f"{verdict}: {detail}" if detail else verdict
