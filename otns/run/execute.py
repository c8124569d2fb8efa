"""`otns run`: kernel spec -> kernel on disk -> VM -> results -> report, for one kernel."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from base import cachedir, commands
from base.errors import EXIT_OK, BadInput, InfraError
from base.locks import locked
from conformance import kconfig
from kernels import catalog, provenance
from kernels.arch import host
from kernels.image import inspect_image
from kernels.local import LocalKernel
from kernels.resolve import plan, resolve
from kernels.spec import KernelSpec, Kind
from vm import accel as vm_accel
from vm import boot_times, progress, pycache, virtiofsd
from vm.boot import (
    GUEST_RESULTS,
    USERSPACE_MARK,
    BootRequest,
    BootResult,
    BootStatus,
    Capped,
    boot,
    pump,
    qemu_command,
    shell_join,
    vng_command,
)
from vm.console import booted_banner

from ..options import VmSettings, default_cpus
from ..paths import REPO_ROOT
from ..results import files as resultfiles
from ..results import guest as guestfiles
from ..results.absence import Policy, State
from ..results.absence import judge as judge_features
from ..results.files import CONSOLE, PROGRESS
from ..results.model import Outcome, RunSummary, TestResult, counts
from .judge import judge
from .preflight import PYTEST_USAGE_ERROR, usage_message


@dataclass
class RunOptions:
    spec: KernelSpec
    cache_dir: Path
    results: Path | None = None
    vm: VmSettings = field(default_factory=VmSettings)
    pytest_args: list[str] = field(default_factory=list)
    dry_run: bool = False
    show_progress: bool = True
    on_state: Callable[[str], object] | None = None  # fetching, booting, running: for live tables
    absence: Policy = field(default_factory=Policy)  # which absent features are acceptable
    keep: tuple[str, ...] = ()  # files the caller already wrote into the results folder (matrix: state.json)
    guest_init: str = "otns"  # the guest's PID 1: otns's (vm/guest_init.sh) or virtme-ng's own
    gcov: bool = False  # keep the kernel's gcov counters of the suite (otns coverage)
    guest_inputs: dict[str, bytes] = field(default_factory=dict)  # files in the guest's folder when it starts
    on_phase: Callable[[str, float], object] | None = None  # each phase of the boot, with its time (vm.boot)


def resolve_kernel(opts: RunOptions, notice: Callable[[str], object]) -> LocalKernel:
    if opts.spec.kind is Kind.TREE:
        check_tree_image(Path(opts.spec.value), notice)
    return resolve(opts.spec, opts.cache_dir, notice, show_progress=opts.show_progress)


def check_tree_image(tree: Path, notice: Callable[[str], object]) -> None:
    """Refuse a tree whose image does not carry its vmlinux; warn when its sources changed since.

    Either way the run would judge a kernel other than the one the tree's code makes.
    """
    image = tree / host().image
    if not (tree / "vmlinux").is_file():
        notice(f"otns: warning: {tree} has no vmlinux, so otns cannot check what {image.name} holds")
    else:
        try:
            provenance.prove(tree)
        except provenance.StaleImage as e:
            raise BadInput(f"{e}; rebuild it: otns build {tree}") from None
    changed = provenance.newer_source(tree, image)
    if changed is not None:
        notice(f"otns: warning: {changed} changed after {image} was built: the image may not hold the "
               f"tree's code (otns build {tree})")


def not_the_image(kernel: LocalKernel, console: str) -> str:
    """Why the kernel that booted is not the image otns handed QEMU, or "" when it is (or cannot tell)."""
    banner = booted_banner(console)
    if kernel.image is None or banner is None:
        return ""
    header = inspect_image(kernel.image).version
    if provenance.same_build(header, banner):
        return ""
    return f"the kernel that booted is not {kernel.image}: it says {banner[:300]!r}, the image's header {header!r}"


def tree_identity(tree: Path) -> dict | None:
    """A built tree's git facts (KCIDB's checkout: repository, commit, branch), as they were when
    it ran; None when it is not a git checkout or git cannot tell."""
    if not (tree / ".git").exists():
        return None
    facts = {"name": tree.name}
    for key, args in (("git_commit_hash", ["rev-parse", "HEAD"]),
                      ("git_repository_url", ["remote", "get-url", "origin"]),
                      ("git_repository_branch", ["symbolic-ref", "--short", "-q", "HEAD"])):
        try:
            got = commands.run(["git", "-C", str(tree), *args], f"read {tree}'s git {key}", 20)
        except InfraError:
            return None  # no git here
        value = got.stdout.strip() if isinstance(got.stdout, str) else ""
        if got.returncode == 0 and value and "\n" not in value:
            facts[key] = value[:300]
    return facts


def guest_command(results: Path, pytest_args: list[str], announce: bool = False, gcov: bool = False) -> list[str]:
    # -S: see vm.guest.add_site_packages
    return [sys.executable, "-S", "-m", "vm.guest", "--results", str(results),
            *(["--announce"] if announce else []), *(["--gcov"] if gcov else []), "--", *pytest_args]


def _guest_shell(results: Path, pytest_args: list[str], cache_dir: Path, gcov: bool = False) -> str:
    # The checkout is read-only in the guest: no bytecode files written; those the host
    # compiled are read (vm.pycache).
    prefix = pycache.guest_prefix(cache_dir)
    env = f"PYTHONPYCACHEPREFIX={shell_join([str(prefix)])} " if prefix else ""
    # Where the suite finds the options of the kernel's config it asks about (conformance.kconfig).
    env += f"{kconfig.ENV}={shell_join([str(results / kconfig.FILE)])} "
    return f"cd {shell_join([str(REPO_ROOT)])} && PYTHONDONTWRITEBYTECODE=1 {env}exec " + shell_join(
        guest_command(results, pytest_args, announce=True, gcov=gcov))


def require_qemu() -> None:
    """Without QEMU, vng fails before any kernel starts: say so, not that a guest ran."""
    if shutil.which(host().qemu) is None:
        raise InfraError(f"{host().qemu} is not on PATH: QEMU boots the guest (scripts/setup installs it)")


def _inputs(opts: RunOptions, kernel: LocalKernel) -> dict[str, bytes]:
    """The files the guest finds in its folder: the caller's, and the options of the kernel's
    config that the suite's skips are checked against (none when the config is unknown)."""
    inputs = dict(opts.guest_inputs)
    if kernel.config is not None:
        inputs[kconfig.FILE] = kconfig.render(kernel.config)
    return inputs


