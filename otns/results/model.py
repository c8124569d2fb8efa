"""Results of one kernel as a typed model: each test's outcome, the boot's fate, the verdict,
KTAP. otns.results.files reads and writes them in a results folder."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from base.errors import EXIT_CONFORMS, EXIT_CRASH, EXIT_INFRA, EXIT_NONCONFORMING, EXIT_USAGE
from base.safefs import printable
from vm.boot import BootStatus

from .absence import ABSENT_OK, FAILING, FeatureState, State, describe
from .fields import Fields


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
    rules: list[str] = field(default_factory=list)  # the rules it checks (its markers, in junit.xml)
    fixes: list[str] = field(default_factory=list)  # the known fixes it guards (conformance/references.py)


def counts(results: list[TestResult]) -> dict[str, int]:
    c = {o.value: 0 for o in Outcome}
    for r in results:
        c[r.outcome.value] += 1
    return c


def _ktap_text(s: str) -> str:
    # One line, no '#' that would start a directive, and no escape sequence (--ktap prints it).
    return printable(" ".join(s.split()).replace("#", "(hash)"), 10_000)


def skip_reason(message: str) -> str:
    # pytest prefixes: "conformance/x.py:12: reason" or "Skipped: reason"
    m = message
    if m.startswith("Skipped: "):
        m = m[len("Skipped: "):]
    head, sep, tail = m.partition(": ")
    if sep and ".py:" in head:
        m = tail
    return m


def marks_line(rules: list[str] | tuple[str, ...], fixes: list[str] | tuple[str, ...]) -> str:
    """A test's rules and known fixes in one line ("" when it names neither)."""
    parts = [f"rules: {', '.join(rules)}"] if rules else []
    return "; ".join(parts + ([f"known fixes: {', '.join(fixes)}"] if fixes else []))


def to_ktap(results: list[TestResult]) -> str:
    """KTAP version 1: one line per test, '# SKIP reason' for skips, diagnostics for failures
    (the test's rules and fixes, then its message), and kselftest's "# Totals:" line."""
    lines = ["KTAP version 1", f"1..{len(results)}"]
    for i, r in enumerate(results, 1):
        name = _ktap_text(r.name)
        if r.outcome is Outcome.PASS:
            lines.append(f"ok {i} {name}")
        elif r.outcome is Outcome.SKIP:
            lines.append(f"ok {i} {name} # SKIP {_ktap_text(skip_reason(r.message))}")
        else:
            if r.rules or r.fixes:
                lines.append(f"# {_ktap_text(marks_line(r.rules, r.fixes))}")
            for msg in r.message.strip().splitlines()[:3]:
                lines.append(f"# {_ktap_text(msg)}")
            error = " # ERROR harness" if r.outcome is Outcome.ERROR else ""
            lines.append(f"not ok {i} {name}{error}")
    # As kselftest ends its output (tools/testing/selftests/kselftest.h, ksft_print_cnts).
    c = counts(results)
    lines.append(f"# Totals: pass:{c['pass']} fail:{c['fail']} xfail:0 xpass:0 skip:{c['skip']} error:{c['error']}")
    return "\n".join(lines) + "\n"


