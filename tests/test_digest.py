"""The end of a run's and a matrix's output (otns.digest), on recorded results: each failure on one
line with its rules and the fix of the kernel's own line, skips counted per reason."""
from __future__ import annotations

from pathlib import Path

from otns.results.digest import digest, failure_line
from otns.results.files import load_folder
from otns.results.model import Outcome
from otns.results.model import TestResult as Result

DATA = Path(__file__).parent / "data"


def test_each_failure_is_one_line_with_its_rules_and_fix() -> None:
    k = load_folder(DATA / "results-7.0.4")
    lines = digest(k)
    failed = [t for t in k.tests.values() if t.outcome is Outcome.FAIL]
    assert failed, "the recorded 7.0.4 run has failures"
    for t in failed:
        mine = [ln for ln in lines if ln.startswith(f"FAILED {t.name} ")]
        assert len(mine) == 1, t.name
        line = mine[0]
        assert t.rules and all(r in line for r in t.rules), line
        assert all(f"known fix {f}: " in line for f in t.fixes), line
        # Its own message's first line, not the tag the guest put on it twice.
        assert line.count("[rule") == 1 and "AssertionError" not in line
    # The ENOTDIR fix, said for 7.0's line: the 7.0 kernel that has it, not another line's.
    enotdir = next(ln for ln in lines if "test_target_must_be_directory" in ln)
    assert "fixed in 7.0.13 (7.0.12 lacks it)" in enotdir


def test_failures_come_last_above_the_absences_and_skips_fold_per_reason() -> None:
    k = load_folder(DATA / "results-7.0.4")
    lines = digest(k)
    skipped = sum(t.outcome is Outcome.SKIP for t in k.tests.values())
    assert lines[0] == f"skipped {skipped}, by reason:"
    counts = [int(ln.split()[0]) for ln in lines[1:] if ln.startswith("  ")]
    assert sum(counts) == skipped and len(counts) < 10, lines[:12]
    assert not any("SKIPPED" in ln for ln in lines)
    first_failure = next(i for i, ln in enumerate(lines) if ln.startswith("FAILED "))
    assert all(ln.startswith("FAILED ") for ln in lines[first_failure:-1])
    # Features absent as the version says: on their own line, marked expected, in the skip groups too.
    assert lines[-1].startswith("absent as expected: ") and "fsmount_ns: Linux 7.0 predates it" in lines[-1]
    assert any("FSMOUNT_NAMESPACE" in ln and "- expected: " in ln for ln in lines[1:len(counts) + 1])


def test_a_passing_run_has_only_its_skips() -> None:
    k = load_folder(DATA / "results-7.3.4")
    lines = digest(k)
    assert not any(ln.startswith(("FAILED", "ERROR")) for ln in lines)


def test_a_test_without_rule_says_so_and_a_hostile_message_stays_on_one_line() -> None:
    t = Result("conformance/test_x.py::test_y", Outcome.FAIL, message="AssertionError: a\x1b[2Jb\nsecond line")
    line = failure_line(t, "7.0.4+deb13-cloud-amd64")
    assert "[no rule named]" in line and "\x1b" not in line and "\n" not in line and "second" not in line


def test_the_guest_lists_no_skipped_line_each() -> None:
    from vm.guest import pytest_args
    args = pytest_args(Path("/r"), [])
    assert "-rfE" in args and not any(a.startswith("-r") and "s" in a for a in args)

