"""`otns bench`: kernel -> VM running the compiled helper -> raw samples -> CSV, table, plot, verdict.

The timed loop is C (otns/bench/nsbench.c), compiled here with the system compiler and cached by the
hash of its source; Python only starts it and reads what it wrote.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from base import cachedir, commands, safefs
from base.errors import EXIT_CRASH, EXIT_INFRA, BadInput, InfraError, OtnsError
from kernels.spec import KernelSpec
from vm import share
from vm.boot import BootRequest

from ..options import VmSettings
from ..results import files as resultfiles
from ..results.files import BENCH_RAW, BENCH_STDERR, CONSOLE
from ..run.execute import RunOptions, boot_request, resolve_kernel
from . import report as br

SOURCE = Path(__file__).with_name("nsbench.c")
DEFAULT_MOUNTS = (30, 100, 300, 1000, 3000, 10000)
# Its machine: two vCPUs (the workers default to 1 and the guest's CPUs), more memory and time than a suite run.
BENCH_VM = VmSettings(cpus=2, memory="2G", timeout=1800.0)
# raw.txt comes from the guest: read at most this much.
RAW_MAX = 256 * 1024 * 1024


COMPILE_TIMEOUT = 120.0  # compiling otns/bench/nsbench.c takes a second


class GuestFailed(OtnsError):
    exit_code = EXIT_INFRA


class KernelCrashed(OtnsError):
    exit_code = EXIT_CRASH


@dataclass
class BenchOptions:
    spec: KernelSpec
    cache_dir: Path
    results: Path | None = None
    mounts: tuple[int, ...] = DEFAULT_MOUNTS
    workers: tuple[int, ...] = ()  # empty: 1 and the guest's CPUs
    methods: tuple[str, ...] = br.METHODS
    seconds: float = 1.0  # time budget per worker and cell, after min_iter
    min_iter: int = 5
    max_iter: int = 200
    check: int = 0  # >0: the correctness mode, this many namespaces per method
    vm: VmSettings = BENCH_VM
    show_progress: bool = True
    rounds: int = 3  # at most this many measuring rounds while the verdict is too noisy to tell
    progress: Callable[[str], None] | None = None  # the boot's phases, then the size and method measured


@dataclass
class BenchResult:
    folder: Path
    raw: br.Raw
    cells: list[br.Cell]
    verdict: br.Verdict
    release: str
    accel: str
    seconds: float


def validate(opts: BenchOptions) -> None:
    if not opts.mounts or any(m < 1 for m in opts.mounts):
        raise BadInput("--mounts takes positive counts, e.g. 30,1000,10000")
    if max(opts.mounts) > 100_000:
        raise BadInput("--mounts above 100000 exceeds the kernel's default fs.mount-max")
    if any(p < 1 or p > 16 for p in opts.workers):
        raise BadInput("--workers takes counts from 1 to 16")
    unknown = set(opts.methods) - set(br.METHODS)
    if unknown:
        raise BadInput(f"unknown method {', '.join(sorted(unknown))}: choose from {', '.join(br.METHODS)}")
    if opts.seconds <= 0 or opts.min_iter < 1 or opts.max_iter < opts.min_iter:
        raise BadInput("need --seconds > 0 and 1 <= --min-iter <= --max-iter")


def compile_helper(cache_dir: Path) -> Path:
    """cc -O2 otns/bench/nsbench.c, once per source and compiler; atomic, so never half-written."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        raise BadInput("otns bench needs a C compiler: install gcc (scripts/setup does)")
    version = commands.run([cc, "--version"], "ask the C compiler its version", timeout=COMPILE_TIMEOUT).stdout
    key = hashlib.sha256(SOURCE.read_bytes() + version.encode()).hexdigest()[:16]
    out = cache_dir / cachedir.BENCH / f"nsbench-{key}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".nsbench-", dir=out.parent)
    os.close(fd)
    try:
        r = commands.run([cc, "-O2", "-Wall", "-o", tmp, str(SOURCE)], "compile the bench helper",
                         timeout=COMPILE_TIMEOUT)
        if r.returncode != 0:
            first = (r.stderr.strip().splitlines() or ["no output"])[0]
            raise InfraError(f"cannot compile the bench helper with {cc}: {first}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def helper_args(opts: BenchOptions, cpus: int) -> list[str]:
    workers = opts.workers or tuple(sorted({1, cpus}))
    args = ["--mounts", ",".join(map(str, opts.mounts)), "--workers", ",".join(map(str, workers)),
            "--methods", ",".join(opts.methods), "--seconds", str(opts.seconds),
            "--min-iter", str(opts.min_iter), "--max-iter", str(opts.max_iter)]
    return args + (["--check", str(opts.check)] if opts.check else [])


def merge(a: br.Raw, b: br.Raw) -> br.Raw:
    """One round's samples added to the earlier rounds' (skips and mounts from the latest)."""
    return br.Raw(samples=a.samples + b.samples, skipped={**a.skipped, **b.skipped}, mounts={**a.mounts, **b.mounts},
                  cpus=b.cpus or a.cpus, checks=a.checks + b.checks)


def execute(opts: BenchOptions, notice: Callable[[str], object], stream: Callable[[str], object]) -> BenchResult:
    t0 = time.monotonic()
    helper = compile_helper(opts.cache_dir)
    tell = opts.progress or (lambda m: None)
    run_opts = RunOptions(spec=opts.spec, cache_dir=opts.cache_dir, vm=opts.vm, show_progress=opts.show_progress,
                          on_phase=lambda what, s: tell(f"boot: {what} ({s:.1f} s)"))
    kernel = resolve_kernel(run_opts, notice)
    with resultfiles.results_folder(opts.results, f"bench-{kernel.release}", incomplete=False) as folder:
        raw, accel, release = _measure(opts, run_opts, kernel, helper, folder, notice, stream)
        cs = br.cells(raw)
        result = br.verdict(cs, raw)
        rounds = 1
        # Noise (another VM on the same cores, a host hiccup) disturbs some rounds: measure again
        # and decide on all samples together rather than on one unlucky round.
        while result.noisy and not raw.checks and rounds < opts.rounds:
            rounds += 1
            notice(f"otns bench: {result.line.split(':')[0]} after {rounds - 1} round(s): measuring round {rounds}")
            more, _, _ = _measure(opts, run_opts, kernel, helper, folder, notice, stream)
            raw = merge(raw, more)
            cs = br.cells(raw)
            result = br.verdict(cs, raw)
        title = f"otns bench on {release} ({accel}, {raw.cpus or '?'} CPUs)"
        if raw.checks:
            resultfiles.write_checks(folder, raw.checks)
        else:
            png = resultfiles.write_bench(folder, br.to_csv(raw),
                                          br.markdown(cs, raw, title) + f"\nRounds: {rounds}\n\nVerdict: {result.line}\n")
            if cs:
                br.plot(cs, png, title)
        return BenchResult(folder, raw, cs, result, release, accel, time.monotonic() - t0)


def _measure(opts: BenchOptions, run_opts: RunOptions, kernel, helper: Path, folder: Path,
             notice: Callable[[str], object], stream: Callable[[str], object]) -> tuple[br.Raw, str, str]:
    """One round: boot (or the host), run the helper, parse what it wrote."""
    from vm.boot import GUEST_RESULTS

    raw_path, err_path = folder / BENCH_RAW, folder / BENCH_STDERR
    raw_path.unlink(missing_ok=True)
    req = None if kernel.is_host else boot_request(run_opts, kernel, folder, notice, stream)
    cpus = (os.cpu_count() or 1) if req is None else req.cpus
    cmd = shlex.join([str(helper), *helper_args(opts, cpus)])
    there = folder if kernel.is_host else GUEST_RESULTS  # the folder as the helper sees it
    raw_q, err_q = shlex.quote(str(there / BENCH_RAW)), shlex.quote(str(there / BENCH_STDERR))
    # The helper writes to a temporary name, renamed when it finishes: a killed run leaves no raw.txt.
    shell = f"{cmd} > {raw_q}.part 2> {err_q} && mv {raw_q}.part {raw_q}"
    # What the helper has written so far (its output file grows size by size): said every few seconds.
    part = Path(f"{raw_path}.part") if kernel.is_host else share.folder(folder) / f"{BENCH_RAW}.part"
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_part, args=(part, opts.progress, stop), daemon=True)
    watcher.start()
    try:
        return _measure_once(opts, req, kernel, shell, folder, notice, raw_path, err_path)
    finally:
        stop.set()
        watcher.join(timeout=2)


