"""Regression hunting over Debian's kernel releases: run kernels, judge them, bisect, explain.

Result folders are kept per kernel under the output folder, so a kernel run for one test
(or one bisect) answers for every other test it ran: nothing boots twice.
"""
from __future__ import annotations

import gzip
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from debian.changelog import Changelog

from base.errors import BadInput
from base.safefs import printable
from kernels import fetch
from kernels.debian import FLAVOURS, DebianKernel, newest_per_upstream, upstream_key
from kernels.resolve import Resolver
from kernels.spec import KernelSpec, Kind, parse_spec

from ..options import VmSettings
from ..results.files import is_finished, load_folder, open_kernel_log
from ..results.model import RunSummary, Verdict
from ..run.execute import RunOptions, execute
from .search import Result, Step, judge_outcome, search

CONFORMANCE_PREFIX = "conformance/"


def normalise_test_id(test_id: str) -> str:
    return test_id if test_id.startswith(CONFORMANCE_PREFIX) else CONFORMANCE_PREFIX + test_id


@dataclass(frozen=True)
class Recorded:
    """The Debian kernel a result folder ran, as its summary.json recorded it."""

    folder: Path
    release: str  # 7.2.13+deb14-cloud-amd64
    debian_version: str  # 7.2.13-1
    flavour: str


def recorded_kernel(folder: Path, summary: RunSummary) -> Recorded:
    """The exact kernel of a result folder: summary.json's "debian" record, or, in folders
    written before it existed, the release and the source ("debian 7.2.13-1 cloud (sid)")."""
    deb = summary.debian
    if deb is not None and all(k in deb for k in ("release", "debian_version", "flavour")):
        if deb["flavour"] not in FLAVOURS:
            raise BadInput(f"{folder}: summary.json records the flavour {printable(deb['flavour'], 40)!r}, which otns "
                           f"does not know ({', '.join(FLAVOURS)})")
        return Recorded(folder, deb["release"], deb["debian_version"], deb["flavour"])
    words = summary.source.split()
    if summary.release and len(words) >= 3 and words[0] == "debian" and words[2] in FLAVOURS:
        return Recorded(folder, summary.release, words[1], words[2])
    raise BadInput(f"{folder} did not run a Debian kernel ({summary.kernel!r}): "
                   "bisect --changed searches between two Debian kernels")


def common_flavour(ends: list[Recorded], requested: str | None) -> str:
    flavours = {e.flavour for e in ends}
    if len(flavours) > 1:
        raise BadInput(f"the two result folders ran different flavours ({', '.join(sorted(flavours))})")
    flavour = flavours.pop()
    if requested and requested != flavour:
        raise BadInput(f"--flavour {requested}, but the result folders ran the {flavour} flavour")
    return flavour


def _find_recorded(all_kernels: list[DebianKernel], rec: Recorded) -> DebianKernel:
    for k in all_kernels:
        if k.release == rec.release and k.debian_version == rec.debian_version:
            return k
    raise BadInput(f"{rec.folder} ran Debian {rec.debian_version} ({rec.release}), which the archive's "
                   "index no longer lists")


def kernels_between(cache_dir: Path, good: str | Recorded, bad: str | Recorded, flavour: str,
                    notice: Callable[[str], object]) -> list[DebianKernel]:
    """The Debian kernels from good to bad inclusive, one per upstream version, in Debian's order.
    Each end is a spec (debian:VERSION) or the exact kernel a result folder recorded."""
    specs = [parse_spec(s, flavour) if isinstance(s, str) else s for s in (good, bad)]
    if any(isinstance(s, KernelSpec) and s.kind is not Kind.DEBIAN for s in specs):
        raise BadInput("bisect across releases takes debian:VERSION specs for --good and --bad")
    resolver = Resolver(cache_dir, notice)
    _, all_kernels = resolver.index()
    lo, hi = (resolver.debian(s) if isinstance(s, KernelSpec) else _find_recorded(all_kernels, s) for s in specs)
    ordered = sorted(newest_per_upstream(all_kernels, flavour), key=lambda k: upstream_key(k.upstream))
    if lo.upstream == hi.upstream:
        raise BadInput(f"--good and --bad name the same kernel ({lo.upstream})")
    if upstream_key(lo.upstream) > upstream_key(hi.upstream):
        # Said before any boot: booting both ends only to find the old end "not good" costs a
        # minute and says less. The search runs forward in time, from the old behaviour to the new.
        raise BadInput(swapped(lo.upstream, hi.upstream))
    a, b = upstream_key(lo.upstream), upstream_key(hi.upstream)
    span = [k for k in ordered if a <= upstream_key(k.upstream) <= b]
    if len(span) < 2:
        raise BadInput(f"the archive lists no {flavour} kernels from {lo.upstream} to {hi.upstream} to search")
    span[0], span[-1] = lo, hi  # the ends are the kernels named, not just their upstream versions
    return span


