"""The otns command line: `otns run`, `otns kernels list`."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from kernels import catalog, fetch
from kernels.debian import FLAVOURS
from kernels.features import BY_NAME as FEATURE_NAMES
from kernels.spec import parse_spec

from .absence import Policy
from .bench import DEFAULT_MOUNTS
from .bench_report import METHODS
from .errors import EXIT_USAGE, BadInput, OtnsError
from .results import read_summary
from .options import MAX_CPUS, check_timeout, check_workers
from .paths import default_cache_dir
from .preflight import check_kernels, check_pytest_args, check_test_ids, narrowed
from .run import RunOptions, dry_run, execute, validate_options

DEFAULT_KERNEL = "debian:latest"
ACCEL_HELP = "auto (default): KVM if a test boot works on this machine, else TCG; kvm or tcg to force one"
CPUS_HELP = f"guest CPUs, 1 to {MAX_CPUS} (default: %(default)s)"
MEMORY_HELP = "guest memory, as for QEMU's -m: 1G, 2048M (default: %(default)s)"
TIMEOUT_HELP = "seconds before a guest counts as hung (default: %(default)s)"
FLAVOUR_HELP = "Debian kernel flavour: cloud (virtio built in) or amd64 (generic) (default: cloud)"
EXIT_INTERRUPTED = 130

err = Console(stderr=True, highlight=False, soft_wrap=True)
# Tables printed to a pipe or a CI log: wide enough that whole test ids are never folded.
PIPE_WIDTH = 400


def _notice(msg: str) -> None:
    err.print(msg, markup=False)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("otns")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="otns", description="Conformance suite for Linux OPEN_TREE_NAMESPACE.")
    p.add_argument("--version", action="version", version=f"otns {_version()}")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="where kernels, the Debian index and tools are cached (default: $XDG_CACHE_HOME/otns)")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="boot a kernel and run the conformance suite in it",
                       description="Boot a kernel under virtme-ng, run conformance/ in it, print a verdict. "
                                   "Arguments after -- go to pytest in the guest.")
    r.add_argument("--kernel", "-r", default=DEFAULT_KERNEL,
                   help="debian:latest | debian:7.2 | debian:7.0.12 | debian:7.3-rc7 | PATH to an image | "
                        "PATH to a build tree | installed release | host (default: %(default)s)")
    r.add_argument("--flavour", choices=FLAVOURS, default="cloud", help=FLAVOUR_HELP)
    r.add_argument("--cpus", type=int, default=2, help=CPUS_HELP)
    r.add_argument("--memory", default="1G", help=MEMORY_HELP)
    r.add_argument("--timeout", type=float, default=300.0, help=TIMEOUT_HELP)
    r.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto", help=ACCEL_HELP)
    r.add_argument("--results", type=Path, default=None, help="results folder (default: results/RELEASE-TIME-PID)")
    r.add_argument("-k", dest="keyword", default=None, help="only tests matching this pytest -k expression")
    r.add_argument("--ktap", action="store_true", help="print KTAP on stdout (live output goes to stderr)")
    r.add_argument("--require-feature", action="store_true",
                   help="no feature may be absent, whatever the kernel's version (else exit 1)")
    r.add_argument("--allow-absent", action="append", default=[], metavar="FEATURE", choices=list(FEATURE_NAMES),
                   help="accept that this feature is absent though the kernel's version says it must have it "
                        f"(a distribution that reverted it); repeatable; one of {', '.join(FEATURE_NAMES)}")
    r.add_argument("--dry-run", action="store_true",
                   help="print the vng and QEMU commands (or what would be fetched); fetch, write and boot nothing")
    r.add_argument("pytest_args", nargs="*", help="extra pytest arguments for the guest (after --)")

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
    m.add_argument("--cpus", type=int, default=2, help=CPUS_HELP + ", per VM")
    m.add_argument("--memory", default="1G", help=MEMORY_HELP + ", per VM")
    m.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto", help=ACCEL_HELP)
    m.add_argument("-k", dest="keyword", default=None, help="only tests matching this pytest -k expression")

    rp = sub.add_parser("report", help="grid, HTML and combined JUnit over result folders")
    rp.add_argument("folders", nargs="+", type=Path, help="matrix output folders or single-kernel result folders")
    rp.add_argument("--out", type=Path, required=True, help="where report.html, grid.md, combined-junit.xml go")
    rp.add_argument("--kcidb", type=Path, default=None, metavar="FILE",
                    help="also write the results as KCIDB JSON (KernelCI's report format, schema 5.3) to FILE")

    d = sub.add_parser("diff", help="tests whose outcome differs between two result folders")
    d.add_argument("a", type=Path, metavar="RESULTS_A", help="the first result folder (e.g. the older kernel's)")
    d.add_argument("b", type=Path, metavar="RESULTS_B", help="the second result folder")

    b = sub.add_parser("bisect", help="find the Debian release where a test's outcome changed",
                       description="Binary search over Debian's kernels between --good (old behaviour) and "
                                   "--bad (new behaviour). With --changed A B: every test whose outcome "
                                   "differs between two result folders, reusing boots across tests.")
    b.add_argument("test_id", nargs="?", help="conformance/test_file.py::test_name[param]")
    b.add_argument("--good", help="the kernel with the old behaviour, e.g. debian:7.2.6")
    b.add_argument("--bad", help="the kernel with the new behaviour, e.g. debian:7.2.13")
    b.add_argument("--find", choices=("regression", "fix"), default="regression",
                   help="regression: when did it stop passing (default); fix: when did it start passing")
    b.add_argument("--bad-outcome", choices=("pass", "fail", "skip", "error"), default=None,
                   help="the outcome that counts as the new behaviour (default: fail, or pass with --find fix)")
    b.add_argument("--changed", nargs=2, type=Path, metavar=("RESULTS_A", "RESULTS_B"), default=None,
                   help="bisect every test whose outcome differs between two result folders of Debian kernels "
                        "(A has the old behaviour), between the very kernels they ran")
    b.add_argument("--flavour", choices=FLAVOURS, default=None,
                   help=FLAVOUR_HELP.replace("(default: cloud)", "(default: cloud; with --changed, the results')"))
    b.add_argument("--out", type=Path, default=None, help="where each kernel's results are kept (default: results/bisect)")
    b.add_argument("--timeout", type=float, default=300.0, help=TIMEOUT_HELP + ", per kernel")

    bu = sub.add_parser("build", help="build a kernel from a source tree (virtme-ng, the project's config, ccache)")
    bu.add_argument("tree", type=Path, nargs="?", default=Path("."),
                    help="a git checkout, a linux-source-X.Y tarball, or an `apt-get source linux` folder")

    br = sub.add_parser("bisect-run", help="for `git bisect run` in a kernel tree: build, boot, run one test",
                        description="Exit 0 good (old behaviour), 1 bad (new behaviour), 125 skip (build or "
                                    "boot failed, or the test could not run); never 126-255 except 130 on Ctrl-C.")
    br.add_argument("test_id", help="conformance/test_file.py::test_name[param]")
    br.add_argument("--tree", type=Path, default=Path("."),
                    help="the kernel tree git bisect checked out (default: the current folder)")
    br.add_argument("--find", choices=("regression", "fix"), default="regression",
                    help="regression: good is pass, bad is fail (default); fix: good is fail, bad is pass")
    br.add_argument("--bad-outcome", choices=("pass", "fail", "skip", "error"), default=None,
                    help="the outcome that counts as bad (the new behaviour), instead of --find's")
    br.add_argument("--no-build", action="store_true", help="boot the tree's existing bzImage")
    br.add_argument("--timeout", type=float, default=300.0, help=TIMEOUT_HELP)

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
    mu.add_argument("--timeout", type=float, default=300.0, help="seconds before a guest counts as hung")

    be = sub.add_parser("bench", help="time OPEN_TREE_NAMESPACE against unshare + pivot_root as the mount table grows",
                        description="Boot a kernel and, for callers with M mounts and P parallel workers, time "
                                    "creating and destroying container root namespaces by each method. Writes "
                                    "bench.csv, bench.md and bench.png; exit 0 when open_tree stays flat in M "
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
    be.add_argument("--cpus", type=int, default=2, help=CPUS_HELP)
    be.add_argument("--memory", default="2G", help=MEMORY_HELP)
    be.add_argument("--timeout", type=float, default=1800.0, help=TIMEOUT_HELP)
    be.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto", help=ACCEL_HELP)
    be.add_argument("--results", type=Path, default=None, help="results folder (default: results/bench-RELEASE-TIME)")
    be.add_argument("--check", type=int, default=0, metavar="N",
                    help="time nothing: create N namespaces per method, look inside each, and check that "
                         "its root is the prepared rootfs and that nothing is left behind")

    k = sub.add_parser("kernels", help="Debian kernels available now")
    ksub = k.add_subparsers(dest="kcommand", metavar="list")
    kl = ksub.add_parser("list", help="a table of the Debian kernels in the archive's index")
    kl.add_argument("--all", action="store_true", help="every package version of both flavours")
    kl.add_argument("--flavour", choices=FLAVOURS, default="cloud", help=FLAVOUR_HELP)
    return p


def cmd_run(args: argparse.Namespace, cache_dir: Path) -> int:
    live_tty = (sys.stderr if args.ktap else sys.stdout).isatty()
    extra = [f"--color={'yes' if live_tty else 'no'}", *args.pytest_args]
    if args.keyword:
        extra = ["-k", args.keyword, *extra]
    if args.require_feature and args.allow_absent:
        raise BadInput("--require-feature and --allow-absent contradict each other: choose one")
    opts = RunOptions(spec=parse_spec(args.kernel, args.flavour), cache_dir=cache_dir, results=args.results,
                      cpus=args.cpus, memory=args.memory, timeout=args.timeout, accel=args.accel,
                      pytest_args=extra, dry_run=args.dry_run, show_progress=err.is_terminal,
                      absence=Policy.from_names(args.allow_absent, args.require_feature))
    validate_options(opts)
    selected = check_pytest_args(extra, "the arguments after --" if args.pytest_args else "-k" if args.keyword
                                 else "no arguments", cache_dir=None if args.dry_run else cache_dir)
    if args.keyword and not args.pytest_args:
        opts.pytest_args = narrowed(extra, selected)  # the same tests, fewer files to collect in the guest
    if args.dry_run:
        return dry_run(opts, _notice, print)
    live = sys.stderr if args.ktap else sys.stdout

    def stream(line: str) -> None:
        live.write(line)
        live.flush()

    summary, folder = execute(opts, _notice, stream)
    if args.ktap:
        sys.stdout.write((folder / "ktap.txt").read_text())
        sys.stdout.flush()
    d = summary.durations
    timing = f"fetch {d['fetch']:.1f}s, boot {d['boot']:.1f}s, suite {d['suite']:.1f}s, total {d['total']:.1f}s"
    err.print(f"{summary.release} ({summary.source}, {summary.accel}): {timing}", markup=False)
    if summary.detail and summary.verdict.value not in ("CONFORMS",):
        err.print(f"  {summary.detail}", markup=False)
    err.print(f"[bold]{escape(summary.verdict_line())}[/]  results: {escape(str(folder))}")
    return summary.exit_code()


def cmd_kernels_list(args: argparse.Namespace, cache_dir: Path) -> int:
    _, kernels = catalog.load(cache_dir, notice=_notice)
    rows = kernels if args.all else [k for k in kernels if k.flavour == args.flavour]
    if not args.all:
        newest: dict[str, object] = {}
        for k in rows:  # oldest first, so the last one per upstream version wins
            newest[k.upstream] = k
        rows = list(newest.values())
    table = Table(title=f"Debian kernels ({'all' if args.all else args.flavour})")
    for col in ("version", "package version", "release", "flavour", "suite", "cached"):
        table.add_column(col)
    for k in rows:
        table.add_row(k.upstream, k.debian_version, k.release, k.flavour, ", ".join(k.suites),
                      "yes" if fetch.is_cached(cache_dir, k) else "")
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    return 0


def cmd_matrix(args: argparse.Namespace, cache_dir: Path) -> int:
    from datetime import datetime

    from . import report
    from .matrix import DEFAULT_WORKERS, Plan, entries_from_ci, parse_entry, read_state, run, shard

    # Every option and kernel is checked before the first boot: a bad one fails now, not in a worker.
    check_timeout(args.timeout)
    workers = check_workers(DEFAULT_WORKERS if args.workers is None else args.workers)
    validate_options(RunOptions(spec=parse_spec("host"), cache_dir=cache_dir, cpus=args.cpus, timeout=args.timeout,
                                memory=args.memory, accel=args.accel))  # the checks of otns run; spec unused
    entries = entries_from_ci(args.from_ci) if args.from_ci else []
    entries += [parse_entry(s) for s in args.specs]
    if not entries:
        raise BadInput("no kernels: name some specs or use --from CI.yml")
    total = len(entries)
    entries = shard(entries, args.shard)
    if not entries:
        raise BadInput(f"shard {args.shard} of {total} kernels is empty")
    keyword = ["-k", args.keyword] if args.keyword else []
    if keyword:  # each guest gets only the files that hold the selected tests
        keyword = narrowed(keyword, check_pytest_args(keyword, "-k", cache_dir=cache_dir))
    to_fetch = check_kernels(entries, cache_dir, _notice)
    if to_fetch:
        _notice(f"otns: {len(to_fetch)} kernel(s) to fetch first: {', '.join(to_fetch)}")
    out = (args.out or Path("results") / f"matrix-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    plan = Plan(entries=entries, out=out, cache_dir=cache_dir, timeout=args.timeout, cpus=args.cpus,
                memory=args.memory, accel=args.accel, pytest_args=keyword)
    rc = run(plan, workers, Console(width=None if sys.stdout.isatty() else 160))
    if rc not in (0, 1) or not any((out / e.slug / "state.json").exists() for e in entries):
        # 1 is "some kernel not as expected"; anything else means the runner itself broke.
        last = (out / "matrix.log").read_text().strip().splitlines()[-1:] if (out / "matrix.log").exists() else []
        err.print(f"otns: error: the matrix runner stopped (pytest exit {rc}): {last[0] if last else ''} "
                  f"(log: {out / 'matrix.log'})", markup=False)
        return EXIT_INTERRUPTED if rc in (2, 130) and not last else 3
    kernels = report.load_matrix(out)
    Console(width=None if sys.stdout.isatty() else PIPE_WIDTH).print(report.terminal_grid(kernels))
    files = report.write_reports(kernels, out)
    states = [read_state(out / e.slug) for e in entries]
    bad = [e.kernel for e, s in zip(entries, states, strict=True) if not s.get("ok")]
    crashed = [e.kernel for e, s in zip(entries, states, strict=True) if s.get("verdict", "").startswith(("CRASHED", "HUNG"))]
    err.print(f"reports: {files['html']}  {files['markdown']}  {files['junit']}", markup=False)
    if not bad:
        err.print(f"[bold]ALL {len(entries)} KERNELS AS EXPECTED[/]")
        return 0
    err.print(f"[bold]{len(bad)} of {len(entries)} KERNELS NOT AS EXPECTED:[/] {escape(', '.join(bad))}")
    for e, st in zip(entries, states, strict=True):
        if not st.get("ok"):
            err.print(f"  {e.kernel} (expect {e.expect}): {_why_not(st, out / e.slug)}", markup=False)
    return 4 if crashed else 1


def _why_not(state: dict, folder: Path) -> str:
    """One line on why a matrix kernel did not go as expected, from its state.json and summary.json."""
    if not state:
        return "it never ran"
    verdict = state.get("verdict") or state.get("state", "?")
    try:
        detail = str(read_summary(folder / "summary.json").get("detail", ""))
    except (OSError, BadInput):
        detail = ""
    detail = state.get("detail") or detail
    if verdict.startswith("FEATURE ABSENT") and state.get("expect") == "conform":
        detail = f"marked conform, but {detail or 'the kernel lacks the feature'}"
    return f"{verdict}: {detail}" if detail else verdict


def cmd_report(args: argparse.Namespace) -> int:
    from . import report
    kernels = []
    for f in args.folders:
        kernels += [report.load_folder(f)] if report.is_result_folder(f) else report.load_matrix(f)
    if not kernels:
        raise BadInput("no result folders found")
    args.out.mkdir(parents=True, exist_ok=True)
    Console(width=None if sys.stdout.isatty() else PIPE_WIDTH).print(report.terminal_grid(kernels))
    files = report.write_reports(kernels, args.out.resolve())
    err.print(f"reports: {files['html']}  {files['markdown']}  {files['junit']}", markup=False)
    if args.kcidb:
        from . import kcidb
        kcidb.write(kernels, args.kcidb)
        err.print(f"KCIDB: {args.kcidb}", markup=False)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from . import report
    a, b = report.load_folder(args.a), report.load_folder(args.b)
    changed = report.diff(a, b)
    table = Table(title=escape(f"{len(changed)} tests differ: {a.name} ({a.summary.get('release')}) -> "
                               f"{b.name} ({b.summary.get('release')})"))
    for col in ("test", a.name, b.name):
        table.add_column(Text(col))
    for name, x, y in changed:
        table.add_row(Text(name), x or "-", y or "-")
    Console(width=None if sys.stdout.isatty() else PIPE_WIDTH).print(table)
    return 1 if changed else 0


_BEHAVIOUR = {"good": "old", "bad": "new", "skip": "skip"}


def cmd_bisect(args: argparse.Namespace, cache_dir: Path) -> int:
    from . import cause, hunt, report

    check_timeout(args.timeout)
    out = (args.out or Path("results") / "bisect").resolve()
    if args.changed:
        a, b = report.load_folder(args.changed[0]), report.load_folder(args.changed[1])
        tests = [name for name, _, _ in report.diff(a, b)]
        # The very kernels the results came from, not their specs again (debian:latest moves on).
        ends = [hunt.recorded_kernel(x.folder, x.summary) for x in (a, b)]
        flavour = hunt.common_flavour(ends, args.flavour)
        if not tests:
            err.print("no test differs between the two result folders: nothing to bisect", markup=False)
            return 0
        select = tests  # all the differing tests at once: one boot per kernel answers them all
    else:
        if not (args.test_id and args.good and args.bad):
            raise BadInput("bisect needs TEST_ID --good SPEC --bad SPEC (or --changed RESULTS_A RESULTS_B)")
        tests = [hunt.normalise_test_id(args.test_id)]
        flavour = args.flavour or "cloud"
        ends = [args.good, args.bad]
        select = tests
    check_test_ids(tests, cache_dir)  # a typo must not cost two downloads and two boots
    kernels = hunt.kernels_between(cache_dir, ends[0], ends[1], flavour, _notice)
    runner = hunt.Runner(cache_dir=cache_dir, out=out, timeout=args.timeout, select=select)
    good, bad = hunt.outcome_sets(args.find, args.bad_outcome)
    err.print(f"bisecting {len(tests)} test(s) over {len(kernels)} Debian kernels "
              f"{kernels[0].upstream} .. {kernels[-1].upstream} ({flavour}); "
              f"old behaviour: {'/'.join(sorted(good))}, new: {'/'.join(sorted(bad))}", markup=False)
    status = 0
    for test in tests:
        err.print(f"[bold]{escape(test)}[/]")
        res = hunt.bisect_test(runner, kernels, test, good, bad, lambda st: err.print(
            f"  {st.label:>10}  {st.outcome:<28} {_BEHAVIOUR[st.judged]:<5} {st.seconds:5.1f} s", markup=False))
        if res.error:
            err.print(f"  cannot bisect: {res.error}", markup=False)
            status = max(status, 1)
            continue
        lg, fb = kernels[res.last_good], kernels[res.first_bad]
        seen = ", ".join(f"{s.label}={s.outcome}" for s in sorted(res.steps, key=lambda s: s.index))
        err.print(f"  last with the old behaviour: {lg.upstream} ({lg.debian_version}); "
                  f"first with the new: {fb.upstream} ({fb.debian_version})", markup=False)
        err.print(f"  outcomes seen: {seen}", markup=False)
        if res.ambiguous:
            skipped = ", ".join(kernels[i].upstream for i in res.skipped_between)
            err.print(f"  AMBIGUOUS: {skipped} could not be tested and lies between them", markup=False)
            status = max(status, 1)
        entries = hunt.changelog_between(cache_dir, lg, fb)
        if not entries:
            err.print("  (the packages of the first new kernel carry no changelog)", markup=False)
            continue
        full = out / f"changelog-{lg.upstream}-to-{fb.upstream}.txt"
        full.write_text("\n".join(entries) + "\n")
        relevant = [ln.strip() for ln in entries if hunt.RELEVANT.search(ln)]
        err.print(f"  Debian changelog between them: {len(entries)} lines in {full}; "
                  f"{len(relevant)} about mounts and namespaces", markup=False)
        for line in cause.likely_causes(test, relevant):
            err.print(f"  {line}", markup=False)
        err.print("  all of them, in changelog order:", markup=False)
        for line in relevant[:40]:
            err.print(f"    {line}", markup=False)
    err.print(f"{runner.boots} boots for {len(kernels)} kernels; results in {out}", markup=False)
    return status


def cmd_build(args: argparse.Namespace, cache_dir: Path) -> int:
    from kernels import build

    tree = build.find_tree(args.tree, cache_dir)
    err.print(f"otns: building {tree} (log: {cache_dir / 'builds' / (tree.name + '.log')})", markup=False)
    built = build.build(tree, cache_dir)
    err.print(f"built {built.image} in {built.seconds:.0f} s; boot it with: otns run --kernel {tree}", markup=False)
    return 0


def _int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise BadInput(f"{what} takes comma-separated numbers, not {text!r}") from None


def cmd_bench(args: argparse.Namespace, cache_dir: Path) -> int:
    from . import bench
    from . import bench_report as br

    opts = bench.BenchOptions(spec=parse_spec(args.kernel, args.flavour), cache_dir=cache_dir, results=args.results,
                              mounts=_int_list(args.mounts, "--mounts"), workers=_int_list(args.workers, "--workers"),
                              methods=tuple(m for m in args.methods.split(",") if m), seconds=args.seconds,
                              min_iter=args.min_iter, max_iter=args.max_iter, cpus=args.cpus, memory=args.memory,
                              timeout=args.timeout, accel=args.accel, show_progress=err.is_terminal, check=args.check)
    bench.validate(opts)
    res = bench.execute(opts, _notice, lambda line: None)
    out = Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)
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
        return 1 if failed else 0
    methods = [m for m in br.METHODS if any(c.method == m for c in res.cells)]
    for p in sorted({c.workers for c in res.cells}):
        table = Table(title=f"{res.release} ({res.accel}), P={p}: per-namespace cost, median / p90 (µs)")
        for col in ("mounts", *(br.LABELS[m] for m in methods), "(a)/(b)"):
            table.add_column(col, justify="right")
        for mounts in sorted({c.mounts for c in res.cells if c.workers == p}):
            cells = [br.lookup(res.cells, m, mounts, p) for m in methods]
            r = br.ratio(res.cells, mounts, p)
            table.add_row(f"{mounts:,}", *(f"{c.median_us:,.0f} / {c.p90_us:,.0f}" if c else "-" for c in cells),
                          f"{r:.1f}" if r else "-")
        out.print(table)
    for m, why in res.raw.skipped.items():
        err.print(f"not measured: {br.LABELS.get(m, m)}: {why}", markup=False)
    err.print(f"{len(res.raw.samples)} namespaces timed in {res.seconds:.0f} s; results: {res.folder} "
              f"(bench.csv, bench.md, bench.png)", markup=False)
    err.print(f"[bold]verdict: {escape(res.verdict.line)}[/]")
    return 1 if res.verdict.holds is False else 0


GIT_BISECT_SKIP = 125


def cmd_bisect_run(args: argparse.Namespace, cache_dir: Path) -> int:
    """git bisect run's contract: 0 good, 1 bad, 125 skip; anything unexpected is a skip."""
    from kernels import build

    from . import hunt
    from .bisect import BAD, GOOD, SKIP, judge_outcome
    from .run import RunOptions, execute

    test = hunt.normalise_test_id(args.test_id)
    check_timeout(args.timeout)  # bad usage: exit 2, as for argparse's own errors, not a skip
    try:
        tree = build.find_tree(args.tree, cache_dir)
        if not args.no_build:
            build.build(tree, cache_dir)
        results = cache_dir / "bisect-run" / tree.name
        opts = RunOptions(spec=parse_spec(str(tree)), cache_dir=cache_dir, results=results, timeout=args.timeout,
                          pytest_args=["--color=no", test], show_progress=False)
        summary, folder = execute(opts, _notice, sys.stderr.write)
        outcomes = {t.name: t for t in report_tests(folder)}
        got = outcomes.get(test)
        good, bad = hunt.outcome_sets(args.find, args.bad_outcome)
        judged = judge_outcome(got.outcome.value if got else None, summary.verdict_line(), good, bad)
        if got is not None and got.outcome.value == "skip" and "lacks" in got.message and "skip" not in bad:
            judged = SKIP  # the kernel lacks the feature: not the question being asked
        err.print(f"otns bisect-run: {summary.release}: {test} -> {got.outcome.value if got else summary.verdict_line()}"
                  f" -> {judged}", markup=False)
        return {GOOD: 0, BAD: 1}.get(judged, GIT_BISECT_SKIP)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - git bisect run must never see 126-255 by accident
        err.print(f"otns bisect-run: skip: {e}", markup=False)
        return GIT_BISECT_SKIP


