"""A run's verdict and the words beside it, from what the boot, the guest and the host saw.

Pure: execute gathers the facts (the boot's result, the guest's files, the features' states, the
image check) and this decides; the tests feed it recorded consoles and results.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from base import safefs
from vm import progress
from vm.boot import BootResult, BootStatus

from ..results.absence import FeatureState, State
from ..results.model import TestResult, Verdict, decide


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    detail: str  # why, in a line: summary.json's "detail"
    harness: str = ""  # what broke, for a HARNESS ERROR


def judge(res: BootResult, tests: list[TestResult] | None, states: list[FeatureState], pytest_exit: object,
          problem: str, other_kernel: str, typical_boot: Callable[[], str],
          streamed: progress.Progress | None) -> Judgement:
    """res: the boot; tests: the guest's JUnit (None when it left none); pytest_exit: what the guest
    said pytest returned; problem: a guest file refused; other_kernel: why the kernel that booted
    is not the image ("" when it is); typical_boot: the usual boot time, said (read only when a
    boot timed out)."""
    verdict = decide(tests, states, res.status)
    if verdict is Verdict.NO_BOOT and res.status is BootStatus.EXITED and pytest_exit is None:
        detail = f"the guest ran but the suite left no results (exit {res.exit_code})"
    elif res.status is BootStatus.BOOT_TIMEOUT:
        detail = f"{res.reason}; {typical_boot()}: not judged as a hang, give a longer --timeout"
    elif verdict is Verdict.HUNG and not res.userspace:
        # Beside the usual boot time, so a slow boot is told apart from a hung kernel.
        detail = f"{res.reason} in {res.seconds:.0f} s; {typical_boot()}"
    elif verdict in (Verdict.NO_BOOT, Verdict.CRASHED, Verdict.HUNG):
        detail = res.reason
    else:
        detail = "; ".join(f"{s.name}: {s.detail or s.reason}" for s in states if s.state is not State.PRESENT)
    harness = ""
    if problem and verdict not in (Verdict.CRASHED, Verdict.HUNG):
        verdict, detail, harness = Verdict.HARNESS_ERROR, problem, "a file from the guest was refused"
    if res.unsafe or res.share_error:
        # Whatever else happened: a guest that plants these is not to be trusted with any verdict.
        verdict = Verdict.HARNESS_ERROR
        harness = "the guest left unsafe files; removed" if res.unsafe else "the guest's folder was not swept"
        found = f"the guest left {safefs.describe_unsafe(res.unsafe)}; removed or made safe" if res.unsafe else ""
        detail = "; ".join(filter(None, (found, res.share_error, problem)))
    if other_kernel:  # whatever it did, it says nothing about this kernel
        detail = "; ".join(filter(None, (other_kernel, detail if verdict is Verdict.HARNESS_ERROR else "")))
        verdict, harness = Verdict.HARNESS_ERROR, harness or "another kernel booted than the image"
    return Judgement(verdict, detail + streamed_note(streamed), harness)


def streamed_note(streamed: progress.Progress | None) -> str:
    if streamed is None:
        return ""
    of = f" of {streamed.collected}" if streamed.collected is not None else ""
    note = f"; {len(streamed.finished)}{of} tests finished"
    if streamed.running:
        note += f", running: {', '.join(streamed.running)}"
    return note