WATCH_EVERY = 5.0


def where_now(text: str) -> str:
    """From the helper's output so far: the size it is at, the method it last timed, the samples."""
    size, method, samples = "", "", 0
    for line in text.splitlines():
        if line.startswith("#mounts "):
            size = line.split()[1]
        elif line and not line.startswith(("#", "{")):
            method = line.split(",", 1)[0]
            samples += 1
    if not size:
        return ""
    return f"bench: {size} mounts" + (f", method {method}, {samples} samples so far" if method else "")


def _watch_part(part: Path, progress: Callable[[str], object] | None, stop: threading.Event) -> None:
    said = ""
    while progress is not None and not stop.wait(WATCH_EVERY):
        try:
            text = safefs.read_text(part, 16 << 20)  # a live look: a larger file is just not shown
        except (OSError, safefs.BadFile):
            continue
        now = where_now(text)
        if now and now != said:
            said = now
            progress(now)


def _measure_once(opts: BenchOptions, req: BootRequest | None, kernel, shell: str, folder: Path,
                  notice: Callable[[str], object], raw_path: Path, err_path: Path) -> tuple[br.Raw, str, str]:
    """req: the boot's request, None on the host."""
    from vm.boot import BootStatus, boot

    code: int | None
    if req is None:
        if os.geteuid() != 0:
            raise BadInput("--kernel host runs the bench on this machine and needs root")
        try:
            proc = subprocess.run(["sh", "-c", shell], timeout=opts.vm.timeout)
        except subprocess.TimeoutExpired:
            raise KernelCrashed(f"the bench helper on the host did not finish within the {opts.vm.timeout:g} s "
                                f"timeout") from None
        status, code, accel, release = BootStatus.EXITED, proc.returncode, "none", os.uname().release
    else:
        req.command = shell
        res = boot(req, notice)
        status, code, accel, release = res.status, res.exit_code, req.accel, kernel.release
        if res.status in (BootStatus.CRASHED, BootStatus.HUNG):
            raise KernelCrashed(f"{kernel.release}: {res.reason} (console: {folder / CONSOLE})")
        if res.status is BootStatus.NO_BOOT:
            raise GuestFailed(f"{kernel.release}: {res.reason} (console: {folder / CONSOLE})")
        if res.unsafe:  # swept before its files were moved into the folder (vm.share)
            raise GuestFailed(f"the guest left {safefs.describe_unsafe(res.unsafe)}; removed or made safe")
    Path(f"{raw_path}.part").unlink(missing_ok=True)
    if status is not BootStatus.EXITED or code != 0 or not raw_path.is_file():
        try:
            why = safefs.read_text(err_path, RAW_MAX).strip().splitlines()[-1:]
        except (OSError, safefs.BadFile):
            why = []
        raise GuestFailed(f"the bench helper failed in the guest (exit {code}): {why[0] if why else 'no output'}")
    try:
        raw = br.parse_raw(safefs.read_text(raw_path, RAW_MAX))
    except safefs.BadFile as e:
        raise GuestFailed(f"the guest's {e}") from None
    except ValueError as e:
        raise GuestFailed(f"the guest's {raw_path} is malformed: {str(e)[:200]}") from None
    return raw, accel, release
