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
import math
import random
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from base import safefs
from base.errors import BadInput, InfraError
from base.safefs import write_atomic
from kernels import build, faults
from kernels.arch import host
from kernels.faults import Fault, NotApplicable
from kernels.spec import parse_spec
from vm.boot import GUEST_RESULTS

from ..options import VmSettings
from ..results.files import BUILD_LOG, MUTATE_JSON, MUTATE_MD, RUN_LOG, read_tests
from ..results.model import Outcome, RunSummary, Verdict
from ..run.execute import RunOptions, execute
from .rulemap import rules_of_function

AUTO = "AUTO"  # the rule of a fault generated from the code (kernels/mutants.py)
KERNELS = ".kernels"  # in the output folder: each built kernel, copied out of the tree until it has booted
TESTS_FILE = "tests.args"  # in a fault's results folder: the tests its first run selects

CAUGHT, SURVIVED, NOT_APPLIED, NOT_REACHED, EQUIVALENT, NO_BUILD, NO_BOOT, CRASHED, HARNESS = (
    "caught", "survived", "not applied", "not reached", "equivalent", "does not build", "does not boot", "crashed",
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
    shard: str = ""  # "i/n" for one shard; "merged from N" for a merge

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    def score_line(self) -> str:
        judged = sum(r.status in JUDGED for r in self.rows)
        others = ", ".join(f"{self.count(s)} {s}" for s in (NOT_APPLIED, NOT_REACHED, EQUIVALENT, NO_BUILD, NO_BOOT,
                                                               CRASHED, HARNESS) if self.count(s))
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
    vm: VmSettings = field(default_factory=VmSettings)
    rule_tests: dict[str, list[str]] = field(default_factory=dict)  # rule id -> the tests that name it
    every_test: bool = False  # the whole suite for every fault: every catching test, not the first
    shard: str = ""  # "i/n" when this run is one shard of a split list
    unreached: dict[str, set[int]] = field(default_factory=dict)  # file -> lines the suite never ran (coverage)
    judged: list[FaultResult] = field(default_factory=list)  # rows an interrupted run into `out` already holds
    judged_seconds: float = 0.0  # the wall time that run had spent


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


@dataclass
class Staged:
    """A fault built and copied out of the tree, ready to boot; or its verdict, when none is needed."""
    fault: Fault
    folder: Path
    image: Path | None = None
    result: FaultResult | None = None
    build_seconds: float = 0.0


class Mutator:
    """Builds one kernel while the previous one boots: on two cores, one compiles (niced) and
    one emulates. Each built kernel is copied out of the tree and its source put back at once,
    so the tree is free for the next build while the copy boots."""

    def __init__(self, opts: MutateOptions, notice: Callable[[str], object], on_row: Callable[[FaultResult], None]):
        self.opts, self.notice, self.on_row = opts, notice, on_row
        self.tree = opts.tree
        self.dirty = False  # the tree's image may be a fault's
        self.pristine: dict[str, str] = {}  # object file -> its hash in the pristine build
        self.stop = threading.Event()  # set when interrupted: the background build stops

    def _build(self, log: Path, applied_fault: bool = False, background: bool = False,
               append_log: bool = False) -> float:
        return build.build(self.tree, self.opts.cache_dir, log=log, applied_fault=applied_fault,
                           stop=self.stop if background else None, append_log=append_log).seconds

    def _copy_kernel(self, name: str) -> Path:
        """The tree's image (and its config, which the run reads beside it) copied out of the tree."""
        folder = self.opts.out / KERNELS / name
        folder.mkdir(parents=True, exist_ok=True)
        image = folder / Path(host().image).name
        shutil.copyfile(self.tree / host().image, image)
        shutil.copyfile(self.tree / ".config", folder / "config")
        return image

    def _run(self, folder: Path, image: Path, tests: list[str] | None = None) -> tuple[RunSummary, dict[str, str], float]:
        """Boot the kernel image and run the suite, or these tests only, stopping at the first failure."""
        start = time.monotonic()
        # An otns results folder (refused otherwise), keeping the fault's build log beside the run's.
        folder = safefs.prepare_results(folder, keep=(BUILD_LOG,))
        args, inputs = ["--color=no"], {}
        if tests:  # the guest reads them from a file in its folder: a list outgrows a kernel command line
            inputs[TESTS_FILE] = "".join(t + "\n" for t in tests).encode()
            args += ["-x", f"@{GUEST_RESULTS / TESTS_FILE}"]
        run = RunOptions(spec=parse_spec(str(image)), cache_dir=self.opts.cache_dir, results=folder,
                         vm=self.opts.vm, show_progress=False, pytest_args=args,
                         keep=(BUILD_LOG, RUN_LOG), guest_inputs=inputs)
        with safefs.open_new(folder / RUN_LOG) as log:
            summary, _ = execute(run, lambda m: log.write(m + "\n"), log.write)
        outcomes = {t.name: t.outcome.value for t in read_tests(folder) or []}
        return summary, outcomes, time.monotonic() - start

    def run(self) -> Report:
        opts = self.opts
        start = time.monotonic()
        report = Report(self.tree, opts.out, kernel_version(self.tree),
                        datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), list(opts.judged), shard=opts.shard)
        start -= opts.judged_seconds  # a resumed run's time includes the interrupted run's
        opts.out.mkdir(parents=True, exist_ok=True)
        left = faults.restore(self.tree, faults.load())
        if left:
            self.notice(f"otns: a killed run had left {', '.join(left)} mutated; restored it")
        self.notice("otns: building and running the pristine tree (the baseline)")
        self._build(opts.out / "baseline-build.log")
        self.pristine = {rel: _sha(self.tree / rel) for rel in filter(None, map(object_of, opts.faults))
                         if (self.tree / rel).is_file()}
        pristine_image = self._copy_kernel("baseline")
        # Numbered after the rows a resumed run keeps, so each fault's folder keeps its name.
        todo = list(enumerate(opts.faults, len(opts.judged) + 1))
        total = len(opts.judged) + len(opts.faults)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="otns-build") as builder:
            pending: Future | None = None
            try:
                if todo:  # the first fault builds while the baseline boots
                    pending = builder.submit(self._stage, *todo[0])
                summary, baseline, _ = self._run(opts.out / "baseline", pristine_image)
                report.baseline = summary.verdict_line()
                if summary.verdict not in (Verdict.CONFORMS, Verdict.NONCONFORMING, Verdict.FEATURE_ABSENT):
                    raise InfraError(f"the pristine tree does not run the suite: {summary.verdict_line()} "
                                     f"(results: {opts.out / 'baseline'})")
                if summary.verdict is not Verdict.CONFORMS:
                    self.notice(f"otns: the pristine kernel itself: {summary.verdict_line()}; only tests that "
                                f"pass on it count")
                for k, (i, fault) in enumerate(todo):
                    assert pending is not None  # submitted before the baseline, then after each fault
                    staged = pending.result()
                    # The next fault builds while this one boots; after the last, the pristine kernel.
                    pending = builder.submit(*((self._stage, *todo[k + 1]) if k + 1 < len(todo) else
                                               (self._build, opts.out / "pristine-build.log", False, True)))
                    self.notice(f"otns: [{i}/{total}] {fault.id} ({fault.rule}): {fault.why}")
                    row = staged.result or self._judge(staged, baseline, summary.feature_present)
                    if staged.image is not None:
                        shutil.rmtree(staged.image.parent, ignore_errors=True)
                    report.rows.append(row)
                    report.seconds = time.monotonic() - start
                    write_report(report)
                    self.on_row(row)
                if todo and pending is not None:
                    self.notice("otns: rebuilding the pristine tree")
                    pending.result()
                    self.dirty = False
                report.finished = True
            finally:
                self.stop.set()  # a build still running stops; its fault is put back as it unwinds
                if pending is not None and not pending.done():
                    try:
                        pending.result()
                    except Exception:  # noqa: BLE001 - stopped on purpose; the tree is restored below
                        pass
                if self.dirty:
                    # Interrupted: the source is back, but the image is a fault's; drop it so nothing
                    # boots it by mistake (the next build makes it anew from the restored source).
                    (self.tree / host().image).unlink(missing_ok=True)
                shutil.rmtree(opts.out / KERNELS, ignore_errors=True)
                report.seconds = time.monotonic() - start
                write_report(report)
        return report

    def _stage(self, i: int, fault: Fault) -> Staged:
        """In the builder thread: apply, build, check the kernel carries the fault, copy it out, restore.

        Cheaper verdicts first: a line the suite never runs (coverage) needs no build, and an
        object that compiles to the pristine bytes needs no link."""
        folder = safefs.prepare_results(self.opts.out / f"{i:02d}-{fault.id}")
        if fault.line and fault.line in self.opts.unreached.get(fault.file, ()):
            return Staged(fault, folder, result=FaultResult(
                fault, NOT_REACHED, detail=f"the suite never runs line {fault.line} of {fault.file} (coverage)",
                results=None))
        try:
            edited = time.time_ns()
            with faults.applied(self.tree, fault):
                self.dirty = True
                rel = object_of(fault)
                start = time.monotonic()
                try:
                    if rel is not None and rel in self.pristine:
                        build.compile_object(self.tree, self.opts.cache_dir, rel, folder / BUILD_LOG, self.stop)
                        if _sha(self.tree / rel) == self.pristine[rel]:
                            return Staged(fault, folder, result=FaultResult(
                                fault, EQUIVALENT, detail=f"{rel} is byte for byte the pristine one", results=folder,
                                build_seconds=time.monotonic() - start))
                    self._build(folder / BUILD_LOG, applied_fault=True, background=True, append_log=rel is not None)
                    seconds = time.monotonic() - start
                except build.BuildStopped:
                    raise
                except build.BuildFailed as e:
                    return Staged(fault, folder, result=FaultResult(fault, NO_BUILD, detail=str(e), results=folder))
                not_carried = carries(self.tree, fault, edited, self.pristine)
                if not_carried:
                    status, why = not_carried
                    return Staged(fault, folder, build_seconds=seconds,
                                  result=FaultResult(fault, status, detail=why, results=folder, build_seconds=seconds))
                return Staged(fault, folder, self._copy_kernel(folder.name), build_seconds=seconds)
        except NotApplicable as e:
            return Staged(fault, folder, result=FaultResult(fault, NOT_APPLIED, detail=str(e), results=None))

    def _judge(self, staged: Staged, baseline: dict[str, str], present: bool | None) -> FaultResult:
        """The tests that name the fault's rule first, stopping at the first failure; the whole
        suite for a fault they do not catch (a survivor has met every test) or when asked to."""
        fault, folder, image = staged.fault, staged.folder, staged.image
        assert image is not None
        rules = rules_of_function(fault.file, fault.function) if fault.rule == AUTO else [fault.rule]
        first = [] if self.opts.every_test else [
            t for t in dict.fromkeys(t for r in rules for t in self.opts.rule_tests.get(r, []))
            if baseline.get(t) == Outcome.PASS.value]
        spent = 0.0
        if first:
            summary, tests, spent = self._run(folder, image, first)
            status, caught_by, detail = classify(summary, tests, baseline, present)
            if status != SURVIVED and status != HARNESS:
                detail = "; ".join(x for x in (f"first of the {len(first)} tests of {', '.join(rules)}", detail) if x)
                return FaultResult(fault, status, caught_by, detail, folder, staged.build_seconds, spent)
        summary, tests, seconds = self._run(folder, image)
        status, caught_by, detail = classify(summary, tests, baseline, present)
        return FaultResult(fault, status, caught_by, detail, folder, staged.build_seconds, spent + seconds)


