"""The results folder's contract (otns.results.files): every file written and read back, the
recorded format-1 folder of a real run, a newer format refused, enums stored by name."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from base import safefs
from base.errors import EXIT_USAGE, BadInput
from conformance.features import BY_NAME
from otns.paths import REPO_ROOT
from otns.results import files as rf
from otns.results.absence import Policy, judge
from otns.results.model import Outcome, RunSummary, Verdict, counts, decide
from otns.results.model import TestResult as Result
from vm.boot import BootStatus

RECORDED = Path(__file__).parent / "data" / "results-7.3.4"
TESTS = [Result("conformance/test_a.py::test_ok", Outcome.PASS, 0.5),
         Result("conformance/test_a.py::test_bad[x]", Outcome.FAIL, 0.25, "EPERM, wanted EINVAL"),
         Result("conformance/test_a.py::test_skip", Outcome.SKIP, 0.0, "Skipped: kernel lacks it")]


def _summary(tests: list[Result], status: BootStatus) -> RunSummary:
    states = judge({name: {"state": "present"} for name in BY_NAME}, "7.3.4", Policy())
    return RunSummary(kernel="debian:7.3.4", release="7.3.4", source="debian 7.3.4-1 cloud (sid)", accel="tcg",
                      verdict=decide(tests, states, status), counts=counts(tests), durations={"vm": 1.0},
                      feature_present=True, features=states, boot_status=status,
                      crash_reports=["Kernel panic - not syncing"] if status is BootStatus.CRASHED else [])


def _run_folder(tmp_path: Path, status: BootStatus = BootStatus.EXITED) -> tuple[Path, RunSummary]:
    with rf.results_folder(tmp_path / "r", "unused") as folder:
        assert (folder / rf.INCOMPLETE).exists()
    summary = _summary(TESTS, status)
    rf.write_run(folder, summary, TESTS, "", "line 1\nline 2\n")
    return folder, summary


def test_run_files_round_trip(tmp_path):
    folder, summary = _run_folder(tmp_path)
    assert not (folder / rf.INCOMPLETE).exists() and rf.is_finished(folder)
    back = rf.read_summary(folder / rf.SUMMARY)
    assert back.verdict is Verdict.NONCONFORMING is summary.verdict and back.boot_status is BootStatus.EXITED
    assert back.verdict_line() == summary.verdict_line() and back.counts == {"pass": 1, "fail": 1, "skip": 1, "error": 0}
    assert back.to_json() == summary.to_json()
    ktap = rf.read_ktap(folder).splitlines()
    assert ktap[:2] == ["KTAP version 1", "1..3"] and ktap[-2] == "ok 3 conformance/test_a.py::test_skip # SKIP kernel lacks it"
    assert ktap[-1] == "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0"
    assert not (folder / rf.CRASH).exists() and not (folder / rf.CONSOLE_TAIL).exists()
    # No junit.xml (the guest never wrote one): no tests, not an error.
    loaded = rf.load_folder(folder)
    assert loaded.tests == {} and loaded.verdict == summary.verdict_line() and loaded.name == "debian:7.3.4"


@pytest.mark.parametrize("status, written", [(BootStatus.CRASHED, rf.CRASH), (BootStatus.HUNG, rf.CONSOLE_TAIL)])
def test_a_dead_kernel_leaves_its_crash_or_console_tail(tmp_path, status, written):
    folder, summary = _run_folder(tmp_path, status)
    doc = json.loads((folder / rf.SUMMARY).read_text())
    assert doc["verdict"] == status.name and doc["boot_status"] == status.name  # CRASHED / HUNG
    assert (folder / written).read_text().strip()


def test_enums_are_stored_by_name(tmp_path):
    folder, summary = _run_folder(tmp_path)
    raw = json.loads((folder / rf.SUMMARY).read_text())
    assert raw["format"] == 2 and raw["verdict"] == Verdict.NONCONFORMING.name != Verdict.NONCONFORMING.value
    assert raw["boot_status"] == BootStatus.EXITED.name
    assert all(state["state"] for state in raw["features"].values())


def test_junit_the_guest_wrote_reads_back_as_the_same_tests():
    tests = rf.read_tests(RECORDED)
    assert tests is not None and len(tests) == 320
    assert counts(tests) == json.loads((RECORDED / rf.SUMMARY).read_text())["counts"]
    assert all(t.name.startswith("conformance/test_") and "::" in t.name for t in tests)
    assert len(rf.junit_cases(RECORDED / rf.JUNIT)) == 320


def test_recorded_format_1_folder_is_read():
    """tests/data/results-7.3.4 is a real run's folder written before the format field."""
    raw = json.loads((RECORDED / rf.SUMMARY).read_text())
    assert "format" not in raw and "boot_status" not in raw
    k = rf.load_folder(RECORDED)
    assert k.summary is not None and k.summary.verdict is Verdict.CONFORMS and k.summary.boot_status is None
    assert k.summary.release == "7.3.4+deb13-cloud-amd64" and len(k.tests) == 320
    assert rf.load_any([RECORDED]) == [k]


