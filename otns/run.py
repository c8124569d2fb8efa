"""`otns run`: kernel spec -> kernel on disk -> VM -> results -> report, for one kernel."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kernels import catalog, fetch
from kernels.debian import UnknownVersion, resolve
from kernels.local import LocalKernel
from kernels.spec import KernelSpec, local_kernel
from vm import accel as vm_accel
from vm import virtiofsd
from vm.boot import GUEST_RESULTS, BootRequest, BootResult, boot, qemu_command, shell_join, vng_command
from vm.vngsafe import memory_mib

from . import guestfiles, safefs
from .errors import BadInput
from .paths import REPO_ROOT
from .results import RunSummary, Verdict, counts, decide, to_ktap, write_atomic

FEATURE = "open_tree_namespace"


@dataclass
class RunOptions:
    spec: KernelSpec
    cache_dir: Path
    results: Path | None = None
    cpus: int = 2
    memory: str = "1G"
    timeout: float = 300.0
    accel: str = "auto"  # auto | kvm | tcg
    pytest_args: list[str] = field(default_factory=list)
    dry_run: bool = False
    show_progress: bool = True
    on_state: Callable[[str], None] | None = None  # fetching, booting, running: for live tables
    keep: tuple[str, ...] = ()  # files the caller already wrote into the results folder (matrix: state.json)


def resolve_kernel(opts: RunOptions, notice: Callable[[str], None]) -> LocalKernel:
    if opts.spec.kind != "debian":
        return local_kernel(opts.spec)
    start = time.monotonic()
    apt, kernels = catalog.load(opts.cache_dir, notice=notice)
    try:
        chosen = resolve(kernels, opts.spec.value, opts.spec.flavour)
    except UnknownVersion as e:
        raise BadInput(str(e)) from None
    if not fetch.is_cached(opts.cache_dir, chosen):
        notice(f"otns: fetching Debian {chosen.debian_version} {chosen.flavour} ({chosen.release})")
    local = fetch.fetch(opts.cache_dir, apt, chosen, show_progress=opts.show_progress)
    local.fetch_seconds = time.monotonic() - start
    return local


def results_folder(opts: RunOptions, kernel: LocalKernel) -> Path:
    if opts.results is not None:
        folder = opts.results
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = Path("results") / f"{kernel.release}-{stamp}-{os.getpid()}"
    folder = safefs.prepare_results(folder.resolve(), keep=opts.keep)
    safefs.mark_incomplete(folder)
    return folder


def guest_command(results: Path, pytest_args: list[str], announce: bool = False) -> list[str]:
    # -S: see vm.guest.add_site_packages
    return [sys.executable, "-S", "-m", "vm.guest", "--results", str(results),
            *(["--announce"] if announce else []), "--", *pytest_args]


def _guest_shell(results: Path, pytest_args: list[str]) -> str:
    # The checkout is read-only in the guest: no bytecode files.
    return f"cd {shell_join([str(REPO_ROOT)])} && PYTHONDONTWRITEBYTECODE=1 exec " + shell_join(
        guest_command(results, pytest_args, announce=True))


def _tools_lock(cache_dir: Path):
    cache_dir.mkdir(parents=True, exist_ok=True)
    f = open(cache_dir / "tools.lock", "w")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def boot_request(opts: RunOptions, kernel: LocalKernel, results: Path, notice: Callable[[str], None],
                 stream: Callable[[str], None] | None) -> BootRequest:
    transport = kernel.transport()  # BadInput now, before booting, when the config says it cannot work
    prefix: list[str] = []
    if transport != "9p":
        with _tools_lock(opts.cache_dir):
            apt = catalog.PrivateApt(opts.cache_dir / "apt")
            folder = virtiofsd.ensure(opts.cache_dir, apt)
        if folder:
            prefix.append(str(folder))
    req = BootRequest(kernel=kernel, command=_guest_shell(GUEST_RESULTS, opts.pytest_args), rwdir=results,
                      console_log=results / "console.log", cpus=opts.cpus, memory=opts.memory,
                      timeout=opts.timeout, transport=transport, path_prefix=prefix,
                      vng_home=opts.cache_dir / "vng-home", stream=stream)
    if opts.accel == "auto":
        req.accel = "kvm" if (not opts.dry_run and vm_accel.kvm_usable(opts.cache_dir, req, notice)) else "tcg"
    else:
        req.accel = opts.accel
    return req


def dry_run(opts: RunOptions, kernel: LocalKernel, out: Callable[[str], None]) -> int:
    if kernel.is_host:
        out(shell_join(guest_command(Path("RESULTS"), opts.pytest_args)))
        return 0
    folder = opts.results or Path("results") / f"{kernel.release}-DRYRUN"
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        req = boot_request(opts, kernel, folder.resolve(), lambda m: None, None)
        if opts.accel == "auto":
            req.accel = "kvm" if vm_accel.cached_verdict(opts.cache_dir) else "tcg"
        out(shell_join(vng_command(req)))
        out(qemu_command(req))
    finally:
        if created:
            folder.rmdir()
    return 0


def _run_host(opts: RunOptions, results: Path, stream: Callable[[str], None]) -> BootResult:
    if os.geteuid() != 0:
        raise BadInput("--kernel host runs the suite on this machine and needs root")
    start = time.monotonic()
    proc = subprocess.Popen(guest_command(results, opts.pytest_args), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line)
            stream(line)
        proc.wait(timeout=opts.timeout)
        status = "exited"
    except subprocess.TimeoutExpired:
        status = "hung"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    return BootResult(status, proc.returncode, time.monotonic() - start, "", "".join(lines), [])


def execute(opts: RunOptions, notice: Callable[[str], None], stream: Callable[[str], None]) -> tuple[RunSummary, Path]:
    t0 = time.monotonic()
    state = opts.on_state or (lambda s: None)
    state("fetching")
    kernel = resolve_kernel(opts, notice)
    results = results_folder(opts, kernel)
    seen_output = []

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
    if res.status == "crashed" and "Unable to mount root fs" in res.console:
        raise BadInput(f"{kernel.release} cannot mount the host's root in the guest: it has neither "
                       f"virtiofs nor 9p usable (console: {results / 'console.log'})")
    files = guestfiles.load(results, FEATURE)
    if not kernel.is_host:
        safefs.defuse(results)  # no device node, fifo, link or set-id file of the guest's stays
    guest, feat, tests = files.guest, files.feature, files.tests
    verdict = decide(tests, feat["present"] if feat else None, res.status)
    if verdict is Verdict.NO_BOOT and res.status == "exited" and guest.get("pytest_exit") is None:
        detail = f"the guest ran but the suite left no results (exit {res.exit_code})"
    elif verdict is Verdict.NO_BOOT:
        detail = res.reason
    elif verdict in (Verdict.CRASHED, Verdict.HUNG):
        detail = res.reason
    elif feat:
        detail = feat["detail"]
    else:
        detail = ""
    if files.problem and verdict not in (Verdict.CRASHED, Verdict.HUNG):
        verdict, detail = Verdict.HARNESS_ERROR, files.problem
    suite = float(guest.get("suite_seconds", 0.0))
    boot_s = 0.0 if kernel.is_host else max(res.seconds - suite, 0.0)
    durations = {"fetch": kernel.fetch_seconds, "vm": res.seconds, "boot": boot_s,
                 "suite": suite, "total": time.monotonic() - t0}
    summary = RunSummary(kernel=str(opts.spec), release=guest.get("release", kernel.release), source=kernel.source,
                         accel=accel, verdict=verdict, counts=counts(tests or []), durations=durations,
                         feature_present=feat["present"] if feat else None, detail=detail,
                         attempts=res.attempts, crash_reports=res.reports)
    if res.reports:
        write_atomic(results / "crash.txt", "\n\n".join(res.reports) + "\n")
    if res.status == "hung" and res.console:
        write_atomic(results / "console-tail.txt", "\n".join(res.console.splitlines()[-60:]) + "\n")
    write_atomic(results / "ktap.txt", to_ktap(tests or []))
    write_atomic(results / "summary.json", json.dumps(summary.to_json(), indent=1) + "\n")
    safefs.mark_complete(results)
    return summary, results


def validate_options(opts: RunOptions) -> None:
    """Fail early, before fetching anything, on options that cannot work."""
    if opts.accel not in ("auto", "kvm", "tcg"):
        raise BadInput(f"unknown --accel {opts.accel!r}: choose auto, kvm or tcg")
    if opts.cpus < 1:
        raise BadInput("--cpus must be at least 1")
    if opts.timeout <= 0:
        raise BadInput("--timeout must be positive")
    memory_mib(opts.memory)

