"""`otns run`: boot a kernel, run the conformance suite in it, print the verdict."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from base.errors import BadInput, OtnsError
from conformance.features import BY_NAME as FEATURE_NAMES
from kernels.debian import FLAVOURS
from kernels.spec import parse_spec
from vm.boot import PHASE_USERSPACE
from vm.guest_init import INITS

from ..results.absence import Policy
from ..results.digest import digest
from ..results.files import KernelResults, load_folder, read_ktap
from ..results.jsonout import kernel_json
from ..results.model import RunSummary, Verdict
from ..run.execute import RunOptions, dry_run, execute
from ..run.preflight import check_pytest_args, narrowed
from .common import DEFAULT_KERNEL, FLAVOUR_HELP, PipeConsole, add_vm_opts, err, notice, print_lines, vm_settings, writer

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
    out = r.add_mutually_exclusive_group()
    out.add_argument("--ktap", action="store_true", help="print KTAP on stdout (live output goes to stderr)")
    out.add_argument("--json", action="store_true",
                     help="print the results as one JSON object on stdout: verdict, counts, each test's outcome, "
                          "rules, known fixes and message (live output goes to stderr)")
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
    # stdout carries the run: pytest's live output, the failures, the verdict (`otns run | tail`);
    # with --ktap or --json it carries that document alone, and the rest goes to stderr.
    live = sys.stderr if (args.ktap or args.json) else sys.stdout
    extra = [f"--color={'yes' if live.isatty() else 'no'}", *args.pytest_args]
    if args.keyword:
        extra = ["-k", args.keyword, *extra]
    if args.require_feature and args.allow_absent:
        raise BadInput("--require-feature and --allow-absent contradict each other: choose one")
    opts = RunOptions(spec=parse_spec(args.kernel, args.flavour), cache_dir=cache_dir, results=args.results,
                      vm=vm_settings(args), pytest_args=extra, dry_run=args.dry_run, show_progress=err.is_terminal,
                      absence=Policy.from_names(args.allow_absent, args.require_feature),
                      guest_init=args.guest_init, on_phase=(booting := BootProgress(live)))
    selected = check_pytest_args(extra, "the arguments after --" if args.pytest_args else "-k" if args.keyword
                                 else "no arguments", cache_dir=None if args.dry_run else cache_dir)
    if args.keyword and not args.pytest_args:
        opts.pytest_args = narrowed(extra, selected)  # the same tests, fewer files to collect in the guest
    if args.dry_run:
        return dry_run(opts, notice, print)
    write = writer(live)
    try:
        summary, folder = execute(opts, notice, write)
    finally:
        booting.close()  # a boot that never reached user space leaves no spinner behind
    if args.ktap:
        writer(sys.stdout)(read_ktap(folder))
    try:
        loaded = load_folder(folder)
    except (OtnsError, OSError):  # a file of the guest's that cannot be read: the verdict says so already
        loaded = KernelResults(summary.kernel, folder, summary, {})
    if args.json:
        writer(sys.stdout)(json.dumps(kernel_json(loaded), indent=1) + "\n")
    print_lines(live, ending(summary, loaded, folder), bold_last=True)
    return summary.exit_code()


def ending(summary: RunSummary, loaded: KernelResults, folder: Path) -> list[str]:
    """The lines that end a run: skips by reason, each failure with its rules and fix, the
    absences, the timings, and the verdict last."""
    lines = digest(loaded)
    d = summary.durations
    timing = f"fetch {d['fetch']:.1f}s, boot {d['boot']:.1f}s, suite {d['suite']:.1f}s, total {d['total']:.1f}s"
    lines.append(f"{summary.release} ({summary.source}, {summary.accel}): {timing}")
    listed = any(ln.startswith(("FAILED ", "ERROR ")) for ln in lines)
    if summary.detail and summary.verdict not in (Verdict.CONFORMS, Verdict.FEATURE_ABSENT) and not listed:
        lines.append(f"  {summary.detail}")
    return lines + [f"{summary.verdict_line()}  results: {folder}"]


class BootProgress:
    """The boot's phases with their times: a boot is 10-30 s under TCG with nothing else to show
    (pytest's own output takes over once the suite starts). Piped, a line per phase; in a
    terminal, one live line with a spinner and the time elapsed, then the time user space came."""

    def __init__(self, live: TextIO) -> None:
        self.live, self.write = live, writer(live)
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, what: str, seconds: float) -> None:
        text = f"boot: {what} ({seconds:.1f} s)"
        if not self.live.isatty() or what == PHASE_USERSPACE:
            self.close()
            self.write(f"otns: {text}\n")
            return
        if self.progress is None:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                     console=PipeConsole(file=self.live), transient=True)
            self.progress.start()
            self.task = self.progress.add_task(text)
        if self.task is not None:
            self.progress.update(self.task, description=text)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
