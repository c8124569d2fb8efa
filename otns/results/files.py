"""The results folder as a contract: every file in it is named here (the names themselves in
base.filenames, which the guest imports too) and read or written only through this module.

summary.json and state.json carry a "format" version (FORMAT). Format 1 is what otns wrote
before the field existed (verdicts as their words, "DOES NOT CONFORM"); it is read as well.
Format 2 stores enums by name ("NONCONFORMING") and adds the boot's fate. A newer format is
refused with a one-line error naming its version. Test outcomes stay the words JUnit and
KTAP use ("pass", "fail"), as the keys of "counts".

A results folder may come from the guest or from elsewhere: everything is read as untrusted
(base.safefs), and what is written is written atomically.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from base import safefs
from base.errors import BadInput
from base.filenames import (
    BENCH_CHECKS,
    BENCH_CSV,
    BENCH_MD,
    BENCH_PNG,
    BENCH_RAW,
    BENCH_STDERR,
    BUILD_LOG,
    CONSOLE,
    CONSOLE_TAIL,
    CRASH,
    FEATURES,
    GUEST,
    INCOMPLETE,
    JUNIT,
    KTAP,
    LIVE_LOG,
    MARKER,
    PROGRESS,
    RUN_LOG,
    STATE,
    SUMMARY,
)
from vm.boot import BootStatus

from .fields import NUMBER_MAX, STRING_MAX
from .model import Outcome, RunSummary, TestResult, Verdict, to_ktap
from .plan import Plan

__all__ = ["BENCH_CHECKS", "BENCH_CSV", "BENCH_MD", "BENCH_PNG", "BENCH_RAW", "BENCH_STDERR", "BUILD_LOG", "CONSOLE",
           "CONSOLE_TAIL", "CRASH", "FEATURES", "GUEST", "INCOMPLETE", "JUNIT", "KTAP", "LIVE_LOG", "MARKER",
           "PROGRESS", "RUN_LOG", "STATE", "SUMMARY", "BootStatus", "Outcome", "Verdict"]

FORMAT = 2
# A matrix output folder: the plan, the runner's log and its own JUnit, one results folder per kernel.
PLAN = "plan.json"
MATRIX_LOG = "matrix.log"
MATRIX_RUNS = "matrix-runs.xml"
# otns mutate: the output folder holds the table of all faults (each fault's results folder
# also keeps its build's and its run's log, BUILD_LOG and RUN_LOG).
MUTATE_JSON = "mutate.json"
MUTATE_MD = "mutate.md"
# junit.xml comes from the guest or from elsewhere: read at most this much of it.
JUNIT_MAX = 64 * safefs.MiB
# The last lines of matrix.log, read to say why a matrix runner stopped.
LOG_TAIL_MAX = 64 * 1024


def check_format(path: Path, doc: dict) -> int:
    """The format version of a summary.json or state.json: 1 when it has none; BadFile (exit 2)
    for a version this otns does not know."""
    version = doc.get("format", 1)
    if type(version) is not int or version < 1:
        raise safefs.BadFile(f"{path}: format {str(version)[:40]!r} is not a format version")
    if version > FORMAT:
        raise safefs.BadFile(f"{path}: results format version {version} is newer than this otns reads "
                             f"(versions 1 to {FORMAT}): upgrade otns")
    return version


@contextmanager
def results_folder(given: Path | None, name: str, keep: tuple[str, ...] = (), incomplete: bool = True,
                   pid: bool = False) -> Iterator[Path]:
    """A fresh results folder, this run's alone while the block runs (base.safefs.owned: another
    run that wants it is refused): the one given, or results/NAME-TIME (-PID); marked as otns's,
    emptied (but for `keep`), and marked incomplete until the summary is written."""
    default = f"{name}-{datetime.now():%Y%m%d-%H%M%S}" + (f"-{os.getpid()}" if pid else "")
    folder = given if given is not None else Path("results") / default
    with safefs.owned(folder.resolve()) as owned:
        folder = safefs.prepare_results(owned, keep=keep)
        if incomplete:
            safefs.mark_incomplete(folder)
        yield folder


# JUnit XML (written by pytest in the guest)

def _nodeid(case: ET.Element) -> str:
    classname, name = case.get("classname", ""), case.get("name", "")
    parts = classname.split(".")
    # pytest writes classname "conformance.test_file[.Class]"; turn it back into a node id.
    mod_end = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
    path = "/".join(parts[: mod_end + 1]) + ".py"
    rest = parts[mod_end + 1:]
    return safefs.printable("::".join([path, *rest, name]), STRING_MAX)  # shown on terminals


def junit_cases(path: Path) -> list[ET.Element]:
    """The testcase elements of a junit.xml, read as untrusted (size-bounded, no link followed,
    no DTD or entities); FileNotFoundError when absent, safefs.BadFile (exit 2) for anything else wrong."""
    data = safefs.read_bytes(path, JUNIT_MAX)
    try:
        return list(SafeET.fromstring(data).iter("testcase"))
    except (ET.ParseError, DefusedXmlException, ValueError, RecursionError) as e:
        raise safefs.BadFile(f"{path}: is not valid JUnit XML ({str(e)[:200] or type(e).__name__})") from None


def _seconds(path: Path, case: ET.Element) -> float:
    try:
        seconds = float(case.get("time", 0) or 0)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= NUMBER_MAX:  # NaN and infinity too
        raise safefs.BadFile(f"{path}: testcase time {case.get('time', '')[:40]!r} is not a number of seconds")
    return seconds


_OUTCOME_TAGS = {"failure": Outcome.FAIL, "error": Outcome.ERROR, "skipped": Outcome.SKIP}
# A testcase's properties the suite writes (conformance/marks.py): its rule ids and known fixes.
# Anything else, a value that is no id, or more than a test could name, is not read.
_MARKS = ("rule", "fix")
_MARK_VALUE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MARKS_MAX = 32


def _marks(case: ET.Element) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {m: [] for m in _MARKS}
    for prop in case.iterfind("properties/property"):
        name, value = prop.get("name"), prop.get("value") or ""
        if (name in found and len(found[name]) < _MARKS_MAX and _MARK_VALUE.fullmatch(value)
                and value not in found[name]):
            found[name].append(value)
    return found


def parse_junit(path: Path) -> list[TestResult]:
    results = []
    for case in junit_cases(path):
        outcome, message = Outcome.PASS, ""
        for child in case:
            if child.tag in _OUTCOME_TAGS:
                outcome, message = _OUTCOME_TAGS[child.tag], child.get("message") or (child.text or "")
        marks = _marks(case)
        results.append(TestResult(_nodeid(case), outcome, _seconds(path, case), message, marks["rule"], marks["fix"]))
    return results


def read_tests(folder: Path) -> list[TestResult] | None:
    """The tests of a results folder's junit.xml; None when there is none."""
    try:
        return parse_junit(folder / JUNIT)
    except FileNotFoundError:
        return None


