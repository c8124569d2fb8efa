"""The bisect search itself (a pure unit): against a linear scan of the same outcomes."""
from __future__ import annotations

import itertools

import pytest

from otns.bisect.search import BAD, GOOD, SKIP, Step, judge_outcome, search


def run_search(outcomes: list[str]):
    calls = []

    def judge(i: int) -> Step:
        calls.append(i)
        return Step(i, str(i), outcomes[i], outcomes[i])
    return search([str(i) for i in range(len(outcomes))], judge), calls


def linear_boundary(outcomes: list[str]) -> tuple[int, int]:
    first_bad = next(i for i, o in enumerate(outcomes) if o == BAD)
    last_good = max(i for i, o in enumerate(outcomes[:first_bad]) if o == GOOD)
    return last_good, first_bad


@pytest.mark.parametrize("n", [2, 3, 5, 8, 17, 40])
def test_monotone_sequences_match_a_linear_scan(n):
    for cut in range(1, n):
        outcomes = [GOOD] * cut + [BAD] * (n - cut)
        res, calls = run_search(outcomes)
        assert (res.last_good, res.first_bad) == (cut - 1, cut)
        assert not res.ambiguous
        assert len(calls) == len(set(calls)), "a kernel was booted twice"
        # the fewest boots: both ends plus about log2 of the rest
        assert len(calls) <= 2 + (n - 2).bit_length()


def test_skips_are_searched_around_and_reported():
    outcomes = [GOOD, GOOD, SKIP, BAD, BAD]
    res, _ = run_search(outcomes)
    assert (res.last_good, res.first_bad) == (1, 3) and res.skipped_between == [2] and res.ambiguous
    outcomes = [GOOD, SKIP, GOOD, BAD, BAD]
    res, _ = run_search(outcomes)
    assert (res.last_good, res.first_bad) == (2, 3) and not res.ambiguous


def test_every_pattern_of_six_agrees_with_linear_where_unambiguous():
    for middle in itertools.product([GOOD, BAD, SKIP], repeat=4):
        outcomes = [GOOD, *middle, BAD]
        if any(o == GOOD for o in outcomes[outcomes.index(BAD):]):
            continue  # not monotone: bisect assumes one change
        res, _ = run_search(outcomes)
        lg, fb = linear_boundary(outcomes)
        assert res.first_bad == fb or res.ambiguous
        assert res.last_good == lg or res.ambiguous


def test_ends_must_be_what_they_claim():
    res, _ = run_search([BAD, BAD, BAD])
    assert "good end" in res.error
    res, _ = run_search([GOOD, GOOD, SKIP])
    assert "bad end" in res.error


def test_judging():
    assert judge_outcome("pass", "CONFORMS", {"pass"}, {"fail"}) == GOOD
    assert judge_outcome("fail", "DOES NOT CONFORM (1 failed)", {"pass"}, {"fail"}) == BAD
    assert judge_outcome(None, "CRASHED", {"pass"}, {"fail"}) == SKIP
    assert judge_outcome("pass", "HUNG", {"pass"}, {"fail"}) == SKIP
    assert judge_outcome("skip", "FEATURE ABSENT", {"pass"}, {"fail"}) == SKIP
    assert judge_outcome("skip", "FEATURE ABSENT", {"pass"}, {"skip"}) == BAD