def report_tests(folder: Path):
    from .results import parse_junit
    try:
        return parse_junit(folder / "junit.xml")
    except FileNotFoundError:
        return []


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _sigterm)
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    cache_dir = (args.cache_dir or default_cache_dir()).resolve()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        if args.command == "run":
            return cmd_run(args, cache_dir)
        if args.command == "matrix":
            return cmd_matrix(args, cache_dir)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "diff":
            return cmd_diff(args)
        if args.command == "bisect":
            return cmd_bisect(args, cache_dir)
        if args.command == "build":
            return cmd_build(args, cache_dir)
        if args.command == "bench":
            return cmd_bench(args, cache_dir)
        if args.command == "mutate":
            from .mutate import command
            return command(args, cache_dir, err)
        if args.command == "bisect-run":
            return cmd_bisect_run(args, cache_dir)
        if args.kcommand is None:
            raise BadInput("otns kernels needs a subcommand: otns kernels list [--all] [--flavour cloud|amd64]")
        return cmd_kernels_list(args, cache_dir)
    except OtnsError as e:
        err.print(f"otns: error: {e}", markup=False)
        return e.exit_code
    except KeyboardInterrupt:
        err.print("otns: interrupted; the guest was stopped", markup=False)
        return EXIT_INTERRUPTED
    except OSError as e:
        err.print(f"otns: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), markup=False)
        return EXIT_USAGE if e.errno in (2, 13, 20, 21) else 3


if __name__ == "__main__":
    sys.exit(main())