@pytest.mark.parametrize("verdict", list(Verdict))
def test_format_1_verdict_words_become_names(tmp_path, verdict):
    (tmp_path / rf.SUMMARY).write_text(json.dumps({"verdict": verdict.value, "verdict_line": f"{verdict.value} (x)"}))
    back = rf.read_summary(tmp_path / rf.SUMMARY)
    assert back.verdict is verdict and back.verdict_line() == f"{verdict.value} (x)"
    assert Verdict.of(f"{verdict.value} (x)") is verdict


@pytest.mark.parametrize("doc, error", [
    ({"format": 3, "verdict": "CONFORMS"}, "results format version 3 is newer than this otns reads (versions 1 to 2)"),
    ({"format": "2"}, "format '2' is not a format version"),
    ({"format": 2, "verdict": "DOES NOT CONFORM"}, "unknown verdict 'DOES NOT CONFORM'"),
    ({"format": 2, "verdict": "CONFORMS", "boot_status": "exited"}, "unknown boot_status 'exited'"),
])
def test_unreadable_formats_are_refused(tmp_path, doc, error):
    (tmp_path / rf.SUMMARY).write_text(json.dumps(doc))
    with pytest.raises(BadInput, match="^" + str(tmp_path / rf.SUMMARY) + ": " + error.replace("(", r"\(").replace(")", r"\)")):
        rf.read_summary(tmp_path / rf.SUMMARY)


@pytest.mark.parametrize("command", ["report", "diff"])
def test_a_newer_format_is_one_line_and_exit_2(tmp_path, command):
    folder = shutil.copytree(RECORDED, tmp_path / "new")
    doc = json.loads((folder / rf.SUMMARY).read_text())
    (folder / rf.SUMMARY).write_text(json.dumps({**doc, "format": 7}))
    args = [str(folder), "--out", str(tmp_path / "out")] if command == "report" else [str(RECORDED), str(folder)]
    p = subprocess.run([sys.executable, "-m", "otns.cli", command, *args], cwd=REPO_ROOT, capture_output=True, text=True)
    assert p.returncode == EXIT_USAGE, p.stderr
    assert p.stderr.strip().splitlines() == [
        f"otns: error: {folder / rf.SUMMARY}: results format version 7 is newer than this otns reads (versions 1 to 2): "
        "upgrade otns"]


def test_state_round_trip_and_format_1(tmp_path):
    state = {"state": "done", "kernel": "debian:7.3.4", "expect": "version", "verdict": "HUNG",
             "verdict_name": "HUNG", "counts": {"pass": 3}, "ok": False, "seconds": 2.5}
    rf.write_state(tmp_path, state)
    assert json.loads((tmp_path / rf.STATE).read_text())["format"] == rf.FORMAT
    assert rf.read_state(tmp_path) == state and rf.state_verdict(state) is Verdict.HUNG
    # Format 1: the verdict line only.
    (tmp_path / rf.STATE).write_text(json.dumps({"state": "done", "verdict": "FEATURE ABSENT (open_tree_ns absent)"}))
    assert rf.state_verdict(rf.read_state(tmp_path)) is Verdict.FEATURE_ABSENT
    (tmp_path / rf.STATE).write_text(json.dumps({"format": 9, "state": "done"}))
    with pytest.raises(BadInput, match="format version 9"):
        rf.read_state(tmp_path)
    assert rf.read_state(tmp_path / "none") == {"state": "queued"}


def test_bench_files_and_guest_objects(tmp_path):
    png = rf.write_bench(tmp_path, "method,mounts\n", "# bench\n")
    rf.write_checks(tmp_path, [{"method": "classic", "mounts": 30}])
    assert png == tmp_path / rf.BENCH_PNG
    assert (tmp_path / rf.BENCH_CSV).read_text() == "method,mounts\n"
    assert (tmp_path / rf.BENCH_MD).read_text() == "# bench\n"
    assert [json.loads(ln) for ln in (tmp_path / rf.BENCH_CHECKS).read_text().splitlines()] == [
        {"method": "classic", "mounts": 30}]
    (tmp_path / rf.FEATURES).write_text(json.dumps({"release": "7.3.4", "groups": {}}))
    (tmp_path / rf.GUEST).symlink_to(tmp_path / rf.FEATURES)  # planted by a guest: never followed
    assert rf.read_object(tmp_path / rf.FEATURES) == {"release": "7.3.4", "groups": {}}
    assert rf.read_object(tmp_path / rf.GUEST) is None


def test_every_name_is_a_legacy_or_marked_folder_name():
    """A folder holding only names the contract writes is recognised as otns's (safefs.LEGACY)."""
    names = {rf.JUNIT, rf.KTAP, rf.CONSOLE, rf.SUMMARY, rf.FEATURES, rf.GUEST, rf.CRASH, rf.CONSOLE_TAIL, rf.STATE,
             rf.LIVE_LOG, rf.PROGRESS, rf.BENCH_CSV, rf.BENCH_MD, rf.BENCH_PNG, rf.BENCH_CHECKS, rf.BENCH_RAW}
    assert names <= safefs.LEGACY and len(names) == 16
