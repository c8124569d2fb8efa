"""Which rows of a report over many kernels matter, and in which order.

Each cell gets a grade. A skip whose reason is a guest probe's claim that a feature is absent
(features.json; the one way a conformance test skips for a feature, see conformance/conftest.py)
is graded by the state the host judged the feature in (summary.json "features", otns/results/absence.py): absent and
acceptable (its version predates the feature, --allow-absent, =may-lack) is an expected skip,
neither a failure nor a difference; absent where the kernel must have it is a failure. A test
that was running when its kernel crashed or hung is a crash.

Rows go failures first (any cell failing), then real differences (the outcomes differ once
expected skips and tests a kernel never ran are set aside), then the rest. Each row carries the
test's rules and known fixes, as the kernels' junit.xml recorded them.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conformance.features import BY_PROBE

from ..results.absence import ABSENT_OK, State
from ..results.files import FEATURES, read_object
from ..results.model import Outcome, Verdict, marks_line, skip_reason

if TYPE_CHECKING:
    from ..results.files import KernelResults


class Grade(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    CRASH = "crash"  # running when the kernel crashed or hung
    SKIP = "skip"  # skipped for a reason other than an absent feature
    SKIP_ABSENT = "skip-absent"  # the feature is absent and this kernel may lack it
    SKIP_REQUIRED = "skip-required"  # the feature is absent but this kernel must have it
    MISSING = "missing"  # the kernel has no result for this test


FAILING = frozenset({Grade.FAIL, Grade.ERROR, Grade.CRASH, Grade.SKIP_REQUIRED})
# Cells that say nothing about the test itself: the kernel's head says why.
NEUTRAL = frozenset({Grade.SKIP_ABSENT, Grade.MISSING})
_FROM_OUTCOME = {Outcome.PASS: Grade.PASS, Outcome.FAIL: Grade.FAIL, Outcome.ERROR: Grade.ERROR,
                 Outcome.SKIP: Grade.SKIP}


class Section(str, enum.Enum):
    FAILURES = "failures"
    DIFFERENCES = "differences"
    ABSENT_ONLY = "absent-only"  # the same outcome except for expected skips
    SAME = "same"


@dataclass(frozen=True)
class Cell:
    grade: Grade
    message: str = ""
    feature: str = ""  # the feature whose absence skipped the test


@dataclass(frozen=True)
class Row:
    test: str
    cells: tuple[Cell, ...]
    section: Section
    rules: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()

    @property
    def marks(self) -> str:
        """Its rules and known fixes in one line ("" when no kernel recorded any)."""
        return marks_line(self.rules, self.fixes)


def absence_claims(k: KernelResults) -> dict[str, tuple[str, State | None]]:
    """Each probe's claim that a feature is absent (its detail, the skip reason of the tests that
    need it), from the guest's features.json, with the feature and the state the host judged it
    in (summary.json "features")."""
    found = read_object(k.folder / FEATURES) or {}
    probes = listed if isinstance(listed := found.get("features"), dict) else {}
    judged = {f.name: f.state for f in k.summary.features} if k.summary else {}
    claims = {}
    for probe, p in probes.items():
        spec = BY_PROBE.get(probe)
        if spec is None or not isinstance(p, dict) or p.get("state") != "absent":
            continue
        if not isinstance(p.get("detail"), str):
            continue
        claims[p["detail"].strip()] = (spec.name, judged.get(spec.name))
    return claims


def _running(k: KernelResults) -> list[str]:
    if k.summary is None or k.summary.verdict not in (Verdict.CRASHED, Verdict.HUNG):
        return []
    return k.summary.running


def cell(k: KernelResults, test: str, claims: dict[str, tuple[str, State | None]]) -> Cell:
    """The grade of k's result for test; claims is absence_claims(k)."""
    t = k.tests.get(test)
    if t is None:
        if test in _running(k):
            return Cell(Grade.CRASH, k.summary.detail if k.summary else "")
        return Cell(Grade.MISSING)
    absent = claims.get(skip_reason(t.message).strip()) if t.outcome is Outcome.SKIP else None
    if absent:
        name, state = absent
        if state in ABSENT_OK:
            return Cell(Grade.SKIP_ABSENT, t.message, name)
        judged = state.value if state else "not judged"
        return Cell(Grade.SKIP_REQUIRED, f"{t.message} (feature {name}: {judged}, so it must not skip)", name)
    return Cell(_FROM_OUTCOME[t.outcome], t.message)


def test_names(kernels: list[KernelResults]) -> list[str]:
    """Every test any kernel ran (or was running when it crashed), in the suite's order."""
    names: dict[str, None] = {}
    for k in kernels:
        for n in [*k.tests, *_running(k)]:
            names.setdefault(n, None)
    return list(names)


def section(cells: tuple[Cell, ...]) -> Section:
    if any(c.grade in FAILING for c in cells):
        return Section.FAILURES
    if len({c.grade for c in cells if c.grade not in NEUTRAL}) > 1:
        return Section.DIFFERENCES
    if any(c.grade is Grade.SKIP_ABSENT for c in cells) and any(c.grade not in NEUTRAL for c in cells):
        return Section.ABSENT_ONLY
    return Section.SAME


ORDER = list(Section)


def rows(kernels: list[KernelResults]) -> list[Row]:
    """One row per test: failures, then differences, then the rest; the suite's order within each."""
    claims = [absence_claims(k) for k in kernels]
    out = []
    for n in test_names(kernels):
        cells = tuple(cell(k, n, c) for k, c in zip(kernels, claims, strict=True))
        ran = [k.tests[n] for k in kernels if n in k.tests]
        out.append(Row(n, cells, section(cells), tuple(dict.fromkeys(r for t in ran for r in t.rules)),
                       tuple(dict.fromkeys(f for t in ran for f in t.fixes))))
    return sorted(out, key=lambda r: ORDER.index(r.section))


def expected_skips(k: KernelResults) -> int:
    """How many of the kernel's skips are expected: a feature it may lack is absent."""
    claims = absence_claims(k)
    return sum(cell(k, n, claims).grade is Grade.SKIP_ABSENT for n in k.tests)