def swapped(good: str, bad: str) -> str:
    """Why a --good newer than --bad is refused, and the command that was likely meant."""
    return (f"the ends look swapped: --good {good} is newer than --bad {bad}, and bisect searches forward in "
            f"time from the old behaviour (--good, the older kernel) to the new (--bad). For a failure a later "
            f"kernel fixed: --find fix --good debian:{bad} --bad debian:{good}; for a regression: "
            f"--good debian:{bad} --bad debian:{good}")


@dataclass(frozen=True)
class Known:
    """What an earlier run of a kernel said: each test's outcome and the run's verdict."""

    tests: dict[str, str]
    verdict: Verdict | None
    line: str  # the verdict line, shown when the test could not be judged


@dataclass
class Runner:
    """Runs kernels (the whole suite, or a selection) and remembers their result folders."""

    cache_dir: Path
    out: Path
    vm: VmSettings = field(default_factory=VmSettings)
    select: list[str] | None = None  # pytest node ids; None: the whole suite
    boots: int = 0
    # Told before each boot and at each of its phases: a step is 18-22 s under TCG, not silent.
    progress: Callable[[str], object] | None = None
    most: int | None = None  # the boots a search needs when no kernel is skipped: "boot 3 of about 6"

    def folder(self, k: DebianKernel) -> Path:
        return self.out / f"{k.upstream}-{k.flavour}"

    def outcomes(self, k: DebianKernel, tests: list[str]) -> tuple[dict[str, str | None], Known, float]:
        """Each test's outcome on kernel k and the run's verdict, booting only if no earlier
        run of k covered all the tests."""
        folder = self.folder(k)
        known = self._known(folder)
        if known is not None and all(t in known.tests for t in tests):
            return {t: known.tests[t] for t in tests}, known, 0.0
        start = time.monotonic()
        tell = self.progress or (lambda m: None)
        of = f" of about {self.most}" if self.most else ""
        tell(f"boot {self.boots + 1}{of}: {k.upstream} ({k.debian_version}) ...")
        opts = RunOptions(spec=parse_spec(f"debian:{k.debian_version}", k.flavour), cache_dir=self.cache_dir,
                          results=folder, vm=self.vm, show_progress=False,
                          pytest_args=["--color=no", *(self.select or [])],
                          on_phase=lambda what, s: tell(f"  {k.upstream}: {what} ({s:.1f} s)"))
        with open_kernel_log(self.out, folder) as log:
            summary, _ = execute(opts, lambda m: log.write(m + "\n"), log.write)
        self.boots += 1
        known = self._known(folder) or Known({}, summary.verdict, summary.verdict_line())
        return {t: known.tests.get(t) for t in tests}, known, time.monotonic() - start

    def marks(self, test: str, kernels: list[DebianKernel]) -> tuple[list[str], list[str]]:
        """The test's rules and known fixes, as the guest recorded them in junit.xml, from the
        first of these kernels' results that has them; ([], []) from none."""
        for k in kernels:
            folder = self.folder(k)
            t = load_folder(folder).tests.get(test) if is_finished(folder) else None
            if t is not None and (t.rules or t.fixes):
                return t.rules, t.fixes
        return [], []

    @staticmethod
    def _known(folder: Path) -> Known | None:
        if not is_finished(folder):
            return None
        k = load_folder(folder)
        summary = k.finished()
        return Known({n: t.outcome.value for n, t in k.tests.items()}, summary.verdict, summary.verdict_line())


def outcome_sets(find: str, bad_outcome: str | None) -> tuple[set[str], set[str]]:
    """(good, bad) outcomes: a regression goes pass -> fail, a fix fail -> pass."""
    if bad_outcome:
        return {"pass", "fail", "skip", "error"} - {bad_outcome}, {bad_outcome}
    return ({"pass"}, {"fail"}) if find == "regression" else ({"fail"}, {"pass"})


def bisect_test(runner: Runner, kernels: list[DebianKernel], test: str, good: set[str], bad: set[str],
                on_step: Callable[[Step], None]) -> Result:
    def judge(i: int) -> Step:
        outs, known, seconds = runner.outcomes(kernels[i], [test])
        judged = judge_outcome(outs[test], known.verdict, good, bad)
        step = Step(i, kernels[i].upstream, outs[test] or known.line, judged, seconds)
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
