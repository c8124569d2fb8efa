"""The pure decisions of a run, on recorded consoles and results (tests/data): how a boot ended
(vm.boot.classify) and the run's verdict and detail line (otns.run.judge)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from base.safefs import Unsafe
from otns.results.absence import Policy
from otns.results.absence import judge as judge_features
from otns.results.files import parse_junit
from otns.results.model import Verdict
from otns.run.judge import judge
from vm import console as con
from vm.boot import VNG_LOST, BootResult, BootStatus, classify
from vm.progress import Finished, Progress

DATA = Path(__file__).parent / "data"
CLEAN = (DATA / "console-clean.log").read_text()
PANIC = (DATA / "console-panic.log").read_text()
RESULTS = DATA / "results-7.0.4"


def _how(console: str, output: str = "ok\n", code: int | None = 0, hung=False, stalled=False, userspace=True,
         ample=True) -> BootStatus:
    return classify(console, output, code, hung=hung, stalled=stalled, userspace=userspace, ample=ample)


def test_how_a_boot_ended():
    assert _how(CLEAN) is BootStatus.EXITED
    assert _how(CLEAN, code=1) is BootStatus.EXITED  # the suite's own failure: the guest ran
    assert _how(PANIC) is _how(PANIC, code=None, hung=True) is BootStatus.CRASHED  # a panic, whatever else
    assert _how(CLEAN, code=None, stalled=True, hung=True, userspace=False) is BootStatus.STALLED
    assert _how(CLEAN, code=None, hung=True) is BootStatus.HUNG
    assert _how("", output="", code=None, hung=True, userspace=False, ample=False) is BootStatus.BOOT_TIMEOUT
    assert _how("", output="", code=None, hung=True, userspace=False, ample=True) is BootStatus.HUNG
    assert _how("", output="", code=VNG_LOST) is BootStatus.NO_BOOT
    assert _how(CLEAN, output="", code=1, userspace=False) is BootStatus.NO_BOOT


def _boot(console: str, status: BootStatus, **kw) -> BootResult:
    return BootResult(status, kw.pop("exit_code", 0), kw.pop("seconds", 100.0), console, "", con.crash_reports(console),
                      **kw)


@pytest.fixture
def recorded():
    """The tests and feature states of a recorded Debian 7.0.4 run (open_tree_ns present, the rest absent)."""
    features = json.loads((RESULTS / "features.json").read_text())
    return parse_junit(RESULTS / "junit.xml"), judge_features(features["groups"], features["release"], Policy())


def _never() -> str:
    raise AssertionError("the usual boot time is read only for a boot that timed out")


def test_a_run_that_exited_is_judged_as_the_recorded_run_was(recorded):
    """The verdict and detail otns wrote in that run's summary.json: 11 failures, two features absent."""
    tests, states = recorded
    summary = json.loads((RESULTS / "summary.json").read_text())
    j = judge(_boot(CLEAN, BootStatus.EXITED, exit_code=1), tests, states, 1, "", "", _never, None)
    assert (j.verdict.name, j.detail, j.harness) == (summary["verdict"], summary["detail"], "")
    assert j.verdict is Verdict.NONCONFORMING and j.detail.startswith("fsmount_ns: the kernel lacks")


def test_a_panic_is_a_crash_named_by_its_first_line(recorded):
    tests, states = recorded
    streamed = Progress(collected=450, finished=[Finished("t", "pass", 0.1, "")], running=["conformance/x.py::t"])
    j = judge(_boot(PANIC, BootStatus.CRASHED, exit_code=None), None, states, None, "", "", _never, streamed)
    assert j.verdict is Verdict.CRASHED
    assert j.detail == ("Kernel panic - not syncing: sysrq triggered crash; 1 of 450 tests finished, "
                        "running: conformance/x.py::t")


def test_a_boot_that_timed_out_is_told_apart_from_a_hang(recorded):
    _, states = recorded
    res = _boot("", BootStatus.BOOT_TIMEOUT, exit_code=None, userspace=False, timeout=5.0)
    j = judge(res, None, states, None, "", "", lambda: "a boot takes 30 s here", None)
    assert j.detail == ("the 5 s timeout ran out before the kernel reached user space; a boot takes 30 s here: "
                        "not judged as a hang, give a longer --timeout")


def test_what_the_harness_cannot_trust_outranks_the_tests(recorded):
    tests, states = recorded
    unsafe = _boot(CLEAN, BootStatus.EXITED, unsafe=[Unsafe("junit.xml", "symbolic link", "replaced")])
    j = judge(unsafe, tests, states, 0, "", "", _never, None)
    assert j.verdict is Verdict.HARNESS_ERROR and j.harness == "the guest left unsafe files; removed"
    j = judge(_boot(CLEAN, BootStatus.EXITED), tests, states, 0, "features.json: not JSON", "", _never, None)
    assert (j.verdict, j.detail, j.harness) == (Verdict.HARNESS_ERROR, "features.json: not JSON",
                                                "a file from the guest was refused")
    j = judge(_boot(CLEAN, BootStatus.EXITED), tests, states, 0, "", "another kernel booted", _never, None)
    assert (j.verdict, j.detail, j.harness) == (Verdict.HARNESS_ERROR, "another kernel booted",
                                                "another kernel booted than the image")


def test_a_guest_that_left_no_results_is_no_boot(recorded):
    _, states = recorded
    j = judge(_boot(CLEAN, BootStatus.EXITED, exit_code=3), None, states, None, "", "", _never, None)
    assert (j.verdict, j.detail) == (Verdict.NO_BOOT, "the guest ran but the suite left no results (exit 3)")
