"""RunSummary.from_json: the inverse of to_json (what write_run puts in summary.json), and a
one-line refusal, naming the file and the field, of a summary.json that is damaged or hostile."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from base.errors import BadInput
from conformance.features import BY_NAME
from otns.results import files as rf
from otns.results.absence import FeatureState, Policy, State, judge
from otns.results.model import Outcome, RunSummary, Verdict, counts, decide
from otns.results.model import TestResult as Result  # not collected as a test class
from vm.boot import BootStatus

DATA = Path(__file__).parent / "data"
TESTS = [Result("conformance/test_a.py::test_ok", Outcome.PASS, 0.5),
         Result("conformance/test_a.py::test_bad", Outcome.FAIL, 0.25, "EPERM, wanted EINVAL")]


def _summary(**changes) -> RunSummary:
    states = judge({name: {"state": "present", "detail": "works"} for name in BY_NAME}, "7.3.4", Policy())
    full = RunSummary(kernel="debian:7.3.4", release="7.3.4+deb13-cloud-amd64", source="debian 7.3.4-1 cloud (sid)",
                      accel="kvm", verdict=decide(TESTS, states, BootStatus.EXITED), counts=counts(TESTS),
                      durations={"fetch": 0.1, "boot": 7.25, "total": 60}, feature_present=True,
                      detail="something to say", attempts=2, crash_reports=["BUG: a\n  line two"],
                      debian={"upstream": "7.3.4", "debian_version": "7.3.4-1", "flavour": "cloud",
                              "release": "7.3.4+deb13-cloud-amd64"},
                      features=states, running=["conformance/test_a.py::test_hung"], boot_status=BootStatus.EXITED,
                      run_id="950a9ed3-1420-4598-8a80-9d4426bbf60b", started="2026-12-07T18:25:20+00:00",
                      tree={"name": "linux", "git_commit_hash": "a" * 40})
    return dataclasses.replace(full, **changes)


def test_what_write_run_wrote_reads_back_the_same(tmp_path):
    written = _summary()
    rf.write_run(tmp_path, written, TESTS, "", "")
    doc = json.loads((tmp_path / rf.SUMMARY).read_text())
    assert doc.pop("format") == rf.FORMAT
    back = RunSummary.from_json(doc)
    assert back.to_json() == written.to_json()
    # Every field, but the verdict line's parts: the line is read back as it was written.
    assert back == dataclasses.replace(written, line=written.verdict_line())


def test_a_harness_error_keeps_its_line():
    written = _summary(verdict=Verdict.HARNESS_ERROR, harness="the guest wrote no junit.xml")
    back = RunSummary.from_json(json.loads(json.dumps(written.to_json())))
    assert back.verdict_line() == written.verdict_line() == "HARNESS ERROR (the guest wrote no junit.xml)"


@pytest.mark.parametrize("folder", ["results-7.0.4", "run-7.3.4"])
def test_recorded_files_read_back_to_what_they_hold(folder):
    # to_json(from_json(x)) == x: nothing a real run recorded is lost or changed.
    doc = json.loads((DATA / folder / rf.SUMMARY).read_text())
    assert doc.pop("format") == rf.FORMAT
    assert RunSummary.from_json(doc).to_json() == doc


def test_missing_fields_default_and_unknown_ones_are_ignored():
    s = RunSummary.from_json({"verdict": "NO_BOOT", "some_later_field": {"x": [1]}})
    assert s == RunSummary(kernel="", release="", source="", accel="", verdict=Verdict.NO_BOOT, counts={},
                           durations={}, feature_present=None)
    assert s.verdict_line() == "COULD NOT BOOT"


def test_text_is_made_printable():
    s = RunSummary.from_json({"verdict": "CONFORMS", "kernel": "debian:\x1b[2J", "running": ["t\x9b1"],
                              "features": {"x\x07": {"state": "present", "detail": "\x00"}},
                              "debian": {"flavour": "cloud\x1b"}})
    assert (s.kernel, s.running, s.features[0].name, s.features[0].detail) == (
        "debian:\\x1b[2J", ["t\\x9b1"], "x\\x07", "\\x00")
    assert s.debian == {"flavour": "cloud\\x1b"}


WHERE = "/elsewhere/summary.json"


@pytest.mark.parametrize("doc, needle", [
    ([], "the file is not a JSON object"),
    ({}, "verdict is missing"),
    ({"verdict": 5}, "verdict is not a string"),
    ({"verdict": "DOES NOT CONFORM"}, "unknown verdict 'DOES NOT CONFORM'"),
    ({"verdict": "CONFORMS", "kernel": 5}, "kernel is not a string"),
    ({"kernel": ["x"]}, "kernel is not a string"),  # a wrong field comes before the missing verdict
    ({"verdict": "CONFORMS", "verdict_line": None}, "verdict_line is not a string"),
    ({"verdict": "CONFORMS", "counts": [1]}, "counts is not an object of whole numbers"),
    ({"verdict": "CONFORMS", "counts": {"pass": 1.5}}, "counts is not an object of whole numbers"),
    ({"verdict": "CONFORMS", "counts": {"pass": True}}, "counts is not an object of whole numbers"),
    ({"verdict": "CONFORMS", "counts": {"pass": 10 ** 12}}, "counts.pass is 1000000000000, not a number"),
    ({"verdict": "CONFORMS", "durations": {"total": "1"}}, "durations is not an object of numbers"),
    ({"verdict": "CONFORMS", "durations": {"total": -1}}, "durations.total is -1, not a number from 0"),
    ({"verdict": "CONFORMS", "durations": {"total": float("nan")}}, "durations.total is nan"),
    ({"verdict": "CONFORMS", "feature_present": "yes"}, "feature_present is not true, false or null"),
    ({"verdict": "CONFORMS", "boot_attempts": -1}, "boot_attempts is not a whole number"),
    ({"verdict": "CONFORMS", "boot_attempts": 1.0}, "boot_attempts is not a whole number"),
    ({"verdict": "CONFORMS", "crash_reports": "BUG"}, "crash_reports is not a list of strings"),
    ({"verdict": "CONFORMS", "running": [1]}, "running is not a list of strings"),
    ({"verdict": "CONFORMS", "debian": "7.3.4"}, "debian is not an object of strings"),
    ({"verdict": "CONFORMS", "debian": {"flavour": 1}}, "debian is not an object of strings"),
    ({"verdict": "CONFORMS", "tree": []}, "tree is not an object of strings"),
    ({"verdict": "CONFORMS", "features": [1]}, "features is not an object"),
    ({"verdict": "CONFORMS", "features": {"fsmount_ns": 5}}, "features.fsmount_ns is not a JSON object"),
    ({"verdict": "CONFORMS", "features": {"fsmount_ns": {}}}, "features.fsmount_ns.state is missing"),
    ({"verdict": "CONFORMS", "features": {"fsmount_ns": {"state": "PRESENT"}}},
     "unknown features.fsmount_ns.state 'PRESENT'"),
    ({"verdict": "CONFORMS", "features": {"x": {"state": "present", "reason": 1}}}, "features.x.reason is not a string"),
    ({"verdict": "CONFORMS", "boot_status": "exited"}, "unknown boot_status 'exited'"),
    ({"verdict": "CONFORMS", "boot_status": 0}, "boot_status is not a string"),
    ({"verdict": "CONFORMS", "\x1b[2J": 1, "counts": {"\x1b[2J": -1}}, "counts.\\x1b[2J is -1"),
])
def test_damaged_fields_are_refused_naming_the_file_and_the_field(doc, needle):
    with pytest.raises(BadInput) as e:
        RunSummary.from_json(doc, WHERE)
    message = str(e.value)
    assert message.startswith(f"{WHERE}: ") and needle in message, message
    assert message.isprintable(), message


def test_a_feature_state_is_its_value():
    s = RunSummary.from_json({"verdict": "FEATURE_ABSENT", "features": {
        "fsmount_ns": {"state": "absent-expected", "reason": "Linux 7.0 predates it"}}})
    assert s.features == [FeatureState("fsmount_ns", State.ABSENT_EXPECTED, "Linux 7.0 predates it")]