# What the guest wrote besides JUnit

def read_object(path: Path) -> dict | None:
    """A JSON object the guest wrote (features.json, guest.json); None when absent or not one."""
    try:
        return safefs.read_json_object(path)
    except (OSError, safefs.BadFile):
        return None


# What the host writes at the end of a run

def write_run(folder: Path, summary: RunSummary, tests: list[TestResult], note: str, console: str) -> None:
    """crash.txt, console-tail.txt (a hang's last lines), ktap.txt and, last, summary.json; then
    the folder is complete. `note` ends the KTAP output as a diagnostic when not empty."""
    if summary.crash_reports:
        safefs.write_atomic(folder / CRASH, "\n\n".join(summary.crash_reports) + "\n")
    if summary.boot_status is BootStatus.HUNG and console:
        safefs.write_atomic(folder / CONSOLE_TAIL, "\n".join(console.splitlines()[-60:]) + "\n")
    safefs.write_atomic(folder / KTAP, to_ktap(tests) + (f"# {' '.join(note.split())}\n" if note else ""))
    safefs.write_atomic(folder / SUMMARY, json.dumps({"format": FORMAT, **summary.to_json()}, indent=1) + "\n")
    safefs.mark_complete(folder)


def read_ktap(folder: Path) -> str:
    return safefs.read_text(folder / KTAP, JUNIT_MAX)


