"""`otns diff` on two real runs (tests/data: Debian's 7.0.4 and 7.3.4, the same suite): the kinds
of difference with their counts, the real ones first and listed, the expected skips counted."""
from __future__ import annotations

import json
from pathlib import Path

from otns.report.diff import groups
from otns.results.files import load_folder
from otns.results.model import Outcome

DATA = Path(__file__).parent / "data"
OLD, NEW = DATA / "results-7.0.4", DATA / "run-7.3.4"


def test_real_differences_come_first_and_expected_skips_are_counted() -> None:
    a, b = load_folder(OLD), load_folder(NEW)
    found = groups(a, b)
    fixed = [n for n, t in a.tests.items() if t.outcome is Outcome.FAIL and b.tests[n].outcome is Outcome.PASS]
    assert found[0].kind == "fail -> pass" and [r.test for r in found[0].rows] == fixed
    expected = [g for g in found if g.expected]
    assert expected and all(not g.expected for g in found[:len(found) - len(expected)])
    # Every test that skipped on 7.0.4 for a feature it may lack and passes on 7.3.4 is one of them.
    lacking = [n for n, t in a.tests.items() if t.outcome is Outcome.SKIP and "the kernel lacks" in t.message
               and b.tests[n].outcome is Outcome.PASS]
    assert sum(len(g.rows) for g in expected) == len(lacking) > 50


def test_the_command_lists_real_rows_and_folds_expected_ones(otns) -> None:
    r = otns("diff", str(OLD), str(NEW), results=False)
    assert r.code == 1
    lines = r.stdout.splitlines()
    assert lines[0].startswith("fail -> pass: ") and lines[1].startswith("  conformance/")
    assert any(ln.startswith("skip (feature absent, expected) -> pass: ") and ln.endswith("(expected)") for ln in lines)
    assert "in behaviour" in lines[-1] and "only by an expected skip" in lines[-1]
    folded = [ln for ln in lines if ln.startswith("  ")]
    assert len(folded) == int(lines[0].split(": ")[1])  # only the real rows are listed


def test_an_equal_pair_is_one_line_and_json_has_the_groups(otns) -> None:
    same = otns("diff", str(NEW), str(NEW), results=False)
    assert same.code == 0 and same.stdout.count("\n") == 1 and same.stdout.startswith("no test differs")
    r = otns("diff", "--json", str(OLD), str(NEW), results=False)
    doc = json.loads(r.stdout)
    assert doc["a"]["verdict"] == "NONCONFORMING" and doc["b"]["verdict"] == "CONFORMS"
    assert doc["groups"][0]["kind"] == "fail -> pass" and not doc["groups"][0]["expected"]