def boot_request(opts: RunOptions, kernel: LocalKernel, results: Path, notice: Callable[[str], object],
                 stream: Callable[[str], object] | None, vng_home: Path | None = None) -> BootRequest:
    transport = kernel.transport()  # BadInput now, before booting, when the config says it cannot work
    require_qemu()
    if opts.guest_init == "virtme-ng" and kernel.config is not None and kernel.config.get("CONFIG_ACPI") != "y":
        # virtme-ng's init ends the guest with a power-off; without ACPI that is a halt, and
        # QEMU would wait for the timeout (otns's init reboots instead: docs/environment.md).
        raise BadInput(f"{kernel.release} has no ACPI, so virtme-ng's init could not stop it: "
                       "use --guest-init otns (the default)")
    daemon = None
    if transport != "9p":
        if opts.dry_run:  # fetch nothing: use a virtiofsd that is there, or say one would be fetched
            daemon = virtiofsd.ready(opts.cache_dir)
            if daemon is None:
                notice("otns: a real run would first unpack virtiofsd from Debian into the cache")
        else:
            with locked(opts.cache_dir / cachedir.TOOLS_LOCK):
                apt = catalog.PrivateApt(opts.cache_dir / cachedir.APT)
                daemon = virtiofsd.ensure(opts.cache_dir, apt)
    # Until the accelerator is known (below), the request is the KVM probe's, which boots under KVM.
    command = _guest_shell(GUEST_RESULTS, opts.pytest_args, opts.cache_dir, opts.gcov)
    req = BootRequest(kernel=kernel, command=command, rwdir=results, console_log=results / CONSOLE,
                      cpus=opts.vm.cpus or default_cpus("kvm"), memory=opts.vm.memory, timeout=opts.vm.timeout,
                      transport=transport, virtiofsd=daemon,
                      vng_home=vng_home or opts.cache_dir / cachedir.VNG_HOME, stream=stream,
                      guest_init=opts.guest_init, inputs=_inputs(opts, kernel), phase=opts.on_phase)
    if opts.vm.accel == "auto":
        req.accel = "kvm" if (not opts.dry_run and vm_accel.kvm_usable(opts.cache_dir, req, notice)) else "tcg"
    else:
        req.accel = opts.vm.accel
    req.cpus = opts.vm.cpus or default_cpus(req.accel)
    known = boot_times.typical(opts.cache_dir, req.accel)
    req.typical_boot = known[0] if known else None
    return req


