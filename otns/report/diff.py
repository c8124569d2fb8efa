"""`otns diff`'s answer: the tests whose outcome differs between two results folders, grouped by
kind (fail -> pass, pass -> skip, ...), the real differences first and those that are only an
expected skip (a feature one kernel may lack) last, as otns.report.rows grades them."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..results.files import KernelResults
from .rows import Grade, Row, rows

# How a grade reads in a kind ("absent" alone would not say the skip was expected).
WORD = {Grade.PASS: "pass", Grade.FAIL: "fail", Grade.ERROR: "error", Grade.CRASH: "crash", Grade.SKIP: "skip",
        Grade.SKIP_ABSENT: "skip (feature absent, expected)", Grade.SKIP_REQUIRED: "skip (feature absent, required)",
        Grade.MISSING: "not run"}
# Real differences in this order: a failure appears or goes first.
_WEIGHT = {Grade.FAIL: 0, Grade.ERROR: 0, Grade.CRASH: 0, Grade.SKIP_REQUIRED: 0, Grade.PASS: 1, Grade.SKIP: 2}


@dataclass
class Group:
    before: Grade
    after: Grade
    rows: list[Row] = field(default_factory=list)

    @property
    def expected(self) -> bool:
        """Only an expected skip (a feature one kernel may lack): no difference in behaviour."""
        return Grade.SKIP_ABSENT in (self.before, self.after)

    @property
    def unmatched(self) -> bool:
        """A test one side never ran (another version of the suite, or a selection)."""
        return not self.expected and Grade.MISSING in (self.before, self.after)

    @property
    def kind(self) -> str:
        return f"{WORD[self.before]} -> {WORD[self.after]}"


def groups(a: KernelResults, b: KernelResults) -> list[Group]:
    """The differing tests by kind: real differences first (failures appearing or going first),
    then tests one side did not run, then the expected skips; the suite's order within a group."""
    by: dict[tuple[Grade, Grade], Group] = {}
    for r in rows([a, b]):
        x, y = r.cells
        if x.grade is y.grade:
            continue
        by.setdefault((x.grade, y.grade), Group(x.grade, y.grade)).rows.append(r)
    return sorted(by.values(), key=lambda g: (g.expected, g.unmatched, min(_WEIGHT.get(g.before, 3), _WEIGHT.get(g.after, 3)),
                                              -len(g.rows)))


def summary_line(a: KernelResults, b: KernelResults, found: list[Group]) -> str:
    real = sum(len(g.rows) for g in found if not g.expected and not g.unmatched)
    unmatched = sum(len(g.rows) for g in found if g.unmatched)
    expected = sum(len(g.rows) for g in found if g.expected)
    head = f"{a.name} ({_release(a)}) -> {b.name} ({_release(b)})"
    if not found:
        return f"no test differs: {head}"
    parts = [f"{real} {'test differs' if real == 1 else 'tests differ'} in behaviour",
             f"{expected} only by an expected skip"] + ([f"{unmatched} ran on one side only"] if unmatched else [])
    return f"{', '.join(parts)}: {head}"


def _release(k: KernelResults) -> str:
    return (k.summary.release if k.summary else "") or "?"
