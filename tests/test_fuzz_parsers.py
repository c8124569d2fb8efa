"""Property-based fuzzing of every parser of guest-supplied data (the guest, or a results
folder from elsewhere, may hold any bytes): a result or a clear BadInput (exit 2), never
another exception, never a hang."""
from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from base.errors import BadInput
from otns.results import model as results
from otns.results.absence import Policy, State, judge
from otns.results.files import parse_junit, read_state, read_summary
from otns.results.guest import load as load_guest_files
from otns.results.model import Outcome, RunSummary, Verdict, to_ktap
from vm import console
from vm.boot import BootStatus

FUZZ = settings(deadline=2000, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20)
# Objects shaped like the real files, with any value in any field.
summary_like = st.fixed_dictionaries({}, optional={
    **{k: json_values for k in ("kernel", "release", "verdict_line", "counts", "durations", "detail", "running",
                                "debian", "boot_attempts")},
    "verdict": json_values | st.sampled_from([v.name for v in Verdict] + [v.value for v in Verdict]),
    "boot_status": json_values | st.sampled_from([b.name for b in BootStatus]),
    "features": json_values | st.dictionaries(st.text(max_size=12), json_values | st.fixed_dictionaries(
        {}, optional={"state": json_values | st.sampled_from([s.value for s in State]), "reason": json_values}))})
features_like = st.fixed_dictionaries({}, optional={
    "release": json_values,
    "groups": json_values | st.dictionaries(st.sampled_from(["open_tree_ns", "fsmount_ns", "empty_mntns"]),
                                            json_values | st.fixed_dictionaries(
        {}, optional={"state": json_values | st.sampled_from(["present", "absent", "broken"]),
                      "detail": json_values}))})
state_like = st.fixed_dictionaries({}, optional={
    k: json_values for k in ("state", "kernel", "verdict", "ok", "counts", "seconds")})
# Text an XML attribute may hold, markup-escaped.
xml_text = st.text(max_size=30).map(lambda s: "".join(c for c in s if c.isprintable()))
esc = xml_text.map(lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;"))


_ROOT = tempfile.TemporaryDirectory(prefix="otns-fuzz-")  # removed when the test process ends


def _file(data: bytes, name: str) -> Path:
    folder = Path(tempfile.mkdtemp(dir=_ROOT.name))
    (folder / name).write_bytes(data)
    return folder / name


def _result_or_bad_input(fn, *args):
    try:
        return fn(*args)
    except BadInput as e:
        assert str(e), "BadInput without a reason"
        return None


@FUZZ
@given(st.binary(max_size=2000))
def test_junit_any_bytes(data):
    _result_or_bad_input(parse_junit, _file(data, "junit.xml"))


@FUZZ
@given(st.lists(st.tuples(esc, esc, st.sampled_from(["", "failure", "error", "skipped", "other"]), esc, esc),
                max_size=5))
def test_junit_shaped(cases):
    xml = "<testsuites><testsuite>" + "".join(
        f'<testcase classname="{c}" name="{n}" time="{t}">' + (f'<{k} message="{m}"/>' if k else "") + "</testcase>"
        for c, n, k, m, t in cases) + "</testsuite></testsuites>"
    tests = _result_or_bad_input(parse_junit, _file(xml.encode(), "junit.xml"))
    if tests is not None:
        assert len(tests) == len(cases) and all(isinstance(t.outcome, Outcome) for t in tests)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["rule", "fix", "other", ""]), esc | st.sampled_from(["OT-DIR", "X_Y"])),
                max_size=6))
def test_junit_properties(props):
    # A testcase's properties come from the guest: only id-like rule and fix values are read.
    xml = ('<testsuites><testsuite><testcase classname="conformance.test_x" name="test_y"><properties>'
           + "".join(f'<property name="{n}" value="{v}"/>' for n, v in props)
           + "</properties></testcase></testsuite></testsuites>")
    tests = _result_or_bad_input(parse_junit, _file(xml.encode(), "junit.xml"))
    if tests is not None:
        (t,) = tests
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v) for v in t.rules + t.fixes)
        assert to_ktap(tests).count("\n") <= 5