def dry_run(opts: RunOptions, notice: Callable[[str], object], out: Callable[[str], object]) -> int:
    """Print what a run would do. Nothing changes but the cache's index: no download, no
    results folder (vng --dry-run wants its --rwdir to exist: it gets a scratch one, named
    back to the real folder in what is printed)."""
    planned = plan(opts.spec, opts.cache_dir, notice)
    kernel = planned.kernel
    if kernel is None:
        assert planned.debian is not None  # only a Debian kernel is ever to fetch
        chosen, pkgs = planned.debian, planned.debian.packages()
        out(f"would fetch Debian {chosen.debian_version} {chosen.flavour} ({chosen.release}): "
            f"{', '.join(p.name for p in pkgs)}, {sum(p.size for p in pkgs) / 1e6:.0f} MB")
        out("(the vng and QEMU commands are shown once the kernel is in the cache)")
        return EXIT_OK
    if kernel.is_host:
        out(shell_join(guest_command(Path("RESULTS"), opts.pytest_args)))
        return EXIT_OK
    folder = (opts.results or Path("results") / f"{kernel.release}-DRYRUN").resolve()
    scratch = Path(tempfile.mkdtemp(prefix="otns-dry-run-"))
    try:
        (scratch / "rw").mkdir()
        req = boot_request(opts, kernel, scratch / "rw", notice, None, vng_home=scratch / "home")
        if opts.vm.accel == "auto":
            req.accel = "kvm" if vm_accel.cached_verdict(opts.cache_dir) else "tcg"
        qemu = qemu_command(req)
        req.rwdir, req.console_log = folder, folder / CONSOLE
        req.command = _guest_shell(GUEST_RESULTS, opts.pytest_args, opts.cache_dir, opts.gcov)
        out(shell_join(vng_command(req)))
        out(qemu)  # as vng would run it: through a private stage of safe-named links (vm.vngsafe)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return EXIT_OK


