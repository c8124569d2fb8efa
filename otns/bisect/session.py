"""One `otns bisect`: which tests, over which Debian kernels, and what each search found, with the
changelog between the two kernels it ended on and the likeliest causes in it. The command prints
what this returns, as it comes."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kernels.debian import DebianKernel

from ..options import VmSettings
from ..results.files import write_changelog
from ..run.preflight import check_test_ids
from . import cause, hunt
from .search import Result, Step


@dataclass
class Bisect:
    """What to search: the tests, the kernels between the two ends, and who runs them."""

    tests: list[str]
    flavour: str
    kernels: list[DebianKernel]
    runner: hunt.Runner
    good: set[str]  # outcomes of the old behaviour
    bad: set[str]  # outcomes of the new behaviour


@dataclass
class Found:
    """One test's search, explained: its result, and where the search ended, the changelog
    between (all of it in changelog_file) and the lines likeliest to have caused the change."""

    test: str
    result: Result
    last_good: DebianKernel | None = None
    first_bad: DebianKernel | None = None
    skipped: list[str] = field(default_factory=list)  # kernels between them that could not be tested
    changelog: list[str] = field(default_factory=list)
    changelog_file: Path | None = None
    relevant: list[str] = field(default_factory=list)  # lines about mounts and namespaces, in changelog order
    causes: list[str] = field(default_factory=list)  # the likeliest, ranked


def prepare(tests: list[str], ends: list[str] | list[hunt.Recorded], flavour: str, find: str, bad_outcome: str | None,
            cache_dir: Path, out: Path, vm: VmSettings, notice: Callable[[str], object],
            progress: Callable[[str], object] | None = None) -> Bisect:
    """Check the tests (a typo must not cost two downloads and two boots) and find the kernels."""
    check_test_ids(tests, cache_dir)
    kernels = hunt.kernels_between(cache_dir, ends[0], ends[1], flavour, notice)
    # All the tests at once: one boot per kernel answers them all. Both ends, then a binary
    # search over the kernels between them: at most this many boots.
    most = 2 + (len(kernels) - 2).bit_length()
    runner = hunt.Runner(cache_dir=cache_dir, out=out, vm=vm, select=tests, progress=progress, most=most)
    good, bad = hunt.outcome_sets(find, bad_outcome)
    return Bisect(tests, flavour, kernels, runner, good, bad)


def find(b: Bisect, test: str, cache_dir: Path, out: Path, on_step: Callable[[Step], None]) -> Found:
    """One test's search, explained; on_step as each kernel is judged."""
    res = hunt.bisect_test(b.runner, b.kernels, test, b.good, b.bad, on_step)
    found = Found(test, res)
    if res.error or res.last_good is None or res.first_bad is None:
        return found
    lg, fb = b.kernels[res.last_good], b.kernels[res.first_bad]
    found.last_good, found.first_bad = lg, fb
    found.skipped = [b.kernels[i].upstream for i in res.skipped_between]
    found.changelog = hunt.changelog_between(cache_dir, lg, fb)
    if found.changelog:
        found.changelog_file = write_changelog(out, lg.upstream, fb.upstream, found.changelog)
        found.relevant = [ln.strip() for ln in found.changelog if hunt.RELEVANT.search(ln)]
        found.causes = cause.likely_causes(test, found.relevant, *b.runner.marks(test, [fb, lg]))
    return found
