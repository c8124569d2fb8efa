"""`otns run`: boot a kernel, run the conformance suite in it, print the verdict."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.markup import escape

from base.errors import BadInput
from conformance.features import BY_NAME as FEATURE_NAMES
from kernels.debian import FLAVOURS
from kernels.spec import parse_spec
from vm.guest_init import INITS

from ..results.absence import Policy
from ..results.files import read_ktap
from ..results.model import Verdict
from ..run.execute import RunOptions, dry_run, execute
from ..run.preflight import check_pytest_args, narrowed
from .common import DEFAULT_KERNEL, FLAVOUR_HELP, add_vm_opts, err, notice, vm_settings

NAME = "run"


def add_parser(sub) -> None:
    r = sub.add_parser("run", help="boot a kernel and run the conformance suite in it",
                       description="Boot a kernel under virtme-ng, run conformance/ in it, print a verdict. "
                                   "Arguments after -- go to pytest in the guest.")
    r.add_argument("--kernel", "-r", default=DEFAULT_KERNEL,
                   help="debian:latest | debian:7.2 | debian:7.0.12 | debian:7.3-rc7 | PATH to an image | "
                        "PATH to a build tree | installed release | host (default: %(default)s)")
    r.add_argument("--flavour", choices=FLAVOURS, default="cloud", help=FLAVOUR_HELP)
    add_vm_opts(r)
    r.add_argument("--results", type=Path, default=None, help="results folder (default: results/RELEASE-TIME-PID)")
    r.add_argument("-k", dest="keyword", default=None, help="only tests matching this pytest -k expression")
    r.add_argument("--ktap", action="store_true", help="print KTAP on stdout (live output goes to stderr)")
    r.add_argument("--require-feature", action="store_true",
                   help="no feature may be absent, whatever the kernel's version (else exit 1)")
    r.add_argument("--allow-absent", action="append", default=[], metavar="FEATURE", choices=list(FEATURE_NAMES),
                   help="accept that this feature is absent though the kernel's version says it must have it "
                        f"(a distribution that reverted it); repeatable; one of {', '.join(FEATURE_NAMES)}")
    r.add_argument("--guest-init", choices=INITS, default="otns",
                   help="the guest's first process: otns's own, which skips what the suite does not use "
                        "(overlays, udev), or virtme-ng's (slower; to compare) (default: %(default)s)")
    r.add_argument("--dry-run", action="store_true",
                   help="print the vng and QEMU commands (or what would be fetched); fetch, write and boot nothing")
    r.add_argument("pytest_args", nargs="*", help="extra pytest arguments for the guest (after --)")


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    live_tty = (sys.stderr if args.ktap else sys.stdout).isatty()
    extra = [f"--color={'yes' if live_tty else 'no'}", *args.pytest_args]
    if args.keyword:
        extra = ["-k", args.keyword, *extra]
    if args.require_feature and args.allow_absent:
        raise BadInput("--require-feature and --allow-absent contradict each other: choose one")
    opts = RunOptions(spec=parse_spec(args.kernel, args.flavour), cache_dir=cache_dir, results=args.results,
                      vm=vm_settings(args), pytest_args=extra, dry_run=args.dry_run, show_progress=err.is_terminal,
                      absence=Policy.from_names(args.allow_absent, args.require_feature),
                      guest_init=args.guest_init)
    selected = check_pytest_args(extra, "the arguments after --" if args.pytest_args else "-k" if args.keyword
                                 else "no arguments", cache_dir=None if args.dry_run else cache_dir)
    if args.keyword and not args.pytest_args:
        opts.pytest_args = narrowed(extra, selected)  # the same tests, fewer files to collect in the guest
    if args.dry_run:
        return dry_run(opts, notice, print)
    live = sys.stderr if args.ktap else sys.stdout

    def stream(line: str) -> None:
        live.write(line)
        live.flush()

    summary, folder = execute(opts, notice, stream)
    if args.ktap:
        sys.stdout.write(read_ktap(folder))
        sys.stdout.flush()
    d = summary.durations
    timing = f"fetch {d['fetch']:.1f}s, boot {d['boot']:.1f}s, suite {d['suite']:.1f}s, total {d['total']:.1f}s"
    err.print(f"{summary.release} ({summary.source}, {summary.accel}): {timing}", markup=False)
    if summary.detail and summary.verdict is not Verdict.CONFORMS:
        err.print(f"  {summary.detail}", markup=False)
    err.print(f"[bold]{escape(summary.verdict_line())}[/]  results: {escape(str(folder))}")
    return summary.exit_code()
