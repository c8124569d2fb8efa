"""Boot a kernel under virtme-ng, run one command in it, and say what happened.

The guest's stdout is streamed to the caller; the kernel console (vng -v sends it to
stderr) goes to a log file and is scanned for panics and oopses. A timeout kills the
whole process group (vng, QEMU, virtiofsd), as does Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import enum
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from base.errors import InfraError
from base.safefs import Unsafe, open_new, write_atomic
from kernels.arch import host
from kernels.local import LocalKernel

from . import console as con
from . import share
from .guest import USERSPACE_MARK
from .vngsafe import GUEST_RESULTS, Stage, staged

# vng exits 255 when the guest died or its status channel was lost.
VNG_LOST = 255
# A boot that dies before the kernel printed its banner is retried this often (a known vng flake).
EARLY_DEATH_RETRIES = 2


@dataclass
class BootRequest:
    kernel: LocalKernel
    command: str
    rwdir: Path  # where the guest's files end up; it sees them at GUEST_RESULTS (shared through vm.share)
    console_log: Path
    accel: str = "tcg"  # kvm | tcg
    cpus: int = 2
    memory: str = "1G"
    timeout: float = 600.0
    boot_deadline: float = 150.0  # seconds to reach user space before the boot counts as stalled
    typical_boot: float | None = None  # seconds a boot usually takes to reach user space here
    transport: str | None = None  # virtiofs | 9p | None (let vng choose)
    path_prefix: list[str] = field(default_factory=list)  # folders to put first on vng's PATH
    virtiofsd: Path | None = None  # the virtiofsd to run, with vm.virtiofsd.HARDENING (None: vng's choice)
    vng_home: Path | None = None  # HOME for vng, so a user's vng config cannot change the run
    guest_init: str = "otns"  # otns | virtme-ng: the guest's PID 1 (vm.guest_init)
    stream: Callable[[str], object] | None = None
    # Told each phase of the boot as it is reached (QEMU started, the kernel's banner, user space),
    # with the seconds since the boot began: a boot is 10-30 s without a line of the suite's.
    phase: Callable[[str, float], object] | None = None
    inputs: dict[str, bytes] = field(default_factory=dict)  # files the guest finds in its folder at the start


class GuestStopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM while a guest ran: it has been stopped (so the command line can say so)."""


class BootStatus(enum.Enum):
    """How a boot ended (stored in summary.json by name)."""
    EXITED = "exited"  # the guest command ran and exited
    HUNG = "hung"  # killed at the timeout (or stalled before user space on every attempt)
    STALLED = "stalled"  # no sign of user space by the boot deadline: retried, then HUNG
    BOOT_TIMEOUT = "boot-timeout"  # the timeout ran out before a usual boot's time: not judged a hang
    CRASHED = "crashed"  # the kernel panicked or oopsed
    NO_BOOT = "no-boot"  # vng or QEMU died before the guest command ran


@dataclass
class BootResult:
    status: BootStatus
    exit_code: int | None
    seconds: float
    console: str
    guest_output: str
    reports: list[str]
    userspace: bool = True  # whether the guest command ever showed a sign of life
    attempts: int = 1
    userspace_seconds: float | None = None  # from starting vng to the guest's first sign of life
    timeout: float = 0.0
    userspace_at: float | None = None  # seconds into the boot when the guest command announced itself
    unsafe: list[Unsafe] = field(default_factory=list)  # what the guest left that the sweep removed or defused
    log_error: str = ""  # why the console log stopped short (a full disk), when it did
    share_error: str = ""  # why the guest's share could not be swept and moved in, when it could not

    @property
    def reason(self) -> str:
        if self.status is BootStatus.HUNG:
            if not self.userspace:
                return "the kernel never reached user space"
            return "the guest did not finish before the timeout"
        if self.status is BootStatus.STALLED:
            return "the boot stalled before user space"
        if self.status is BootStatus.BOOT_TIMEOUT:
            return f"the {self.timeout:g} s timeout ran out before the kernel reached user space"
        if self.status is BootStatus.CRASHED:
            return self.reports[0].splitlines()[0] if self.reports else "kernel crash"
        if self.status is BootStatus.NO_BOOT:
            return no_boot_reason(self.console)
        return f"guest command exited {self.exit_code}"


def no_boot_reason(console: str) -> str:
    if not console.strip():
        return "QEMU printed nothing: it did not start the kernel"
    if "Linux version" not in console:
        return f"the kernel never started: {con.tail(console, 3).strip()}"
    return f"the guest died before running the command: {con.tail(console, 3).strip()}"


