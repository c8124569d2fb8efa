"""`otns mutate`: how many one-rule kernel faults the suite catches.

Pipeline: restore what a killed run left -> build and run the pristine tree (the baseline)
-> for each fault: apply, build incrementally, run the whole suite, put the file back ->
rebuild the pristine tree. A fault is caught when a test that passed on the baseline fails
on it (or the kernel now reports the feature absent). A fault whose kernel does not build,
does not boot or crashes is reported as such, never as caught. Every fault's run is a
normal results folder; mutate.json and mutate.md hold the table, rewritten after each fault
so an interrupted run keeps what it measured.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from base import safefs
from base.errors import InfraError
from base.safefs import write_atomic
from kernels import build, faults
from kernels.faults import Fault, NotApplicable
from kernels.spec import parse_spec

from kernels.arch import host
from .resultfiles import BUILD_LOG, MUTATE_JSON, MUTATE_MD, RUN_LOG, read_tests
from .results import Outcome, RunSummary, Verdict
from .run import RunOptions, execute

CAUGHT, SURVIVED, NOT_APPLIED, EQUIVALENT, NO_BUILD, NO_BOOT, CRASHED, HARNESS = (
    "caught", "survived", "not applied", "equivalent", "does not build", "does not boot", "crashed",
    "harness error")
# Faults whose kernel built and ran the suite to the end: the score's denominator.
JUDGED = (CAUGHT, SURVIVED)


@dataclass
class FaultResult:
    fault: Fault
    status: str
    caught_by: list[str] = field(default_factory=list)
    detail: str = ""
    results: Path | None = None
    build_seconds: float = 0.0
    run_seconds: float = 0.0

    def to_json(self) -> dict:
        return {"id": self.fault.id, "rule": self.fault.rule, "file": self.fault.file, "why": self.fault.why,
                "status": self.status, "caught_by": self.caught_by, "detail": self.detail,
                "results": str(self.results) if self.results else None,
                "build_seconds": round(self.build_seconds, 1), "run_seconds": round(self.run_seconds, 1)}


@dataclass
class Report:
    tree: Path
    out: Path
    kernel_version: str
    started: str
    rows: list[FaultResult] = field(default_factory=list)
    baseline: str = ""
    seconds: float = 0.0
    finished: bool = False

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    def score_line(self) -> str:
        judged = sum(r.status in JUDGED for r in self.rows)
        others = ", ".join(f"{self.count(s)} {s}" for s in (NOT_APPLIED, EQUIVALENT, NO_BUILD, NO_BOOT, CRASHED,
                                                               HARNESS) if self.count(s))
        line = f"caught {self.count(CAUGHT)} of {judged} faults that built and ran the suite"
        return line + (f" ({others})" if others else "")


def classify(summary: RunSummary, tests: dict[str, str], baseline: dict[str, str],
             baseline_present: bool | None) -> tuple[str, list[str], str]:
    """(status, tests that caught it, detail) of one fault's run against the baseline's outcomes."""
    if summary.verdict is Verdict.NO_BOOT:
        return NO_BOOT, [], summary.detail
    if summary.verdict in (Verdict.CRASHED, Verdict.HUNG):
        return CRASHED, [], f"{summary.verdict.value}: {summary.detail}"
    caught = sorted(t for t, o in tests.items() if o == Outcome.FAIL.value and baseline.get(t) == Outcome.PASS.value)
    skipped = sorted(t for t, o in tests.items() if o == Outcome.SKIP.value and baseline.get(t) == Outcome.PASS.value)
    notes = [f"{len(skipped)} tests that pass on the pristine kernel skip: {', '.join(skipped[:3])}"
             f"{' ...' if len(skipped) > 3 else ''}"] if skipped else []
    if caught:
        return CAUGHT, caught, "; ".join(notes)
    if summary.feature_present is False and baseline_present:
        return CAUGHT, [], "; ".join(["reported FEATURE ABSENT, which the pristine kernel has", *notes])
    errors = sorted(t for t, o in tests.items() if o == Outcome.ERROR.value and baseline.get(t) == Outcome.PASS.value)
    if errors:
        return HARNESS, [], f"{len(errors)} tests broke (error), none failed: {', '.join(errors[:3])}"
    return SURVIVED, [], "; ".join(notes)


def kernel_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL from the tree's Makefile."""
    fields = {}
    for line in (tree / "Makefile").read_text(errors="replace").splitlines()[:12]:
        key, sep, value = line.partition("=")
        if sep and key.strip() in ("VERSION", "PATCHLEVEL", "SUBLEVEL"):
            fields[key.strip()] = value.strip()
    return ".".join(fields.get(k, "?") for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL"))


@dataclass
class MutateOptions:
    tree: Path
    cache_dir: Path
    out: Path
    faults: list[Fault]
    timeout: float = 300.0


def object_of(fault: Fault) -> str | None:
    """The object file a fault's source compiles to, relative to the tree (None for a header)."""
    return str(Path(fault.file).with_suffix(".o")) if fault.file.endswith(".c") else None


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def carries(tree: Path, fault: Fault, edited_ns: int, pristine: dict[str, str]) -> tuple[str, str] | None:
    """Whether a built faulty kernel holds its fault: None when it does; otherwise the status
    and why. The image's own proof (it holds the vmlinux just linked) is in kernels.build.

    The object of the edited file must have been compiled after the edit (else the kernel
    is an earlier one's), and differ from the pristine object (else the fault changes
    nothing the compiler emits: an equivalent fault, no boot needed).
    """
    rel = object_of(fault)
    if rel is None:
        return None
    obj = tree / rel
    if not obj.is_file():
        return NOT_APPLIED, f"{rel} is not built with this tree's config"
    if obj.stat().st_mtime_ns < edited_ns:
        return HARNESS, f"the kernel does not carry the fault: {rel} was not compiled again after the edit"
    if pristine.get(rel) == _sha(obj):
        return EQUIVALENT, f"{rel} is byte for byte the pristine one"
    return None


class Mutator:
    def __init__(self, opts: MutateOptions, notice: Callable[[str], None], on_row: Callable[[FaultResult], None]):
        self.opts, self.notice, self.on_row = opts, notice, on_row
        self.tree = opts.tree
        self.dirty = False  # the tree's image may be a fault's
        self.pristine: dict[str, str] = {}  # object file -> its hash in the pristine build

    def _build(self, log: Path, applied_fault: bool = False) -> float:
        return build.build(self.tree, self.opts.cache_dir, log=log, applied_fault=applied_fault).seconds

    def _run(self, folder: Path) -> tuple[RunSummary, dict[str, str], float]:
        start = time.monotonic()
        # An otns results folder (refused otherwise), keeping the fault's build log beside the run's.
        folder = safefs.prepare_results(folder, keep=(BUILD_LOG,))
        run = RunOptions(spec=parse_spec(str(self.tree)), cache_dir=self.opts.cache_dir, results=folder,
                         timeout=self.opts.timeout, show_progress=False,
                         pytest_args=["--color=no"], keep=(BUILD_LOG, RUN_LOG))
        with safefs.open_new(folder / RUN_LOG) as log:
            summary, _ = execute(run, lambda m: log.write(m + "\n"), log.write)
        tests = {t.name: t.outcome.value for t in read_tests(folder) or []}
        return summary, tests, time.monotonic() - start

    def run(self) -> Report:
        opts = self.opts
        start = time.monotonic()
        report = Report(self.tree, opts.out, kernel_version(self.tree),
                        datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
        opts.out.mkdir(parents=True, exist_ok=True)
        left = faults.restore(self.tree, faults.load())
        if left:
            self.notice(f"otns: a killed run had left {', '.join(left)} mutated; restored it")
        self.notice("otns: building and running the pristine tree (the baseline)")
        self._build(opts.out / "baseline-build.log")
        self.pristine = {rel: _sha(self.tree / rel) for rel in filter(None, map(object_of, opts.faults))
                         if (self.tree / rel).is_file()}
        summary, baseline, _ = self._run(opts.out / "baseline")
        report.baseline = summary.verdict_line()
        if summary.verdict not in (Verdict.CONFORMS, Verdict.NONCONFORMING, Verdict.FEATURE_ABSENT):
            raise InfraError(f"the pristine tree does not run the suite: {summary.verdict_line()} "
                                    f"(results: {opts.out / 'baseline'})")
        if summary.verdict is not Verdict.CONFORMS:
            self.notice(f"otns: the pristine kernel itself: {summary.verdict_line()}; only tests that pass "
                        f"on it count")
        try:
            for i, fault in enumerate(opts.faults, 1):
                folder = opts.out / f"{i:02d}-{fault.id}"
                self.notice(f"otns: [{i}/{len(opts.faults)}] {fault.id} ({fault.rule}): {fault.why}")
                row = self._one(fault, folder, baseline, summary.feature_present)
                report.rows.append(row)
                report.seconds = time.monotonic() - start
                write_report(report)
                self.on_row(row)
            if self.dirty:
                self.notice("otns: rebuilding the pristine tree")
                self._build(opts.out / "pristine-build.log")
                self.dirty = False
            report.finished = True
        finally:
            if self.dirty:
                # Interrupted: the source is back, but the image is a fault's; drop it so nothing
                # boots it by mistake (the next build makes it anew from the restored source).
                (self.tree / host().image).unlink(missing_ok=True)
            report.seconds = time.monotonic() - start
            write_report(report)
        return report

    def _one(self, fault: Fault, folder: Path, baseline: dict[str, str], present: bool | None) -> FaultResult:
        folder = safefs.prepare_results(folder)
        try:
            edited = time.time_ns()
            with faults.applied(self.tree, fault):
                self.dirty = True
                try:
                    build_seconds = self._build(folder / BUILD_LOG, applied_fault=True)
                except build.BuildFailed as e:
                    return FaultResult(fault, NO_BUILD, detail=str(e), results=folder)
                not_carried = carries(self.tree, fault, edited, self.pristine)
                if not_carried:
                    status, why = not_carried
                    return FaultResult(fault, status, detail=why, results=folder, build_seconds=build_seconds)
                summary, tests, seconds = self._run(folder)
        except NotApplicable as e:
            return FaultResult(fault, NOT_APPLIED, detail=str(e), results=None)
        status, caught_by, detail = classify(summary, tests, baseline, present)
        return FaultResult(fault, status, caught_by, detail, folder, build_seconds, seconds)


def write_report(report: Report) -> None:
    data = {"tree": str(report.tree), "kernel_version": report.kernel_version, "started": report.started,
            "seconds": round(report.seconds, 1), "finished": report.finished, "baseline": report.baseline,
            "score": report.score_line(), "faults": [r.to_json() for r in report.rows]}
    write_atomic(report.out / MUTATE_JSON, json.dumps(data, indent=1) + "\n")
    write_atomic(report.out / MUTATE_MD, markdown(report))


def short_id(test: str) -> str:
    return test.removeprefix("conformance/")


def markdown(report: Report) -> str:
    lines = [f"# otns mutate: {report.kernel_version} ({report.tree.name})", "",
             f"{report.score_line()}; baseline: {report.baseline}; {report.seconds / 60:.0f} min, "
             f"started {report.started}{'' if report.finished else ' (interrupted)'}.", "",
             "| fault | rule | status | caught by / why not |", "|---|---|---|---|"]
    for r in report.rows:
        why = ", ".join(f"`{short_id(t)}`" for t in r.caught_by[:4]) + (f" and {len(r.caught_by) - 4} more"
                                                                      if len(r.caught_by) > 4 else "")
        why = "; ".join(x for x in (why, r.detail.replace("|", "\\|")) if x)
        lines.append(f"| `{r.fault.id}`: {r.fault.why} | {r.fault.rule} | {r.status} | {why} |")
    return "\n".join(lines) + "\n"
