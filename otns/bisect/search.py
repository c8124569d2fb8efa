"""`otns bisect`: binary search over Debian's kernel releases for where a test's outcome changed.

The search is git bisect's: the two ends are tested first, then the untested kernel nearest
the middle of the open interval, until good and bad are neighbours among the tested. A
kernel that crashes, hangs or cannot boot is skipped (like `git bisect skip`) and the
search goes on around it; the answer says when a skipped kernel leaves the boundary
ambiguous. Kernels already run for one test are not booted again for another.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..results.model import Verdict

GOOD, BAD, SKIP = "good", "bad", "skip"


@dataclass
class Step:
    index: int
    label: str
    outcome: str  # the test's outcome (pass/fail/skip/error) or the run's verdict when untestable
    judged: str  # good | bad | skip
    seconds: float = 0.0


@dataclass
class Result:
    labels: list[str]
    steps: list[Step] = field(default_factory=list)
    last_good: int | None = None
    first_bad: int | None = None
    skipped_between: list[int] = field(default_factory=list)
    error: str = ""

    @property
    def ambiguous(self) -> bool:
        return bool(self.skipped_between)


def search(labels: list[str], judge: Callable[[int], Step]) -> Result:
    """Find neighbours last_good < first_bad among labels[0] (good end) .. labels[-1] (bad end).

    judge(i) runs kernel i and says good, bad or skip.
    """
    result = Result(labels)
    seen: dict[int, str] = {}

    def run(i: int) -> str:
        if i not in seen:
            step = judge(i)
            result.steps.append(step)
            seen[i] = step.judged
        return seen[i]

    lo, hi = 0, len(labels) - 1
    first, last = run(lo), run(hi)
    if first != GOOD:
        result.error = f"the good end {labels[lo]} is not good ({first})"
        return result
    if last != BAD:
        result.error = f"the bad end {labels[hi]} is not bad ({last})"
        return result
    while True:
        untested = [i for i in range(lo + 1, hi) if i not in seen]
        if not untested:
            break
        mid = (lo + hi) / 2
        i = min(untested, key=lambda j: (abs(j - mid), j))
        verdict = run(i)
        if verdict == GOOD:
            lo = i
        elif verdict == BAD:
            hi = i
    result.last_good, result.first_bad = lo, hi
    result.skipped_between = [i for i in range(lo + 1, hi) if seen.get(i) == SKIP]
    return result


def judge_outcome(outcome: str | None, verdict: Verdict | str | None, good: set[str], bad: set[str]) -> str:
    """good/bad/skip for one kernel: untestable kernels (crash, hang, no boot, test absent) skip.
    The verdict may be given as stored (a name, or a verdict line)."""
    if isinstance(verdict, str):
        verdict = Verdict.of(verdict)
    if (verdict is not None and verdict.untestable) or outcome is None:
        return SKIP
    if outcome in good:
        return GOOD
    if outcome in bad:
        return BAD
    return SKIP
