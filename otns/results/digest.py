"""The lines that end a run's and a matrix's output, above the verdict: what a reader of a
terminal or a CI log needs to understand a failure without opening a file.

- the skips, counted once per reason (an absent feature's reason marked expected or not);
- each failing test on one line: its id, its rules, the known fix it lacks said for the
  kernel's own line of stable releases, and the first line of its message;
- the features absent as expected, on their own line.

Read from a loaded results folder (otns.resultfiles.KernelResults), so a run, a matrix and a
recorded folder give the same lines.
"""
from __future__ import annotations

import re
from collections import Counter

from base.safefs import printable
from conformance.marks import tag

from .absence import ABSENT_OK, FeatureState, State
from .files import KernelResults
from .model import Outcome, TestResult, skip_reason

# The tag conformance/marks.py puts first on a failure's message ("[rule OT-DIR; known fix ...] ").
_TAG = re.compile(r"^\[(?:rules? |known fix )[^\]]*\] ")
_ERROR_CLASS = re.compile(r"^(?:AssertionError|Failed): ")
# An absent feature's skip: "the kernel lacks X (new in Linux 7.1): what the probe saw".
_LACKS = re.compile(r"^(?P<what>the kernel lacks [^:]+?)(?:: .*)?$", re.S)
LINE = 600  # at most this many characters of a message on a failure's line


def reason_of(t: TestResult) -> str:
    """A failure's one-line reason: its message without the rule tag (the line states the marks
    itself) and without the exception's class name."""
    first = next((ln for ln in t.message.strip().splitlines() if ln.strip()), "")
    first = _ERROR_CLASS.sub("", _TAG.sub("", first.strip()))
    return printable(first, LINE) or "(no message)"


def marks_of(t: TestResult, release: str) -> str:
    """Its rules and known fixes, the fixes said for the line of `release` ("[rule OT-DIR; known
    fix ENOTDIR_TARGET: fixed in 7.0.13 (7.0.12 lacks it)]"); a failure without is said so."""
    return tag(t.rules, t.fixes, release) or "[no rule named]"


def failure_line(t: TestResult, release: str) -> str:
    word = "ERROR" if t.outcome is Outcome.ERROR else "FAILED"
    return f"{word} {t.name} {marks_of(t, release)} {reason_of(t)}"


def skip_lines(tests: list[TestResult], features: list[FeatureState]) -> list[str]:
    """One line per reason, the most frequent first: "  63  the kernel lacks X (...) - expected
    (Linux 7.0 predates it ...)"."""
    reasons: Counter[str] = Counter()
    for t in tests:
        if t.outcome is Outcome.SKIP:
            why = skip_reason(t.message).strip().splitlines()[0] if t.message.strip() else "(no reason)"
            m = _LACKS.match(why)
            reasons[m["what"] if m else why] += 1
    if not reasons:
        return []
    lines = [f"skipped {sum(reasons.values())}, by reason:"]
    width = len(str(max(reasons.values())))
    for why, n in reasons.most_common():
        lines.append(f"  {n:>{width}}  {printable(why, LINE)}{_judged(why, features)}")
    return lines


_JUDGED = {State.ABSENT_EXPECTED: "expected", State.ABSENT_ALLOWED: "allowed", State.ABSENT_REQUIRED: "NOT expected"}


def _judged(why: str, features: list[FeatureState]) -> str:
    """How the run judged the absence a skip reason names: expected, allowed, or required."""
    if not why.startswith("the kernel lacks "):
        return ""
    for f in features:
        if f.detail.startswith(why) and f.state in _JUDGED:
            return f" - {_JUDGED[f.state]}: {f.reason}"
    return ""


def absence_line(features: list[FeatureState]) -> str:
    """The features absent as expected or allowed, on one line ("" when none)."""
    absent = [f"{f.name}: {f.reason}" for f in features if f.state in ABSENT_OK]
    return f"absent as expected: {'; '.join(absent)}" if absent else ""


def failures(k: KernelResults) -> list[TestResult]:
    return [t for t in k.tests.values() if t.outcome in (Outcome.FAIL, Outcome.ERROR)]


def digest(k: KernelResults, skips: bool = True) -> list[str]:
    """The lines that go above a kernel's verdict: skips by reason, then failures, then absences."""
    features = k.summary.features if k.summary else []
    release = k.summary.release if k.summary else ""
    lines = skip_lines(list(k.tests.values()), features) if skips else []
    failed = failures(k)
    if failed:
        lines.append(f"failed {len(failed)}, each with its rules and the known fix it lacks:")
        lines += [failure_line(t, release) for t in failed]
    absent = absence_line(features)
    return lines + ([absent] if absent else [])
