"""`otns bisect`: the Debian release where a test's outcome changed, and the changelog between."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from base.errors import EXIT_NOT_AS_EXPECTED, EXIT_OK, BadInput
from kernels.debian import FLAVOURS

from ..results.files import load_folder
from .common import FLAVOUR_HELP, add_vm_opts, err, notice, plural, vm_settings

if TYPE_CHECKING:  # imported when the command runs: `otns --help` needs none of it
    from ..bisect.session import Found

NAME = "bisect"
BEHAVIOUR = {"good": "old", "bad": "new", "skip": "skip"}
OUTCOMES = ("pass", "fail", "skip", "error")


def add_parser(sub) -> None:
    b = sub.add_parser("bisect", help="find the Debian release where a test's outcome changed",
                       description="Binary search over Debian's kernels between --good (old behaviour) and "
                                   "--bad (new behaviour). With --changed A B: every test whose outcome "
                                   "differs between two result folders, reusing boots across tests.")
    b.add_argument("test_id", nargs="?", help="conformance/test_file.py::test_name[param]")
    b.add_argument("--good", help="the kernel with the old behaviour, e.g. debian:7.2.6")
    b.add_argument("--bad", help="the kernel with the new behaviour, e.g. debian:7.2.13")
    b.add_argument("--find", choices=("regression", "fix"), default="regression",
                   help="regression: when did it stop passing (default); fix: when did it start passing")
    b.add_argument("--bad-outcome", choices=OUTCOMES, default=None,
                   help="the outcome that counts as the new behaviour (default: fail, or pass with --find fix)")
    b.add_argument("--changed", nargs=2, type=Path, metavar=("RESULTS_A", "RESULTS_B"), default=None,
                   help="bisect every test whose outcome differs between two result folders of Debian kernels "
                        "(A has the old behaviour), between the very kernels they ran")
    b.add_argument("--flavour", choices=FLAVOURS, default=None,
                   help=FLAVOUR_HELP.replace("(default: cloud)", "(default: cloud; with --changed, the results')"))
    b.add_argument("--out", type=Path, default=None, help="where each kernel's results are kept (default: results/bisect)")
    add_vm_opts(b, machine=False, per_kernel=True)


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    from ..bisect import hunt, session
    from ..report import grid as report

    vm = vm_settings(args)
    out = (args.out or Path("results") / "bisect").resolve()
    ends: list[str] | list[hunt.Recorded]
    if args.changed:
        a, b = load_folder(args.changed[0]), load_folder(args.changed[1])
        tests = [name for name, _, _ in report.diff(a, b)]
        # The very kernels the results came from, not their specs again (debian:latest moves on).
        ends = [hunt.recorded_kernel(x.folder, x.finished()) for x in (a, b)]
        flavour = hunt.common_flavour(ends, args.flavour)
        if not tests:
            err.print("no test differs between the two result folders: nothing to bisect", markup=False)
            return EXIT_OK
    else:
        if not (args.test_id and args.good and args.bad):
            raise BadInput("bisect needs TEST_ID --good SPEC --bad SPEC (or --changed RESULTS_A RESULTS_B)")
        tests = [hunt.normalise_test_id(args.test_id)]
        flavour = args.flavour or "cloud"
        ends = [args.good, args.bad]
    plan = session.prepare(tests, ends, flavour, args.find, args.bad_outcome, cache_dir, out, vm, notice,
                           lambda m: err.print(f"  {m}", markup=False, style="dim"))
    kernels = plan.kernels
    err.print(f"bisecting {plural(len(tests), 'test')} over {plural(len(kernels), 'Debian kernel')} "
              f"{kernels[0].upstream} .. {kernels[-1].upstream} ({flavour}); "
              f"old behaviour: {'/'.join(sorted(plan.good))}, new: {'/'.join(sorted(plan.bad))}", markup=False)
    status = EXIT_OK
    for test in tests:
        err.print(f"[bold]{escape(test)}[/]")
        found = session.find(plan, test, cache_dir, out, lambda st: err.print(
            f"  {st.label:>10}  {st.outcome:<28} {BEHAVIOUR[st.judged]:<5} {st.seconds:5.1f} s", markup=False))
        if not _print_found(found):
            status = EXIT_NOT_AS_EXPECTED
    err.print(f"{plural(plan.runner.boots, 'boot')} for {plural(len(kernels), 'kernel')}; results in {out}", markup=False)
    return status


def _print_found(found: Found) -> bool:
    """Prints what one test's search found; False when it could not tell."""
    res, lg, fb = found.result, found.last_good, found.first_bad
    if lg is None or fb is None:
        err.print(f"  cannot bisect: {res.error}", markup=False)
        return False
    seen = ", ".join(f"{s.label}={s.outcome}" for s in sorted(res.steps, key=lambda s: s.index))
    err.print(f"  last with the old behaviour: {lg.upstream} ({lg.debian_version}); "
              f"first with the new: {fb.upstream} ({fb.debian_version})", markup=False)
    err.print(f"  outcomes seen: {seen}", markup=False)
    if res.ambiguous:
        err.print(f"  AMBIGUOUS: {', '.join(found.skipped)} could not be tested and lies between them", markup=False)
    if not found.changelog:
        err.print("  (the packages of the first new kernel carry no changelog)", markup=False)
        return not res.ambiguous
    err.print(f"  Debian changelog between them: {len(found.changelog)} lines in {found.changelog_file}; "
              f"{len(found.relevant)} about mounts and namespaces", markup=False)
    for line in found.causes:
        err.print(f"  {line}", markup=False)
    err.print("  all of them, in changelog order:", markup=False)
    for line in found.relevant[:40]:
        err.print(f"    {line}", markup=False)
    return not res.ambiguous