def vng_command(req: BootRequest, dry_run: bool = False) -> list[str]:
    cmd = ["vng", "-r", str(req.kernel.image), "--verbose",
           "--cpus", str(req.cpus), "--memory", req.memory, "--rwdir", f"{GUEST_RESULTS}={share.folder(req.rwdir)}",
           # One vCPU per socket: SeaBIOS's MP table lists one CPU per socket, and a kernel
           # without ACPI (otns build's) finds its CPUs there; QEMU merges this with vng's -smp N.
           f"--qemu-opts=-smp sockets={req.cpus}"]
    if req.accel == "tcg":
        cmd += ["--disable-kvm", f"--qemu-opts={host().tcg_qemu_opts}"]
    if req.transport == "9p":
        cmd.append("--force-9p")
    # --verbose sends the console to stderr at loglevel 7; the serial console is slow under
    # TCG, and loglevel 5 still shows every panic, oops, BUG and WARNING (levels 0-4).
    # oops=panic: an oops ends the guest at once (panic=-1 reboots, QEMU runs with -no-reboot)
    # instead of leaving a half-dead kernel to run into the timeout; the verdict is CRASHED
    # either way, and a faulty kernel that oopses is judged in seconds, not minutes.
    cmd += ["--append", "loglevel=5 oops=panic"]
    if dry_run:
        cmd.append("--dry-run")
    cmd += ["--exec", req.command]
    return cmd


@contextmanager
def staged_vng(cmd: list[str], req: BootRequest) -> Iterator[tuple[list[str], dict[str, str], Path]]:
    """argv, environment and working folder that run a `vng ...` list safely (see
    vm.vngsafe), for as long as the block runs."""
    if req.vng_home:
        req.vng_home.mkdir(parents=True, exist_ok=True)
    with Stage(req.vng_home.parent if req.vng_home else None) as stage:
        yield (*staged(cmd, dict(os.environ), stage, req.path_prefix, req.vng_home, req.guest_init, req.virtiofsd),
               stage.root)


DRY_RUN_TIMEOUT = 120.0


def qemu_command(req: BootRequest) -> str:
    """The QEMU command vng would run, from vng's own --dry-run (boots nothing)."""
    share.create(req.rwdir)  # vng --dry-run checks that the folder it would share exists
    with staged_vng(vng_command(req, dry_run=True), req) as (argv, env, cwd):
        code, out, err = run_dry(argv, env, cwd)
    lines = [ln for ln in out.splitlines() if "qemu-system" in ln]
    if code != 0 or not lines:
        raise InfraError(f"vng --dry-run failed: {(err or out).strip().splitlines()[-1:]}")
    return lines[-1]


def run_dry(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """vng --dry-run's exit code, stdout and stderr. Even a dry run starts virtiofsd (in the
    background, through a shell); one that starts after virtme-run gave up waiting for it
    outlives it, holding the output pipes: so the output goes to files, and whatever is left
    of vng's process group afterwards is killed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd, start_new_session=True,
                                stdin=subprocess.DEVNULL)
        try:
            proc.wait(timeout=DRY_RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise InfraError(f"vng --dry-run did not answer within {DRY_RUN_TIMEOUT:.0f} s") from None
        finally:
            _stop_group(proc)
        out.seek(0)
        err.seek(0)
        return (proc.returncode, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))


_PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Orphans of the guest's process group (QEMU, virtiofsd) are reparented to us, so we can
    reap them; otherwise a killed QEMU lingers as a zombie wherever PID 1 does not reap."""
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _group_members(pgid: int) -> list[tuple[int, str, int]]:
    """(pid, state, ppid) of every process in a process group, zombies included."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append((int(entry.name), fields[0], int(fields[1])))
    return members


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop everything vng started (QEMU, virtiofsd), leader included, and reap what is ours.

    The group can outlive its leader; a dead QEMU must not linger as a zombie either.
    The leader is left to Popen to reap, so its exit status is not lost.
    """
    me, pgid = os.getpid(), proc.pid
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (0.5 if sig is None else 3.0)
        while True:
            leader_done = proc.poll() is not None
            members = _group_members(pgid)
            for pid, state, ppid in members:
                if state == "Z" and ppid == me and pid != pgid:
                    try:
                        os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        pass
            if leader_done and all(state == "Z" for _, state, _ in members):
                if not any(ppid == me and pid != pgid for pid, _, ppid in members):
                    return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)


# What a kernel or guest may print is untrusted: lines are cut at LINE_MAX, at most MEMORY_MAX
# bytes of a stream are kept in memory (its start and its end) and LOG_MAX written to the log.
LINE_MAX = 64 * 1024
MEMORY_MAX = 32 * 1024 * 1024
LOG_MAX = 256 * 1024 * 1024