def _run_host(opts: RunOptions, results: Path, stream: Callable[[str], object]) -> BootResult:
    if os.geteuid() != 0:
        raise BadInput("--kernel host runs the suite on this machine and needs root")
    start = time.monotonic()
    proc = subprocess.Popen(guest_command(results, opts.pytest_args), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    output = Capped()
    # Read by a thread, so the timeout holds even when the suite prints nothing for a long time.
    reader = threading.Thread(target=pump, args=(proc.stdout, output, stream, None), daemon=True)
    reader.start()
    try:
        proc.wait(timeout=opts.vm.timeout)
        status = BootStatus.EXITED
    except subprocess.TimeoutExpired:
        status = BootStatus.HUNG
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
        reader.join(timeout=5)
    return BootResult(status, proc.returncode, time.monotonic() - start, "", "".join(output), [], userspace_at=0.0)


def execute(opts: RunOptions, notice: Callable[[str], object], stream: Callable[[str], object]) -> tuple[RunSummary, Path]:
    t0 = time.monotonic()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    state = opts.on_state or (lambda s: None)
    state("fetching")
    kernel = resolve_kernel(opts, notice)
    if not kernel.is_host:
        require_qemu()  # before a results folder is made for a run that cannot boot
    # Held until the summary is written: a second run on this folder is refused, not let empty it.
    with resultfiles.results_folder(opts.results, kernel.release, keep=opts.keep, pid=True) as results:
        return _run_in(results, opts, kernel, t0, notice, stream, started), results


def _run_in(results: Path, opts: RunOptions, kernel: LocalKernel, t0: float, notice: Callable[[str], object],
            stream: Callable[[str], object], started: str) -> RunSummary:
    state = opts.on_state or (lambda s: None)
    seen_output: list[bool] = []

    def watch(line: str) -> None:
        if not seen_output:
            seen_output.append(True)
            state("running")
        stream(line)
    state("booting")
    if kernel.is_host:
        res = _run_host(opts, results, watch)
        accel = "none"
    else:
        req = boot_request(opts, kernel, results, notice, watch)
        accel = req.accel
        res = boot(req, notice)
        if res.userspace_seconds is not None and res.status in (BootStatus.EXITED, BootStatus.HUNG):
            boot_times.remember(opts.cache_dir, accel, res.userspace_seconds)
    if res.status is BootStatus.CRASHED and "Unable to mount root fs" in res.console:
        raise BadInput(f"{kernel.release} cannot mount the host's root in the guest: it has neither "
                       f"virtiofs nor 9p usable (console: {results / CONSOLE})")
    if res.log_error:
        notice(f"otns: the console log is incomplete: {res.log_error}")
    files = guestfiles.load(results)  # the guest's share was swept before its files were moved here (vm.share)
    guest, tests = files.guest, files.tests
    if guest.get("pytest_exit") == PYTEST_USAGE_ERROR:
        # pytest in the guest refused its arguments: bad usage, not a boot failure.
        after = res.console.split(USERSPACE_MARK, 1)[-1] + res.guest_output
        raise BadInput(f"pytest in the guest refuses the arguments: {usage_message(after)} "
                       f"(console: {results / CONSOLE})")
    features = files.features
    release = guest.get("release", kernel.release)
    states = judge_features(features.get("groups"), str(features.get("release") or release)[:256], opts.absence)
    # No JUnit XML (the guest hung or crashed mid-way): keep what it streamed test by test.
    streamed = progress.read(results / PROGRESS) if tests is None else None
    other_kernel = "" if kernel.is_host else not_the_image(kernel, res.console)
    judged = judge(res, tests, states, guest.get("pytest_exit"), files.problem, other_kernel,
                   lambda: boot_times.describe(opts.cache_dir, accel), streamed)
    verdict, detail = judged.verdict, judged.detail
    suite = guest.get("suite_seconds")
    if suite is None:  # the guest never finished: its suite began when it announced itself
        suite = res.seconds - res.userspace_at if res.userspace_at is not None else 0.0
    suite = float(suite)
    boot_s = 0.0 if kernel.is_host else max(res.seconds - suite, 0.0)
    if tests is None and streamed is not None:
        tests = [TestResult(f.test, Outcome(f.outcome), f.seconds, f.message) for f in streamed.finished]
    durations = {"fetch": kernel.fetch_seconds, "vm": res.seconds, "boot": boot_s,
                 "suite": suite, "total": time.monotonic() - t0}
    summary = RunSummary(kernel=str(opts.spec), release=release, source=kernel.source,
                         accel=accel, verdict=verdict, counts=counts(tests or []), durations=durations,
                         feature_present=_open_tree_present(states), detail=detail,
                         attempts=res.attempts, crash_reports=res.reports, features=states,
                         debian=kernel.extra.get("debian"), running=streamed.running if streamed else [],
                         boot_status=res.status, harness=judged.harness, run_id=str(uuid.uuid4()), started=started,
                         tree=tree_identity(Path(opts.spec.value)) if opts.spec.kind is Kind.TREE else None)
    resultfiles.write_run(results, summary, tests or [], detail if streamed else "", res.console)
    return summary


def _open_tree_present(states) -> bool | None:
    s = next(s for s in states if s.name == "open_tree_ns")
    return None if s.state is State.UNPROBED else s.state in (State.PRESENT, State.BROKEN)
