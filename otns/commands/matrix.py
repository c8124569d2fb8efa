"""`otns matrix`: the suite on many kernels at once, then the grid and reports."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from base.errors import EXIT_CRASH, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_NOT_AS_EXPECTED, EXIT_OK

from ..options import check_workers
from ..results.digest import digest
from ..results.files import MATRIX_LOG, matrix_log_tail
from ..results.jsonout import kernel_json
from ..run.preflight import PYTEST_INTERRUPTED
from .common import PipeConsole, add_vm_opts, err, notice, plural, print_lines, stdout, vm_settings, writer

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
    m.add_argument("--json", action="store_true",
                   help="print the results as one JSON object on stdout: the verdict and, per kernel, what "
                        "otns run --json gives (the live table goes to stderr)")


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    from ..matrix import session
    from ..matrix.runner import DEFAULT_WORKERS, run
    from ..report import grid as report

    vm = vm_settings(args)
    workers = check_workers(DEFAULT_WORKERS if args.workers is None else args.workers)
    out = (args.out or Path("results") / f"matrix-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    plan = session.prepare(args.specs, args.from_ci, args.shard, args.keyword, out, cache_dir, vm, notice)
    rc = run(plan, workers, PipeConsole(stderr=True, width=None if sys.stderr.isatty() else 160) if args.json
             else stdout(160))
    if session.runner_broke(rc, plan):
        last = matrix_log_tail(out)
        err.print(f"otns: error: the matrix runner stopped (pytest exit {rc}): {last} "
                  f"(log: {out / MATRIX_LOG})", markup=False)
        return EXIT_INTERRUPTED if rc in (PYTEST_INTERRUPTED, EXIT_INTERRUPTED) and not last else EXIT_INFRA
    kernels = report.load_matrix(out)
    files = report.write_reports(kernels, out)
    end = session.ended(plan)
    entries = plan.entries
    bad = [e.kernel for e, _ in end.not_as_expected]
    why = {e.slug: reason for e, reason in end.not_as_expected}
    code = EXIT_OK if not bad else EXIT_CRASH if end.crashed else EXIT_NOT_AS_EXPECTED
    verdict = (f"ALL {plural(len(entries), 'KERNEL')} AS EXPECTED" if not bad else
               f"{len(bad)} of {plural(len(entries), 'KERNEL')} NOT AS EXPECTED: {', '.join(bad)}")
    if args.json:
        doc = {"verdict": verdict, "exit_code": code, "out": str(out),
               "kernels": [{**kernel_json(k), "as_expected": e.slug not in why}
                           for e, k in zip(entries, kernels, strict=True)]}
        writer(sys.stdout)(json.dumps(doc, indent=1) + "\n")
        print_lines(sys.stderr, [f"reports: {files['html']}  {files['markdown']}  {files['junit']}", verdict],
                    bold_last=True)
        return code
    console = stdout()
    console.print(report.terminal_grid(kernels, console.width), crop=False)
    # Under the grid, in a terminal or a CI log alike: each kernel that missed its expectation,
    # its failures one per line with rules and fix, its absences marked expected; the verdict last.
    lines = []
    for e, k in zip(entries, kernels, strict=True):
        if e.slug in why:
            failures = digest(k, skips=False)
            listed = any(ln.startswith(("FAILED ", "ERROR ")) for ln in failures)
            lines.append(f"{e.kernel} (expect {e.expect}): " + (k.verdict if listed else why[e.slug]))
            lines += [f"  {ln}" for ln in failures]
    lines.append(f"reports: {files['html']}  {files['markdown']}  {files['junit']}")
    print_lines(sys.stdout, lines + [verdict], bold_last=True)
    return code
