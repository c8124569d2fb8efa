"""A stuck test fails on its own and the suite goes on; a wedged guest still reports every test
that finished. Real kernel, real VM; the stuck test comes from tests/guest_plugins/stuck.py."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.boot

STUCK = "conformance/test_propagation.py::test_privileged_copy_is_a_peer"
AFTER = "conformance/test_propagation.py::test_foreign_copy_is_a_slave"
# 25 quick tests (test_core.py) run before the stuck one, one (AFTER) after it.
SELECT = ["-k", "(test_core and unknown_flag_bit) or test_privileged_copy_is_a_peer or test_foreign_copy_is_a_slave"]


def test_stuck_test_times_out_and_the_suite_goes_on(otns):
    # A test that times out waited for the kernel, which never answered: a failure of that test.
    r = otns("run", "--", "-p", "tests.guest_plugins.stuck", f"--otns-stuck={STUCK}", "--timeout=5", *SELECT)
    assert r.code == 1, r.stderr
    assert r.last_line.startswith("DOES NOT CONFORM (1 failed)"), r.last_line
    s = r.summary
    assert s["counts"] == {"pass": 26, "fail": 1, "skip": 0, "error": 0}, s["counts"]
    assert s["running"] == []
    cases = {c.get("name"): c for c in ET.parse(r.results / "junit.xml").getroot().iter("testcase")}
    failure = cases["test_privileged_copy_is_a_peer"].find("failure")
    assert failure is not None and "Timeout (>5.0s)" in failure.get("message", ""), ET.tostring(failure)
    assert cases["test_foreign_copy_is_a_slave"].find("failure") is None  # it ran after, and passed
    assert f"not ok 26 {STUCK}" in (r.results / "ktap.txt").read_text()
    assert s["durations"]["suite"] >= 5


def test_wedged_guest_keeps_every_finished_test(otns):
    # The stuck test blocks SIGALRM, so the per-test limit cannot end it: the run hangs.
    r = otns("run", "--timeout", "90", "--", "-p", "tests.guest_plugins.stuck", f"--otns-stuck={STUCK}",
             "--otns-stuck-how=wedge", *SELECT)
    assert r.code == 4, r.stderr
    assert r.last_line.startswith("HUNG"), r.last_line
    assert not (r.results / "junit.xml").exists()
    s = r.summary
    assert s["verdict"] == "HUNG"
    assert s["counts"] == {"pass": 25, "fail": 0, "skip": 0, "error": 0}, s["counts"]
    assert s["running"] == [STUCK]
    assert f"25 of 27 tests finished, running: {STUCK}" in s["detail"], s["detail"]
    ktap = (r.results / "ktap.txt").read_text().splitlines()
    assert ktap[:2] == ["KTAP version 1", "1..25"]
    assert sum(ln.startswith("ok ") for ln in ktap) == 25
    assert ktap[-1].startswith("# the guest did not finish before the timeout") and STUCK in ktap[-1]
    # The time the guest sat in the stuck test is the suite's, not the boot's.
    d = s["durations"]
    assert abs(d["boot"] + d["suite"] - d["vm"]) < 0.1
    assert d["suite"] > 20 and d["boot"] < d["vm"] - 20, d


def test_crash_mid_run_keeps_every_finished_test(otns):
    # Also the proof that the stream needs no fsync: what the guest wrote reached the host.
    r = otns("run", "--timeout", "120", "--", "-p", "tests.guest_plugins.stuck", f"--otns-stuck={STUCK}",
             "--otns-stuck-how=panic", *SELECT)
    assert r.code == 4, r.stderr
    assert r.last_line.startswith("CRASHED"), r.last_line
    s = r.summary
    assert s["counts"] == {"pass": 25, "fail": 0, "skip": 0, "error": 0}, s["counts"]
    assert s["running"] == [STUCK]
    assert f"25 of 27 tests finished, running: {STUCK}" in s["detail"], s["detail"]
    assert (r.results / "ktap.txt").read_text().splitlines()[:2] == ["KTAP version 1", "1..25"]