def summary_doc(path: Path) -> dict:
    """summary.json's object in the current format (format 1's verdict words become names), its
    fields not yet checked: RunSummary.from_json checks them. BadFile (exit 2) for a file that
    is absent, no JSON object or of a newer format."""
    try:
        doc = safefs.read_json_object(path)
    except FileNotFoundError:
        raise safefs.BadFile(f"{path}: not found") from None
    if check_format(path, doc) == 1 and isinstance(doc.get("verdict"), str):
        verdict = Verdict.of(doc["verdict"])
        if verdict is not None:
            doc["verdict"] = verdict.name
    doc["format"] = FORMAT
    return doc


def read_summary(path: Path) -> RunSummary:
    """summary.json of a results folder, from here or elsewhere; BadFile (exit 2), naming the
    file and the field, when it is not one."""
    return RunSummary.from_json(summary_doc(path), str(path))


def _digest(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def is_result_folder(folder: Path) -> bool:
    """One kernel's results (finished or not), as opposed to a matrix output of many."""
    return any(os.path.lexists(folder / n) for n in (SUMMARY, INCOMPLETE, MARKER))


def is_finished(folder: Path) -> bool:
    return os.path.lexists(folder / SUMMARY)


@dataclass
class KernelResults:
    """One results folder, loaded."""

    name: str  # column title: the kernel spec
    folder: Path
    summary: RunSummary | None  # summary.json; None for a matrix kernel that never finished
    tests: dict[str, TestResult]
    expect: str = ""
    state_line: str = ""  # a kernel without summary.json: what its state says ("NOT RUN (...)")
    fingerprint: str = ""  # a digest of summary.json as read (or of what stands for it)

    @property
    def verdict(self) -> str:
        """The verdict line."""
        return self.summary.verdict_line() if self.summary else self.state_line or "?"

    def finished(self) -> RunSummary:
        """The summary of a run that finished; BadInput for a kernel that never did."""
        if self.summary is None:
            raise BadInput(f"{self.folder} holds no finished run ({self.verdict})")
        return self.summary


def load_folder(folder: Path, name: str | None = None, expect: str = "") -> KernelResults:
    """A finished results folder: its summary and tests (none when it has no junit.xml)."""
    if not is_finished(folder):
        if os.path.lexists(folder / INCOMPLETE):
            raise BadInput(f"{folder} holds an interrupted run (no {SUMMARY})")
        raise BadInput(f"{folder} is not an otns result folder (no {SUMMARY})")
    doc = summary_doc(folder / SUMMARY)
    summary = RunSummary.from_json(doc, str(folder / SUMMARY))
    tests = {t.name: t for t in read_tests(folder) or []}
    return KernelResults(name or summary.kernel or folder.name, folder, summary, tests, expect,
                         fingerprint=_digest(doc))


def load_matrix(out: Path) -> list[KernelResults]:
    """Every kernel folder under a matrix output, in the plan's order when there is one."""
    if os.path.lexists(out / PLAN):
        found = [(out / e.slug, e.label, e.expect) for e in read_plan(out / PLAN).entries]
        # Every kernel the plan lists: one that never finished is shown as such, not left out.
        return [load_folder(d, name, expect) if is_finished(d) else unfinished(d, name, expect)
                for d, name, expect in found]
    return [load_folder(d) for d in sorted(out.iterdir()) if (d / SUMMARY).is_file()]


def unfinished(folder: Path, name: str, expect: str = "") -> KernelResults:
    """A matrix kernel without summary.json, as its state.json last said: never started, stopped
    (interrupted, or killed while it ran), or failed before a verdict."""
    state = read_state(folder) if os.path.isdir(folder) else {"state": "queued"}
    was = state.get("state", "queued")
    if was == "queued":
        line = "NOT RUN (the matrix stopped before it started)"
    elif was == "error":
        line = f"ERROR ({state.get('detail', 'no verdict')})"
    elif was == "interrupted":
        line = f"INTERRUPTED ({state.get('detail', 'no summary.json')})"
    else:
        line = f"INTERRUPTED (stopped while {was}; no summary.json)"
    line = safefs.printable(line, 300)
    # Its KCIDB ids come from a digest of these facts, as a finished run's from its summary.json.
    stand_in = {"format": FORMAT, "kernel": name, "verdict": line.split(" (")[0], "verdict_line": line, "detail": ""}
    return KernelResults(name, folder, None, {}, expect, state_line=line, fingerprint=_digest(stand_in))


def load_any(folders: list[Path]) -> list[KernelResults]:
    """Results folders and matrix outputs, each kernel once in the order given."""
    kernels = []
    for f in folders:
        kernels += [load_folder(f)] if is_result_folder(f) else load_matrix(f)
    return kernels


# A matrix output folder: its plan and the runner's log

def write_plan(plan: Plan) -> Path:
    """OUT/plan.json, atomically: the runner's workers read it as they start."""
    path = plan.out / PLAN
    safefs.write_atomic(path, json.dumps(plan.to_json(), indent=1))
    return path


def read_plan(path: Path) -> Plan:
    """A plan.json (BadFile, one line, when it is not a plan this otns wrote)."""
    doc = safefs.read_json_object(path)
    try:
        return Plan.from_json(doc)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise safefs.BadFile(f"{path}: not an otns matrix plan") from None
    except BadInput as e:  # settings no VM could boot with
        raise safefs.BadFile(f"{path}: {e}") from None


def open_matrix_log(out: Path) -> IO[str]:
    """matrix.log, new: the output of the runner's pytest session."""
    return safefs.open_new(out / MATRIX_LOG)


def matrix_log_tail(out: Path) -> str:
    """The last line of matrix.log, from its last LOG_TAIL_MAX bytes ("" when there is none or it
    is not a regular file)."""
    try:
        fd = os.open(out / MATRIX_LOG, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(fd).st_size
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        f.seek(max(0, size - LOG_TAIL_MAX))
        lines = f.read(LOG_TAIL_MAX).decode("utf-8", "replace").strip().splitlines()
    return safefs.printable(lines[-1], 300) if lines else ""


# otns bisect: each kernel's run log beside its results folder, and the changelog between two kernels

def open_kernel_log(out: Path, folder: Path) -> IO[str]:
    """OUT/NAME.log, new, beside the kernel's results folder OUT/NAME."""
    out.mkdir(parents=True, exist_ok=True)
    return safefs.open_new(out / f"{folder.name}.log")


def write_changelog(out: Path, older: str, newer: str, entries: list[str]) -> Path:
    path = out / f"changelog-{older}-to-{newer}.txt"
    safefs.write_atomic(path, "\n".join(entries) + "\n")
    return path


# A matrix kernel's live state (written by otns.matrix.entry_test, read by otns.matrix.runner and the CLI)

_STATE_TYPES: dict[str, type | tuple[type, ...]] = {
    "state": str, "kernel": str, "expect": str, "verdict": str, "verdict_name": str, "detail": str, "ok": bool,
    "counts": dict, "seconds": (int, float)}


def write_state(folder: Path, state: dict) -> None:
    """state.json: "verdict" is the verdict line shown in the live table, "verdict_name" the
    Verdict by name."""
    safefs.write_atomic(folder / STATE, json.dumps({"format": FORMAT, **state}))


def read_state(folder: Path) -> dict:
    """A kernel's state.json (its folder is shared with the guest: read as untrusted);
    fields of the wrong type are dropped, a missing or bad file reads as queued."""
    path = folder / STATE
    try:
        doc = safefs.read_json_object(path)
    except (OSError, safefs.BadFile):
        return {"state": "queued"}
    check_format(path, doc)
    state = {k: v for k, v in doc.items() if k in _STATE_TYPES and isinstance(v, _STATE_TYPES[k])}
    if isinstance(counts := state.get("counts"), dict):
        state["counts"] = {k: v for k, v in counts.items() if type(v) is int}
    return state or {"state": "queued"}


def state_verdict(state: dict) -> Verdict | None:
    """The verdict a state.json records: by name (format 2) or from its verdict line (format 1)."""
    name = state.get("verdict_name")
    return Verdict[name] if isinstance(name, str) and name in Verdict.__members__ else Verdict.of(state.get("verdict", ""))


# otns bench

def write_bench(folder: Path, csv_text: str, markdown: str) -> Path:
    """bench.csv and bench.md; returns where the plot goes."""
    safefs.write_atomic(folder / BENCH_CSV, csv_text)
    safefs.write_atomic(folder / BENCH_MD, markdown)
    return folder / BENCH_PNG


def write_checks(folder: Path, checks: list[dict]) -> None:
    safefs.write_atomic(folder / BENCH_CHECKS, "\n".join(json.dumps(c) for c in checks) + "\n")