class Capped:
    """A stream's lines, bounded: the first half of the budget, then the most recent lines."""

    def __init__(self, limit: int = MEMORY_MAX):
        self.head: list[str] = []
        self.tail: deque[str] = deque()
        self.limit, self.size, self.dropped = limit, 0, 0

    def append(self, line: str) -> None:
        self.size += len(line)
        if self.size <= self.limit // 2 and not self.tail:
            self.head.append(line)
            return
        self.tail.append(line)
        while self.size > self.limit and self.tail:
            old = self.tail.popleft()
            self.size -= len(old)
            self.dropped += len(old)

    def __bool__(self) -> bool:
        return bool(self.head or self.tail)

    def __iter__(self) -> Iterator[str]:
        yield from self.head
        if self.dropped:
            yield f"[otns] {self.dropped} characters not kept in memory (see the log)\n"
        yield from self.tail


class _Log:
    """The console log file, bounded; a write that fails (a full disk) stops the log, not the
    run: what was written stays, the stream is still read and kept in memory, and the error is
    kept to be reported with the log's path."""

    def __init__(self, file, path: Path):
        self.file, self.path, self.written, self.error = file, path, 0, ""

    def write(self, text: str) -> None:
        if self.error or self.written >= LOG_MAX:
            return
        self.written += len(text)
        try:
            self.file.write(text if self.written < LOG_MAX else "\n[otns] console log cut here: too large\n")
            self.file.flush()
        except OSError as e:
            self.error = f"{self.path}: {e.strerror or e}; the log stops there"
            try:
                self.file.close()  # drops what the failed write left in the buffer
            except OSError:
                pass


def pump(stream, sink: Capped, forward: Callable[[str], object] | None, log: _Log | None) -> None:
    for raw in iter(lambda: stream.readline(LINE_MAX), b""):
        line = raw.decode("utf-8", "replace")
        sink.append(line)
        if log is not None:
            log.write(line)
        if forward is not None:
            forward(line)


_PR_SET_PDEATHSIG = 1