def write_report(report: Report) -> None:
    data = {"tree": str(report.tree), "kernel_version": report.kernel_version, "started": report.started,
            "seconds": round(report.seconds, 1), "finished": report.finished, "baseline": report.baseline,
            "shard": report.shard, "score": report.score_line(), "faults": [r.to_json() for r in report.rows]}
    write_atomic(report.out / MUTATE_JSON, json.dumps(data, indent=1) + "\n")
    write_atomic(report.out / MUTATE_MD, markdown(report))


def short_id(test: str) -> str:
    return test.removeprefix("conformance/")


def markdown(report: Report) -> str:
    shard = f" ({report.shard})" if report.shard else ""
    lines = [f"# otns mutate: {report.kernel_version} ({report.tree.name}){shard}", "",
             f"{report.score_line()}; baseline: {report.baseline}; {report.seconds / 60:.0f} min, "
             f"started {report.started}{'' if report.finished else ' (interrupted)'}.", "",
             "| fault | rule | status | caught by / why not |", "|---|---|---|---|"]
    for r in report.rows:
        why = ", ".join(f"`{short_id(t)}`" for t in r.caught_by[:4]) + (f" and {len(r.caught_by) - 4} more"
                                                                      if len(r.caught_by) > 4 else "")
        why = "; ".join(x for x in (why, _cell(r.detail)) if x)
        lines.append(f"| `{r.fault.id}`: {_cell(r.fault.why)} | {r.fault.rule} | {r.status} | {why} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """One table cell: a guest's or a console's lines (which a detail may quote) joined with " / ",
    its pipes escaped, so that a row stays one row."""
    return " / ".join(" ".join(line.split()) for line in text.splitlines() if line.strip()).replace("|", "\\|")


STATUSES = (CAUGHT, SURVIVED, NOT_APPLIED, NOT_REACHED, EQUIVALENT, NO_BUILD, NO_BOOT, CRASHED, HARNESS)


def sample(chosen: list[Fault], n: int | None, seed: int) -> list[Fault]:
    """--sample N --seed S: N of the faults drawn at random, the same N for the same seed, in the
    table's order (so shards of one sample split it the same way on every machine)."""
    if n is None or n >= len(chosen):
        return chosen
    picked = set(random.Random(seed).sample(range(len(chosen)), n))
    return [f for i, f in enumerate(chosen) if i in picked]


def _field(data: dict, key: str, kind: type | tuple[type, ...], where: Path):
    """data[key] if it is of that kind (a bool is no number), else BadInput naming the file."""
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        name = kind.__name__ if isinstance(kind, type) else "number"
        raise BadInput(f"{where}: {key!r} is not a {name}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadInput(f"{where}: {key!r} is not a finite number")
    return value


def _row_from_json(row: object, where: Path) -> FaultResult:
    if not isinstance(row, dict):
        raise BadInput(f"{where}: a fault's row is not an object")
    ident, rule = _field(row, "id", str, where), _field(row, "rule", str, where)
    status = _field(row, "status", str, where)
    if status not in STATUSES:
        raise BadInput(f"{where}: unknown status {status[:40]!r} of fault {ident[:64]!r}")
    caught_by = _field(row, "caught_by", list, where)
    if not all(isinstance(t, str) for t in caught_by):
        raise BadInput(f"{where}: caught_by of {ident[:64]!r} holds something other than test ids")
    numbers = [float(_field(row, k, (int, float), where)) if k in row else 0.0
               for k in ("build_seconds", "run_seconds")]
    fault = Fault(ident, rule, str(row.get("file", "")), "", "", str(row.get("why", "")))
    results = row.get("results")
    return FaultResult(fault, status, list(caught_by), str(row.get("detail", "")),
                       Path(results) if isinstance(results, str) else None, *numbers)


def load_report(folder: Path) -> Report:
    """A mutate.json from a folder that may come from elsewhere (another CI runner): read and
    checked defensively; BadInput naming the file and what is wrong."""
    where = folder / MUTATE_JSON
    try:
        data = safefs.read_json_object(where)
    except FileNotFoundError:
        raise BadInput(f"{folder} holds no {MUTATE_JSON}: not an otns mutate output folder") from None
    rows = _field(data, "faults", list, where)
    report = Report(Path(_field(data, "tree", str, where)), folder, _field(data, "kernel_version", str, where),
                    _field(data, "started", str, where), [_row_from_json(r, where) for r in rows],
                    _field(data, "baseline", str, where), float(_field(data, "seconds", (int, float), where)),
                    _field(data, "finished", bool, where), str(data.get("shard") or ""))
    return report


def resumable(folder: Path, selected: list[Fault], version: str) -> tuple[list[FaultResult], list[Fault], float]:
    """(the rows to keep, the faults still to run, the seconds spent) for `--resume folder`: the
    interrupted run must be of this kernel and of this selection (same --auto/--sample/--seed/--shard),
    else BadInput; its rows are kept only for faults it finished judging."""
    report = load_report(folder)
    if report.kernel_version != version:
        raise BadInput(f"{folder} is a run on {report.kernel_version[:64]}, not {version}: nothing to resume")
    if report.finished:
        raise BadInput(f"{folder} is a finished run: nothing to resume")
    wanted = {f.id for f in selected}
    strays = [r.fault.id for r in report.rows if r.fault.id not in wanted]
    if strays:
        raise BadInput(f"{folder} judged {strays[0][:64]}, which this selection does not hold: resume with the "
                       f"options of the interrupted run (--auto, --faults, --sample, --seed, --shard)")
    done = {r.fault.id: r for r in report.rows}
    kept = [done[f.id] for f in selected if f.id in done]  # in the selection's order
    return kept, [f for f in selected if f.id not in done], report.seconds


def merge(folders: list[Path], out: Path) -> Report:
    """One table from the tables of several shards (`--shard i/n` on several machines), in the
    order the unsplit list had; the wall time is the longest shard's."""
    reports = [load_report(f) for f in folders]
    versions = {r.kernel_version for r in reports}
    if len(versions) > 1:
        raise BadInput(f"the tables are of different kernels ({', '.join(sorted(versions))}): nothing to merge")

    def index(r: Report) -> tuple[int, int]:
        i, _, n = r.shard.partition("/")
        return (int(i), int(n)) if i.isdigit() and n.isdigit() else (0, 0)
    reports.sort(key=index)
    seen: dict[str, Path] = {}
    for r in reports:
        for row in r.rows:
            if row.fault.id in seen:
                raise BadInput(f"fault {row.fault.id} is in both {seen[row.fault.id]} and {r.out}: "
                               "shards of one run never share a fault")
            seen[row.fault.id] = r.out
    # Shard i holds items i-1, i-1+n, ...: taking one row of each shard in turn restores the order.
    rows = [r.rows[k] for k in range(max(len(r.rows) for r in reports)) for r in reports if k < len(r.rows)]
    merged = Report(reports[0].tree, out, reports[0].kernel_version, min(r.started for r in reports), rows,
                    " / ".join(dict.fromkeys(r.baseline for r in reports)), max(r.seconds for r in reports),
                    all(r.finished for r in reports), f"merged from {len(reports)} shards")
    out.mkdir(parents=True, exist_ok=True)
    write_report(merged)
    return merged
