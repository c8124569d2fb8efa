"""Results of one kernel: test outcomes from JUnit XML, KTAP, summary.json, the verdict."""
from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from base import safefs
from base.errors import EXIT_CONFORMS, EXIT_CRASH, EXIT_INFRA, EXIT_NONCONFORMING, EXIT_USAGE

from .absence import ABSENT_OK, FAILING, FeatureState, State, describe

# junit.xml comes from the guest or from elsewhere: read at most this much of it.
JUNIT_MAX = 64 * safefs.MiB


class Outcome(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"  # the test harness broke, not the kernel


@dataclass
class TestResult:
    name: str  # conformance/test_x.py::test_y[param]
    outcome: Outcome
    seconds: float = 0.0
    message: str = ""


def _nodeid(case: ET.Element) -> str:
    classname, name = case.get("classname", ""), case.get("name", "")
    parts = classname.split(".")
    # pytest writes classname "conformance.test_file[.Class]"; turn it back into a node id.
    mod_end = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
    path = "/".join(parts[: mod_end + 1]) + ".py"
    rest = parts[mod_end + 1:]
    return "::".join([path, *rest, name])


def junit_root(path: Path) -> ET.Element:
    """The parsed junit.xml, read as untrusted (size-bounded, no link followed, no DTD or
    entities); FileNotFoundError when absent, safefs.BadFile (exit 2) for anything else wrong."""
    data = safefs.read_bytes(path, JUNIT_MAX)
    try:
        return SafeET.fromstring(data)
    except (ET.ParseError, DefusedXmlException, ValueError, RecursionError) as e:
        raise safefs.BadFile(f"{path}: is not valid JUnit XML ({str(e)[:200] or type(e).__name__})") from None


def _seconds(path: Path, case: ET.Element) -> float:
    try:
        return float(case.get("time", 0) or 0)
    except ValueError:
        raise safefs.BadFile(f"{path}: testcase time {case.get('time')[:40]!r} is not a number") from None


def parse_junit(path: Path) -> list[TestResult]:
    root = junit_root(path)
    results = []
    for case in root.iter("testcase"):
        outcome, message = Outcome.PASS, ""
        for child in case:
            if child.tag == "failure":
                outcome, message = Outcome.FAIL, child.get("message") or (child.text or "")
            elif child.tag == "error":
                outcome, message = Outcome.ERROR, child.get("message") or (child.text or "")
            elif child.tag == "skipped":
                outcome, message = Outcome.SKIP, child.get("message") or (child.text or "")
        results.append(TestResult(_nodeid(case), outcome, _seconds(path, case), message))
    return results


def counts(results: list[TestResult]) -> dict[str, int]:
    c = {o.value: 0 for o in Outcome}
    for r in results:
        c[r.outcome.value] += 1
    return c


def _ktap_text(s: str) -> str:
    # One line, and no '#' that would start a directive.
    return " ".join(s.split()).replace("#", "(hash)")


def skip_reason(message: str) -> str:
    # pytest prefixes: "conformance/x.py:12: reason" or "Skipped: reason"
    m = message
    if m.startswith("Skipped: "):
        m = m[len("Skipped: "):]
    head, sep, tail = m.partition(": ")
    if sep and ".py:" in head:
        m = tail
    return m


def to_ktap(results: list[TestResult]) -> str:
    """KTAP version 1: one line per test, '# SKIP reason' for skips, a diagnostic for failures."""
    lines = ["KTAP version 1", f"1..{len(results)}"]
    for i, r in enumerate(results, 1):
        name = _ktap_text(r.name)
        if r.outcome is Outcome.PASS:
            lines.append(f"ok {i} {name}")
        elif r.outcome is Outcome.SKIP:
            lines.append(f"ok {i} {name} # SKIP {_ktap_text(skip_reason(r.message))}")
        else:
            for msg in r.message.strip().splitlines()[:3]:
                lines.append(f"# {_ktap_text(msg)}")
            error = " # ERROR harness" if r.outcome is Outcome.ERROR else ""
            lines.append(f"not ok {i} {name}{error}")
    return "\n".join(lines) + "\n"


class Verdict(str, enum.Enum):
    CONFORMS = "CONFORMS"
    FEATURE_ABSENT = "FEATURE ABSENT"
    NONCONFORMING = "DOES NOT CONFORM"
    HARNESS_ERROR = "HARNESS ERROR"
    NO_TESTS = "NO TESTS RAN"
    CRASHED = "CRASHED"
    HUNG = "HUNG"
    NO_BOOT = "COULD NOT BOOT"


EXIT_FOR = {
    Verdict.CONFORMS: EXIT_CONFORMS, Verdict.FEATURE_ABSENT: EXIT_CONFORMS,
    Verdict.NONCONFORMING: EXIT_NONCONFORMING, Verdict.HARNESS_ERROR: EXIT_INFRA,
    Verdict.NO_TESTS: EXIT_USAGE, Verdict.CRASHED: EXIT_CRASH, Verdict.HUNG: EXIT_CRASH,
    Verdict.NO_BOOT: EXIT_INFRA,
}


@dataclass
class RunSummary:
    kernel: str
    release: str
    source: str
    accel: str
    verdict: Verdict
    counts: dict[str, int]
    durations: dict[str, float]
    feature_present: bool | None  # OPEN_TREE_NAMESPACE's probe (features holds all of them)
    detail: str = ""
    attempts: int = 1
    crash_reports: list[str] = field(default_factory=list)
    debian: dict | None = None  # a Debian kernel's upstream, package version, flavour, release
    features: list[FeatureState] = field(default_factory=list)
    running: list[str] = field(default_factory=list)  # tests still running when the run hung or crashed

    def verdict_line(self) -> str:
        v = self.verdict.value
        if self.verdict is Verdict.NONCONFORMING:
            why = [f"{self.counts['fail']} failed"] if self.counts.get("fail") else []
            why += [f"{self.counts['error']} errors"] if self.counts.get("error") else []
            failing = describe([s for s in self.features if s.state in FAILING])
            v += f" ({', '.join(why)}{'; ' if why and failing else ''}{failing})"
        elif self.verdict is Verdict.HARNESS_ERROR:
            unprobed = [s.name for s in self.features if s.state is State.UNPROBED] or ["any feature"]
            v += f" ({self.counts['error']} errors)" if self.counts.get("error") else \
                f" (no feature probe for {', '.join(unprobed)})"
        elif self.verdict in (Verdict.CONFORMS, Verdict.FEATURE_ABSENT) and self.features:
            v += f" ({describe(self.features)})"
        return v

    def exit_code(self) -> int:
        return EXIT_FOR[self.verdict]

    def to_json(self) -> dict:
        return {"kernel": self.kernel, "release": self.release, "source": self.source,
                "accel": self.accel, "verdict": self.verdict.value, "verdict_line": self.verdict_line(),
                "counts": self.counts, "durations": {k: round(v, 3) for k, v in self.durations.items()},
                "feature_present": self.feature_present, "detail": self.detail,
                "features": {s.name: s.to_json() for s in self.features},
                "boot_attempts": self.attempts, "crash_reports": self.crash_reports,
                "running": self.running,
                **({"debian": self.debian} if self.debian else {})}


def decide(results: list[TestResult] | None, features: list[FeatureState], boot_status: str) -> Verdict:
    """One verdict from the boot's fate, the tests' outcomes and each feature's judged state
    (otns.absence.judge); kernel faults first."""
    if boot_status == "crashed":
        return Verdict.CRASHED
    if boot_status == "hung":
        return Verdict.HUNG
    if results is None:
        return Verdict.NO_BOOT
    c = counts(results)
    if c["fail"]:
        return Verdict.NONCONFORMING
    if not results:
        return Verdict.NO_TESTS
    if any(s.state in FAILING for s in features):
        return Verdict.NONCONFORMING
    if c["error"] or not features or any(s.state is State.UNPROBED for s in features):
        return Verdict.HARNESS_ERROR
    if any(s.state in ABSENT_OK for s in features):
        return Verdict.FEATURE_ABSENT
    return Verdict.CONFORMS


write_atomic = safefs.write_atomic


def read_features(path: Path) -> dict | None:
    """A JSON object the guest wrote (features.json, guest.json); None when absent or not one."""
    try:
        return safefs.read_json_object(path)
    except (OSError, safefs.BadFile):
        return None


def read_summary(path: Path) -> dict:
    """summary.json of a results folder, from here or elsewhere: a JSON object, or BadFile (exit 2)."""
    try:
        doc = safefs.read_json_object(path)
    except FileNotFoundError:
        raise safefs.BadFile(f"{path}: not found") from None
    for key in ("kernel", "release", "source", "accel", "verdict", "verdict_line", "detail"):
        if key in doc and not isinstance(doc[key], str):
            raise safefs.BadFile(f"{path}: {key} is not a string")
    for key in ("counts", "durations"):
        values = doc.get(key, {})
        if not isinstance(values, dict) or not all(type(v) in (int, float) for v in values.values()):
            raise safefs.BadFile(f"{path}: {key} is not an object of numbers")
    return doc
