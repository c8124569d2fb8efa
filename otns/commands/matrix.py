"""`otns matrix`: the suite on many kernels at once, then the grid and reports."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from base.errors import EXIT_CRASH, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_NOT_AS_EXPECTED, EXIT_OK, BadInput
from kernels.spec import parse_spec

from ..options import check_timeout, check_workers
from ..run.preflight import (PYTEST_INTERRUPTED, PYTEST_OK, PYTEST_TESTS_FAILED, check_kernels, check_pytest_args,
                         narrowed)
from ..results.files import MATRIX_LOG, STATE, SUMMARY, read_state, read_summary, state_verdict
from ..results.digest import digest
from ..results.jsonout import kernel_json
from ..results.model import Verdict
from ..run.execute import RunOptions, validate_options
from .common import (ACCEL_HELP, ACCELS, MEMORY_HELP, RUN_CPUS_HELP, TIMEOUT_HELP, PipeConsole, err, notice, plural,
                     print_lines, stdout, writer)

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
    m.add_argument("--timeout", type=float, default=300.0, help=TIMEOUT_HELP + ", per kernel")
    m.add_argument("--cpus", type=int, default=None, help=RUN_CPUS_HELP + ", per VM")
    m.add_argument("--memory", default="1G", help=MEMORY_HELP + ", per VM")
    m.add_argument("--accel", choices=ACCELS, default="auto", help=ACCEL_HELP)
    m.add_argument("-k", dest="keyword", default=None, help="only tests matching this pytest -k expression")
    m.add_argument("--json", action="store_true",
                   help="print the results as one JSON object on stdout: the verdict and, per kernel, what "
                        "otns run --json gives (the live table goes to stderr)")


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    from ..report import grid as report
    from ..matrix.runner import DEFAULT_WORKERS, Plan, check_unique, entries_from_ci, parse_entry, run
    from ..options import shard

    # Every option and kernel is checked before the first boot: a bad one fails now, not in a worker.
    check_timeout(args.timeout)
    workers = check_workers(DEFAULT_WORKERS if args.workers is None else args.workers)
    validate_options(RunOptions(spec=parse_spec("host"), cache_dir=cache_dir, cpus=args.cpus, timeout=args.timeout,
                                memory=args.memory, accel=args.accel))  # the checks of otns run; spec unused
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
    plan = Plan(entries=entries, out=out, cache_dir=cache_dir, timeout=args.timeout, cpus=args.cpus,
                memory=args.memory, accel=args.accel, pytest_args=keyword)
    rc = run(plan, workers, PipeConsole(stderr=True, width=None if sys.stderr.isatty() else 160) if args.json
             else stdout(160))
    if rc not in (PYTEST_OK, PYTEST_TESTS_FAILED) or not any((out / e.slug / STATE).exists() for e in entries):
        # A failed test is "some kernel not as expected"; anything else means the runner itself broke.
        log = out / MATRIX_LOG
        last = log.read_text().strip().splitlines()[-1:] if log.exists() else []
        err.print(f"otns: error: the matrix runner stopped (pytest exit {rc}): {last[0] if last else ''} "
                  f"(log: {log})", markup=False)
        return EXIT_INTERRUPTED if rc in (PYTEST_INTERRUPTED, EXIT_INTERRUPTED) and not last else EXIT_INFRA
    kernels = report.load_matrix(out)
    files = report.write_reports(kernels, out)
    states = [read_state(out / e.slug) for e in entries]
    bad = [e.kernel for e, s in zip(entries, states, strict=True) if not s.get("ok")]
    crashed = [e.kernel for e, s in zip(entries, states, strict=True)
               if state_verdict(s) in (Verdict.CRASHED, Verdict.HUNG)]
    code = EXIT_OK if not bad else EXIT_CRASH if crashed else EXIT_NOT_AS_EXPECTED
    verdict = (f"ALL {plural(len(entries), 'KERNEL')} AS EXPECTED" if not bad else
               f"{len(bad)} of {plural(len(entries), 'KERNEL')} NOT AS EXPECTED: {', '.join(bad)}")
    if args.json:
        doc = {"verdict": verdict, "exit_code": code, "out": str(out),
               "kernels": [{**kernel_json(k), "as_expected": bool(st.get("ok"))}
                           for k, st in zip(kernels, states, strict=True)]}
        writer(sys.stdout)(json.dumps(doc, indent=1) + "\n")
        print_lines(sys.stderr, [f"reports: {files['html']}  {files['markdown']}  {files['junit']}", verdict],
                    bold_last=True)
        return code
    out = stdout()
    out.print(report.terminal_grid(kernels, out.width), crop=False)
    # Under the grid, in a terminal or a CI log alike: each kernel that missed its expectation,
    # its failures one per line with rules and fix, its absences marked expected; the verdict last.
    lines = []
    for e, st, k in zip(entries, states, kernels, strict=True):
        if not st.get("ok"):
            failures = digest(k, skips=False)
            listed = any(ln.startswith(("FAILED ", "ERROR ")) for ln in failures)
            lines.append(f"{e.kernel} (expect {e.expect}): " + (k.verdict if listed else why_not(st, out / e.slug)))
            lines += [f"  {ln}" for ln in failures]
    lines.append(f"reports: {files['html']}  {files['markdown']}  {files['junit']}")
    print_lines(sys.stdout, lines + [verdict], bold_last=True)
    return code


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
