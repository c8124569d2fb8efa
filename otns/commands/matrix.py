"""`otns matrix`: the suite on many kernels at once, then the grid and reports."""
from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from rich.markup import escape

from base.errors import EXIT_CRASH, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_NOT_AS_EXPECTED, EXIT_OK

from ..options import check_workers
from ..results.files import MATRIX_LOG, matrix_log_tail
from ..run.preflight import PYTEST_INTERRUPTED
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
    from ..matrix import session
    from ..matrix.runner import DEFAULT_WORKERS, run
    from ..report import grid as report

    vm = vm_settings(args)
    workers = check_workers(DEFAULT_WORKERS if args.workers is None else args.workers)
    out = (args.out or Path("results") / f"matrix-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    plan = session.prepare(args.specs, args.from_ci, args.shard, args.keyword, out, cache_dir, vm, notice)
    rc = run(plan, workers, stdout(160))
    if session.runner_broke(rc, plan):
        last = matrix_log_tail(out)
        err.print(f"otns: error: the matrix runner stopped (pytest exit {rc}): {last} "
                  f"(log: {out / MATRIX_LOG})", markup=False)
        return EXIT_INTERRUPTED if rc in (PYTEST_INTERRUPTED, EXIT_INTERRUPTED) and not last else EXIT_INFRA
    kernels = report.load_matrix(out)
    stdout().print(report.terminal_grid(kernels))
    files = report.write_reports(kernels, out)
    err.print(f"reports: {files['html']}  {files['markdown']}  {files['junit']}", markup=False)
    end = session.ended(plan)
    if not end.not_as_expected:
        err.print(f"[bold]ALL {len(plan.entries)} KERNELS AS EXPECTED[/]")
        return EXIT_OK
    bad = [e.kernel for e, _ in end.not_as_expected]
    err.print(f"[bold]{len(bad)} of {len(plan.entries)} KERNELS NOT AS EXPECTED:[/] {escape(', '.join(bad))}")
    for e, why in end.not_as_expected:
        err.print(f"  {e.kernel} (expect {e.expect}): {why}", markup=False)
    return EXIT_CRASH if end.crashed else EXIT_NOT_AS_EXPECTED