def _contained(cmd: list[str]) -> list[str]:
    """As root, run vng as PID 1 of a new PID namespace: if otns is killed outright (SIGKILL,
    no chance to clean up), the namespace's init dies with it and takes QEMU and virtiofsd along."""
    if os.geteuid() == 0 and shutil.which("unshare"):
        return ["unshare", "--pid", "--fork", "--kill-child", *cmd]
    return cmd


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when otns dies (inherited by unshare's --kill-child)."""
    import ctypes
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def boot_once(req: BootRequest) -> BootResult:
    req.console_log.parent.mkdir(parents=True, exist_ok=True)
    _become_subreaper()
    start = time.monotonic()
    shared = share.create(req.rwdir)
    for name, data in req.inputs.items():
        write_atomic(shared / name, data)
    try:
        result = _boot_shared(req, start)
    except BaseException:
        _collect_quietly(req.rwdir)  # interrupted: keep what the guest wrote (progress.jsonl), if the sweep can
        raise
    try:
        result.unsafe = share.collect(req.rwdir)
    except OSError as e:
        result.share_error = (f"the guest's folder could not be swept ({e.strerror or e}); it stays, private, in "
                              f"{share.folder(req.rwdir).parent}")
    return result


def _collect_quietly(results: Path) -> None:
    try:
        share.collect(results)
    except (OSError, KeyboardInterrupt):
        pass  # the share stays in its private folder; the next run in this folder removes it


def _boot_shared(req: BootRequest, start: float) -> BootResult:
    out_lines, con_lines = Capped(), Capped()
    with staged_vng(vng_command(req), req) as (cmd, env, cwd), open_new(req.console_log) as log_file:
        log = _Log(log_file, req.console_log)
        try:
            proc = subprocess.Popen(_contained(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True,
                                    preexec_fn=_die_with_parent)
        except FileNotFoundError:
            raise InfraError("vng not found: run the README's setup (it installs virtme-ng)") from None
        announced: list[float] = []
        seen = set()

        def tell(what: str) -> None:
            if req.phase is not None and what not in seen:
                seen.add(what)
                req.phase(what, time.monotonic() - start)
        tell(PHASE_QEMU)

        def on_console(line: str) -> None:
            if "Linux version" in line:
                tell(PHASE_KERNEL)
            # When the boot ended and the suite began, even if the guest never reports it.
            if not announced and USERSPACE_MARK in line:
                announced.append(time.monotonic() - start)
                tell(PHASE_USERSPACE)
        pumps = [threading.Thread(target=pump, args=(proc.stdout, out_lines, req.stream, None), daemon=True),
                 threading.Thread(target=pump, args=(proc.stderr, con_lines, on_console, log), daemon=True)]
        for t in pumps:
            t.start()
        hung = stalled = False
        userspace_at = None
        boot_deadline = start + min(req.boot_deadline, req.timeout)
        try:
            while proc.poll() is None:
                now = time.monotonic()
                if userspace_at is None and _in_userspace(out_lines, con_lines):
                    userspace_at = now - start
                if now - start >= req.timeout:
                    hung = True
                    break
                # The guest command announces itself on stderr (the console stream); any guest
                # output also proves the kernel reached user space.
                if now >= boot_deadline and not _in_userspace(out_lines, con_lines):
                    hung = stalled = True
                    break
                try:  # returns as soon as vng exits: a sleep would add up to its length to every run
                    proc.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:
            raise GuestStopped from None
        finally:
            # Always: on timeout, on Ctrl-C, on SIGTERM (raised as an exception by the CLI).
            _stop_group(proc)
        for t in pumps:
            t.join(timeout=5)
        if stalled:
            log.write(f"\n[otns] killed: no sign of user space after {boot_deadline - start:.0f} s\n")
        elif hung:
            log.write(f"\n[otns] killed after the {req.timeout:.0f} s timeout\n")
    seconds = time.monotonic() - start
    console, output = "".join(con_lines), "".join(out_lines)
    reports = con.crash_reports(console)
    code = None if hung else proc.returncode
    userspace = _in_userspace(out_lines, con_lines)
    if userspace and userspace_at is None:
        userspace_at = seconds  # it came and went between two looks: an upper bound
    status = classify(console, output, code, hung=hung, stalled=stalled, userspace=userspace, ample=_ample(req))
    return BootResult(status, code, seconds, console, output, reports, userspace,
                      userspace_seconds=userspace_at, timeout=req.timeout,
                      userspace_at=announced[0] if announced else None, log_error=log.error)


def classify(console: str, output: str, code: int | None, *, hung: bool, stalled: bool, userspace: bool,
             ample: bool) -> BootStatus:
    """How a boot ended, from what it printed (the console, the guest's output) and how it was
    stopped: killed at the timeout (hung) or at the boot deadline (stalled), whether user space
    was ever seen, and whether the timeout was ample for a boot here."""
    if con.is_crash(console):
        return BootStatus.CRASHED
    if stalled:
        return BootStatus.STALLED
    if hung and not userspace and not ample:
        # The user's timeout ran out before the boot deadline and before the time a boot
        # takes here: the kernel was not given that time, so this says nothing about a hang.
        return BootStatus.BOOT_TIMEOUT
    if hung:
        return BootStatus.HUNG
    if (code == VNG_LOST and not output.strip()) or (code != 0 and not userspace):
        # vng failed before the guest command ran (QEMU missing, refused options...): no boot.
        return BootStatus.NO_BOOT
    return BootStatus.EXITED


# The phases BootRequest.phase is told, in order.
PHASE_QEMU = "QEMU started"
PHASE_KERNEL = "kernel started"
PHASE_USERSPACE = "user space reached, the suite starts"

# A timeout this many times a usual boot was time enough: no user space by then is a hang.
AMPLE_FACTOR = 3.0


def _ample(req: BootRequest) -> bool:
    return req.typical_boot is not None and req.timeout >= AMPLE_FACTOR * req.typical_boot


def _in_userspace(out_lines: Capped, con_lines: Capped) -> bool:
    return bool(out_lines) or any(USERSPACE_MARK in ln for ln in con_lines)


def boot(req: BootRequest, notice: Callable[[str], object] = print) -> BootResult:
    """Boot, retrying what is not the kernel's fault: vng dying before the kernel started
    (seen with two runs at once), and a boot that stalls before user space (seen under TCG
    in a nested VM, about 1 boot in 10: stuck right after SMP bring-up)."""
    attempts = 0
    while True:
        attempts += 1
        result = boot_once(req)
        result.attempts = attempts
        early = result.status is BootStatus.NO_BOOT and "Linux version" not in result.console
        if (early or result.status is BootStatus.STALLED) and attempts <= EARLY_DEATH_RETRIES:
            what = no_boot_reason(result.console) if early else result.reason
            notice(f"otns: {what}; retrying ({attempts}/{EARLY_DEATH_RETRIES})")
            continue
        if result.status is BootStatus.STALLED:
            result.status = BootStatus.HUNG  # the same kernel stalled every time: that is the kernel's hang
        return result


def shell_join(cmd: list[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)