class Verdict(enum.Enum):
    """The run's verdict; its value is the words printed (and stored by format 1 of summary.json)."""
    CONFORMS = "CONFORMS"
    FEATURE_ABSENT = "FEATURE ABSENT"
    NONCONFORMING = "DOES NOT CONFORM"
    HARNESS_ERROR = "HARNESS ERROR"
    NO_TESTS = "NO TESTS RAN"
    CRASHED = "CRASHED"
    HUNG = "HUNG"
    NO_BOOT = "COULD NOT BOOT"

    @classmethod
    def of(cls, text: str) -> Verdict | None:
        """The verdict a stored string names: its name (format 2), its words (format 1), or a
        verdict line that starts with its words ("DOES NOT CONFORM (1 failed)"); else None."""
        if text in cls.__members__:
            return cls[text]
        return next((v for v in cls if text == v.value or text.startswith(v.value + " (")), None)

    @property
    def untestable(self) -> bool:
        """The kernel died or never ran the suite: no test's outcome says anything."""
        return self in (Verdict.CRASHED, Verdict.HUNG, Verdict.NO_BOOT)


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
    debian: dict[str, str] | None = None  # a Debian kernel's upstream, package version, flavour, release
    features: list[FeatureState] = field(default_factory=list)
    running: list[str] = field(default_factory=list)  # tests still running when the run hung or crashed
    boot_status: BootStatus | None = None  # how the boot (or the run on the host) ended
    harness: str = ""  # what broke, for a HARNESS ERROR that is not a test's error or a missing probe
    run_id: str = ""  # unique to this run (a UUID): KCIDB ids of two runs of one kernel differ
    started: str = ""  # when the run began, ISO 8601 in UTC
    tree: dict[str, str] | None = None  # a built tree's name and git facts (otns.run.execute.tree_identity)
    line: str = ""  # the verdict line summary.json stored, when read back (from_json)

    def verdict_line(self) -> str:
        """The verdict and why, as printed: the stored line of a summary read back (it was made
        from what the run knew, harness included), else made from the fields."""
        if self.line:
            return self.line
        v = self.verdict.value
        if self.verdict is Verdict.NONCONFORMING:
            why = [f"{self.counts['fail']} failed"] if self.counts.get("fail") else []
            why += [f"{self.counts['error']} errors"] if self.counts.get("error") else []
            failing = describe([s for s in self.features if s.state in FAILING])
            v += f" ({', '.join(why)}{'; ' if why and failing else ''}{failing})"
        elif self.verdict is Verdict.HARNESS_ERROR and self.harness:
            v += f" ({self.harness})"
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
        """summary.json's fields (otns.results.files adds the format): enums by name."""
        return {"kernel": self.kernel, "release": self.release, "source": self.source,
                "accel": self.accel, "verdict": self.verdict.name, "verdict_line": self.verdict_line(),
                "counts": self.counts, "durations": {k: round(v, 3) for k, v in self.durations.items()},
                "feature_present": self.feature_present, "detail": self.detail,
                "features": {s.name: s.to_json() for s in self.features},
                "boot_attempts": self.attempts, "crash_reports": self.crash_reports,
                "running": self.running,
                **({"run_id": self.run_id} if self.run_id else {}),
                **({"started": self.started} if self.started else {}),
                **({"tree": self.tree} if self.tree else {}),
                **({"boot_status": self.boot_status.name} if self.boot_status else {}),
                **({"debian": self.debian} if self.debian else {})}

    @classmethod
    def from_json(cls, data: object, where: str = "summary.json") -> RunSummary:
        """The inverse of to_json (otns.results.files upgrades an older format first). The file
        may come from a guest or another machine: a field of the wrong type or an unknown enum
        is a BadFile naming `where` and the key; unknown keys are ignored; a missing field is its
        default, but for the verdict, without which the file says nothing."""
        f = Fields(data, where)
        features = []
        for name, g in f.objects("features").items():
            state = g.member("state", State, by_name=False)
            if state is None:
                raise g.bad("state", "is missing")
            features.append(FeatureState(name, state, g.text("reason"), g.text("detail")))
        # The verdict last (arguments are read in order): a field of the wrong type says more
        # about a damaged file than the verdict's absence.
        return cls(kernel=f.text("kernel"), release=f.text("release"), source=f.text("source"), accel=f.text("accel"),
                   counts=f.counts("counts"), durations=f.numbers("durations"),
                   feature_present=f.flag("feature_present"), detail=f.text("detail"),
                   attempts=f.count("boot_attempts", 1), crash_reports=f.texts("crash_reports", keep_lines=True),
                   debian=f.record("debian"), features=features, running=f.texts("running"),
                   boot_status=f.member("boot_status", BootStatus), run_id=f.text("run_id"),
                   started=f.text("started"), tree=f.record("tree"), line=f.text("verdict_line"),
                   verdict=_required(f.member("verdict", Verdict), f))


def _required(verdict: Verdict | None, f: Fields) -> Verdict:
    if verdict is None:
        raise f.bad("verdict", "is missing")
    return verdict


def decide(results: list[TestResult] | None, features: list[FeatureState], boot_status: BootStatus | str) -> Verdict:
    """One verdict from the boot's fate, the tests' outcomes and each feature's judged state
    (otns.results.absence.judge); kernel faults first."""
    boot_status = BootStatus(boot_status)
    if boot_status is BootStatus.CRASHED:
        return Verdict.CRASHED
    if boot_status is BootStatus.HUNG:
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