@FUZZ
@given(st.binary(max_size=500) | json_values.map(lambda v: json.dumps(v).encode())
       | summary_like.map(lambda v: json.dumps(v).encode()))
def test_summary(data):
    summary = _result_or_bad_input(read_summary, _file(data, "summary.json"))
    if summary is not None:
        assert isinstance(summary, RunSummary) and isinstance(summary.verdict, Verdict)
        assert all(isinstance(v, str) and v.isprintable() for v in (summary.kernel, summary.release,
                                                                   summary.verdict_line(), summary.detail))


@FUZZ
@given(st.binary(max_size=500) | state_like.map(lambda v: json.dumps(v).encode()))
def test_matrix_state(data):
    state = read_state(_file(data, "state.json").parent)
    assert isinstance(state, dict) and isinstance(state.get("state", ""), str)
    assert all(type(v) is int for v in state.get("counts", {}).values())


@FUZZ
@given(st.binary(max_size=300) | features_like.map(lambda v: json.dumps(v).encode()),
       st.binary(max_size=300) | summary_like.map(lambda v: json.dumps(v).encode()))
def test_features_and_guest_json(features, guest):
    folder = _file(features, "features.json").parent
    (folder / "guest.json").write_bytes(guest)
    files = load_guest_files(folder)
    assert isinstance(files.features, dict)
    assert isinstance(files.guest.get("release", ""), str)
    assert files.tests is None and not files.problem


@FUZZ
@given(features_like)
def test_feature_states_from_any_features_json(doc):
    states = judge(doc.get("groups"), str(doc.get("release") or "7.2.13")[:256], Policy())
    assert [s.name for s in states] == ["open_tree_ns", "fsmount_ns", "empty_mntns"]
    assert all(len(s.detail) <= 500 for s in states)


@FUZZ
@given(st.lists(st.tuples(st.text(max_size=40), st.sampled_from(list(Outcome)), st.text(max_size=80)), max_size=6))
def test_ktap_is_one_line_per_test(tests):
    out = to_ktap([results.TestResult(n, o, 0.0, m) for n, o, m in tests]).splitlines()
    assert out[:2] == ["KTAP version 1", f"1..{len(tests)}"]
    lines = [ln for ln in out[2:] if not ln.startswith("# ")]
    assert len(lines) == len(tests)
    # kselftest's totals last, adding up to the tests.
    totals = dict(kv.split(":") for kv in out[-1].removeprefix("# Totals: ").split())
    assert out[-1].startswith("# Totals: ") and sum(map(int, totals.values())) == len(tests)
    for i, line in enumerate(lines, 1):
        assert line.startswith((f"ok {i} ", f"not ok {i} "))
        # The only directives are the ones otns writes.
        assert line.count("#") == (1 if " # SKIP" in line or " # ERROR" in line else 0)


console_lines = st.lists(st.sampled_from([
    "[    1.000000] Kernel panic - not syncing: x", "BUG: kernel NULL pointer", "Oops: 0000", "---[ end trace ]---",
    "WARNING: CPU: 0 PID: 1 at x", "INFO: task ", "INFO: task x blocked for more than 1 s", "Linux version 7",
    "watchdog: BUG: soft lockup", "", "\x00\xff", "[ 0.1 ]"]) | st.text(max_size=60), max_size=60)


@FUZZ
@given(console_lines)
def test_console_parser(lines):
    text = "\n".join(lines)
    reports = console.crash_reports(text)
    assert all(isinstance(r, str) and r for r in reports)
    assert isinstance(console.is_crash(text), bool) and isinstance(console.is_panic(text), bool)
    assert len(console.tail(text, 3).splitlines()) <= 3


def test_console_parser_is_linear_on_hostile_lines():
    # One 64 KiB line (the longest the host keeps) of repeated report openings.
    line = ("INFO: task " * 6000)[:65536]
    start = time.monotonic()
    console.crash_reports("\n".join([line] * 4))
    assert time.monotonic() - start < 2
