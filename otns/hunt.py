"""Regression hunting over Debian's kernel releases: run kernels, judge them, bisect, explain.

Result folders are kept per kernel under the output folder, so a kernel run for one test
(or one bisect) answers for every other test it ran: nothing boots twice.
"""
from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from debian.changelog import Changelog

from kernels import catalog, fetch
from kernels.debian import DebianKernel, UnknownVersion, resolve, upstream_key
from kernels.spec import parse_spec

from .bisect import Result, Step, judge_outcome, search
from .errors import BadInput
from .results import parse_junit
from .run import RunOptions, execute

CONFORMANCE_PREFIX = "conformance/"


def normalise_test_id(test_id: str) -> str:
    return test_id if test_id.startswith(CONFORMANCE_PREFIX) else CONFORMANCE_PREFIX + test_id


def kernels_between(cache_dir: Path, good: str, bad: str, flavour: str,
                    notice: Callable[[str], None]) -> list[DebianKernel]:
    """The Debian kernels from good to bad inclusive, one per upstream version, in Debian's order."""
    specs = [parse_spec(s, flavour) for s in (good, bad)]
    if any(s.kind != "debian" for s in specs):
        raise BadInput("bisect across releases takes debian:VERSION specs for --good and --bad")
    _, all_kernels = catalog.load(cache_dir, notice=notice)
    try:
        lo, hi = (resolve(all_kernels, s.value, flavour) for s in specs)
    except UnknownVersion as e:
        raise BadInput(str(e)) from None
    newest: dict[str, DebianKernel] = {}
    for k in all_kernels:  # oldest first: the last one per upstream version wins
        if k.flavour == flavour:
            newest[k.upstream] = k
    ordered = sorted(newest.values(), key=lambda k: upstream_key(k.upstream))
    a, b = sorted((upstream_key(lo.upstream), upstream_key(hi.upstream)))
    span = [k for k in ordered if a <= upstream_key(k.upstream) <= b]
    if upstream_key(lo.upstream) > upstream_key(hi.upstream):
        span.reverse()  # --good may be the newer one (e.g. hunting a fix backwards)
    if len(span) < 2:
        raise BadInput(f"--good and --bad name the same kernel ({lo.upstream})")
    return span


@dataclass
class Runner:
    """Runs kernels (the whole suite, or a selection) and remembers their result folders."""

    cache_dir: Path
    out: Path
    timeout: float = 300.0
    select: list[str] | None = None  # pytest node ids; None: the whole suite
    boots: int = 0

    def folder(self, k: DebianKernel) -> Path:
        return self.out / f"{k.upstream}-{k.flavour}"

    def outcomes(self, k: DebianKernel, tests: list[str]) -> tuple[dict[str, str | None], str, float]:
        """Each test's outcome on kernel k and the run's verdict, booting only if no earlier
        run of k covered all the tests."""
        folder = self.folder(k)
        known = self._known(folder)
        if known is not None and all(t in known[0] for t in tests):
            return {t: known[0][t] for t in tests}, known[1], 0.0
        start = time.monotonic()
        opts = RunOptions(spec=parse_spec(f"debian:{k.upstream}", k.flavour), cache_dir=self.cache_dir,
                          results=folder, timeout=self.timeout, show_progress=False,
                          pytest_args=["--color=no", *(self.select or [])])
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / f"{folder.name}.log", "w") as log:
            summary, _ = execute(opts, lambda m: log.write(m + "\n"), log.write)
        self.boots += 1
        known = self._known(folder) or ({}, summary.verdict_line())
        return {t: known[0].get(t) for t in tests}, known[1], time.monotonic() - start

    @staticmethod
    def _known(folder: Path) -> tuple[dict[str, str], str] | None:
        summary, junit = folder / "summary.json", folder / "junit.xml"
        if not summary.is_file():
            return None
        verdict = json.loads(summary.read_text()).get("verdict_line", "")
        tests = {t.name: t.outcome.value for t in parse_junit(junit)} if junit.is_file() else {}
        return tests, verdict


def outcome_sets(find: str, bad_outcome: str | None) -> tuple[set[str], set[str]]:
    """(good, bad) outcomes: a regression goes pass -> fail, a fix fail -> pass."""
    if bad_outcome:
        return {"pass", "fail", "skip", "error"} - {bad_outcome}, {bad_outcome}
    return ({"pass"}, {"fail"}) if find == "regression" else ({"fail"}, {"pass"})


def bisect_test(runner: Runner, kernels: list[DebianKernel], test: str, good: set[str], bad: set[str],
                on_step: Callable[[Step], None]) -> Result:
    def judge(i: int) -> Step:
        outs, verdict, seconds = runner.outcomes(kernels[i], [test])
        step = Step(i, kernels[i].upstream, outs[test] or verdict, judge_outcome(outs[test], verdict, good, bad),
                    seconds)
        on_step(step)
        return step
    return search([k.upstream for k in kernels], judge)


# Changelog lines that may concern the suite's subject, shown first (the full list goes to a file).
RELEVANT = re.compile(r"namespace|mount|open_tree|nsfs|pidfs|nullfs|statmount|listmount|\bvfs\b|userns", re.I)


def changelog_between(cache_dir: Path, older: DebianKernel, newer: DebianKernel) -> list[str]:
    """Debian changelog entries of the newer kernel's packages that are newer than the older
    kernel: the upstream releases and fixes that lie between the two."""
    root = fetch.cached_folder(cache_dir, newer) / "root" / "usr" / "share" / "doc"
    files = sorted(root.glob("*/changelog.Debian.gz")) if root.is_dir() else []
    if not files:
        return []
    with gzip.open(files[0], "rt", errors="replace") as f:
        return changelog_entries(f, older.upstream)


def changelog_entries(f: IO[str], older_upstream: str) -> list[str]:
    """The entries of a Debian changelog newer than upstream version older_upstream, newest first."""
    log = Changelog(f, max_blocks=200, strict=False)
    older_v = upstream_key(older_upstream)
    lines = []
    for block in log:
        up = str(block.version).split("-")[0].replace("~rc", "-rc")
        try:
            if upstream_key(up) <= older_v:
                break
        except ValueError:
            continue
        lines.append(f"{block.package} ({block.version}):")
        lines += [ln for ln in block.changes() if ln.strip()]
    return lines
