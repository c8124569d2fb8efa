"""`otns coverage`: which lines and branches of the features' kernel functions the suite reaches.

Pipeline: the coverage build of the tree (kernels/coverage.py: a copy, gcov on the features'
objects) -> a normal run of the suite on it, the guest keeping the counters (vm.guest --gcov)
-> the counters placed beside the build's notes -> gcovr: HTML, JSON, an lcov tracefile and a
summary -> per function of kernels/feature_code.toml (found with a C parser, kernels/csource):
lines and branches reached, and every one missed, each either explained by
kernels/unreached.toml or listed as a gap.

The counters come from the guest, so they are read like any guest file (regular files of a
bounded size, under names otns expects) before gcov sees them.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from base import filenames, safefs
from base.errors import BadInput, InfraError
from base.safefs import write_atomic
from kernels import coverage as kcoverage
from kernels import csource
from kernels.spec import parse_spec

from ..options import VmSettings
from ..results.model import RunSummary, Verdict
from ..run.execute import RunOptions, execute

UNREACHED = kcoverage.FEATURE_CODE.with_name("unreached.toml")  # beside the functions it explains
SOURCES = "sources.json"  # {file: sha256} of the sources the coverage was measured on
GCDA_MAX = 16 * safefs.MiB
GCOVR_TIMEOUT = 600


@dataclass
class Gap:
    """A line of a feature function the suite does not reach, or reaches without taking every branch."""
    line: int
    text: str
    branches: tuple[int, int] | None = None  # (taken, all) when the line is reached but a branch is not
    reason: str = ""  # from kernels/unreached.toml; "" when nobody explained it

    @property
    def kind(self) -> str:
        return "branch" if self.branches else "line"


@dataclass
class FunctionCoverage:
    file: str
    name: str
    lines: int = 0
    lines_hit: int = 0
    branches: int = 0
    branches_hit: int = 0
    gaps: list[Gap] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"file": self.file, "function": self.name, "lines": self.lines, "lines_hit": self.lines_hit,
                "branches": self.branches, "branches_hit": self.branches_hit,
                "gaps": [{"line": g.line, "text": g.text, "kind": g.kind,
                          "branches": list(g.branches) if g.branches else None, "reason": g.reason}
                         for g in self.gaps]}


@dataclass
class Explanation:
    file: str
    function: str
    text: str  # the line's text, stripped: line numbers move between versions, the text less so
    reason: str
    kind: str = "line"  # line: never reached; branch: reached, a branch never taken


def explanations(path: Path = UNREACHED) -> list[Explanation]:
    if not path.is_file():
        return []
    out = []
    for e in tomllib.loads(path.read_text()).get("unreached", []):
        # One reason may cover several lines of a function: "texts" lists them, "text" names one.
        texts = e.get("texts", [e["text"]] if "text" in e else [])
        try:
            out += [Explanation(e["file"], e["function"], t.strip(), e["reason"], e.get("kind", "line"))
                    for t in texts]
        except KeyError as missing:
            raise ValueError(f"{path}: an [[unreached]] entry lacks {missing}") from None
        if not texts:
            raise ValueError(f"{path}: an [[unreached]] entry of {e.get('function')} names no line (text or texts)")
    return out


def place_counters(results: Path, copy: Path, files: list[kcoverage.FeatureFile]) -> list[Path]:
    """Copy the guest's .gcda of each feature file beside its .gcno in the coverage tree.

    The guest mirrors the kernel's build folder under gcov/; only the files otns expects are
    taken, each by the end of its path, read as untrusted data."""
    root = results / filenames.GCOV
    found = {p.relative_to(root).as_posix(): p for p in root.rglob("*.gcda")} if root.is_dir() else {}
    placed = []
    for f in files:
        want = Path(f.path).with_suffix(".gcda").as_posix()
        matches = [p for rel, p in found.items() if rel == want or rel.endswith("/" + want)]
        if len(matches) != 1:
            continue
        data = safefs.read_bytes(matches[0], GCDA_MAX)
        dest = copy / want
        if not dest.with_suffix(".gcno").is_file():
            raise InfraError(f"the coverage build left no {dest.with_suffix('.gcno')}: {f.path} was not profiled")
        write_atomic(dest, data)
        placed.append(dest)
    return placed


def gcovr(copy: Path, files: list[kcoverage.FeatureFile], out: Path) -> dict:
    """Run gcovr over the placed counters: HTML, JSON, lcov and a text summary in out; the JSON."""
    exe = Path(sys.executable).parent / "gcovr"
    if not exe.is_file():
        raise BadInput("gcovr is not installed in otns's environment: run scripts/setup")
    html = out / "html"
    html.mkdir(parents=True, exist_ok=True)
    cmd = [str(exe), "--root", str(copy), "--object-directory", str(copy),
           *[x for f in files for x in ("--filter", str(copy / f.path))],
           "--json", str(out / "coverage.json"), "--html-details", str(html / "index.html"),
           "--lcov", str(out / "coverage.info"), "--txt", str(out / "summary.txt"), "--txt-metric", "branch",
           "--exclude-unreachable-branches",
           # gcovr drops "internal" functions (names starting with __) and their lines by default:
           # the kernel's __do_loopback and every syscall's body (__do_sys_fsmount) among them.
           "--include-internal-functions"]
    try:
        r = subprocess.run(cmd, cwd=copy, capture_output=True, text=True, timeout=GCOVR_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise InfraError(f"gcovr took over {GCOVR_TIMEOUT} s") from None
    if r.returncode != 0:
        raise InfraError(f"gcovr failed (exit {r.returncode}): {(r.stderr or r.stdout).strip()[-300:]}")
    return json.loads((out / "coverage.json").read_text())


def per_function(report: dict, copy: Path, files: list[kcoverage.FeatureFile],
                 known: list[Explanation]) -> list[FunctionCoverage]:
    """Lines and branches of each listed function, from gcovr's JSON and the functions' extents."""
    by_file = {Path(f["file"]).as_posix(): f for f in report.get("files", [])}
    out = []
    for f in files:
        source = (copy / f.path).read_bytes()
        text_lines = source.decode("utf-8", "replace").splitlines()
        extents = csource.functions_of(source)
        lines = {ln["line_number"]: ln for ln in by_file.get(f.path, {}).get("lines", [])
                 if not ln.get("gcovr/noncode")}
        for name in f.functions:
            fn = extents.get(name)
            if fn is None:
                raise BadInput(f"{f.path} has no function {name} (kernels/feature_code.toml names it)")
            cov = FunctionCoverage(f.path, name)
            for number in range(fn.start_line, fn.end_line + 1):
                ln = lines.get(number)
                if ln is None:
                    continue
                branches = ln.get("branches", [])
                taken = sum(1 for b in branches if b.get("count", 0) > 0)
                cov.lines += 1
                cov.branches += len(branches)
                cov.branches_hit += taken
                text = text_lines[number - 1].strip() if number <= len(text_lines) else ""
                if ln.get("count", 0) > 0:
                    cov.lines_hit += 1
                    if taken < len(branches):
                        cov.gaps.append(Gap(number, text, (taken, len(branches))))
                else:
                    cov.gaps.append(Gap(number, text))
            for gap in cov.gaps:
                gap.reason = next((e.reason for e in known if e.file == f.path and e.function == name
                                   and e.text == gap.text and e.kind == gap.kind), "")
            out.append(cov)
    return out


@dataclass
class CoverageReport:
    out: Path
    summary: RunSummary
    functions: list[FunctionCoverage]

    def totals(self) -> tuple[int, int, int, int]:
        return (sum(f.lines_hit for f in self.functions), sum(f.lines for f in self.functions),
                sum(f.branches_hit for f in self.functions), sum(f.branches for f in self.functions))

    def unexplained(self) -> list[tuple[FunctionCoverage, Gap]]:
        return [(f, g) for f in self.functions for g in f.gaps if not g.reason]


def markdown(report: CoverageReport) -> str:
    lh, lt, bh, bt = report.totals()
    lines = [f"# otns coverage: {report.summary.release}", "",
             f"The suite ({report.summary.verdict.value}) reaches {lh} of {lt} lines ({_pct(lh, lt)}) and takes "
             f"{bh} of {bt} branches ({_pct(bh, bt)}) of the features' functions; "
             f"{len(report.unexplained())} gaps have no written reason (kernels/unreached.toml).", "",
             "| file | function | lines | branches | gaps without a reason |", "|---|---|---:|---:|---:|"]
    for f in report.functions:
        open_gaps = sum(1 for g in f.gaps if not g.reason)
        lines.append(f"| {f.file} | `{f.name}` | {f.lines_hit}/{f.lines} | {f.branches_hit}/{f.branches} | {open_gaps} |")
    lines += ["", "## Gaps", "", "| function | line | what | reason |", "|---|---:|---|---|"]
    for f in report.functions:
        for g in f.gaps:
            what = f"{g.branches[0]} of {g.branches[1]} branches" if g.branches else "never reached"
            code = g.text.replace("|", "\\|")
            lines.append(f"| `{f.name}` | {g.line} | `{code}`: {what} | {g.reason or '**none**'} |")
    return "\n".join(lines) + "\n"


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f} %" if b else "n/a"


def run(tree: Path, cache_dir: Path, out: Path, pytest_args: list[str], vm: VmSettings,
        notice) -> CoverageReport:
    files = kcoverage.feature_code()
    out.mkdir(parents=True, exist_ok=True)
    notice(f"otns: building {tree.name} with gcov on {', '.join(f.path for f in files)} (a copy: the tree's "
           f"own build is untouched)")
    built = kcoverage.build_with_gcov(tree, cache_dir, out / "build.log")
    copy = built.tree
    for stale in copy.rglob("*.gcda"):
        stale.unlink()
    notice("otns: running the suite on the coverage kernel")
    results = safefs.prepare_results(out / "run")
    opts = RunOptions(spec=parse_spec(str(copy)), cache_dir=cache_dir, results=results, vm=vm,
                      show_progress=False, pytest_args=["--color=no", *pytest_args], gcov=True)
    with safefs.open_new(out / "run.log") as log:
        summary, _ = execute(opts, lambda m: log.write(m + "\n"), log.write)
    if summary.verdict in (Verdict.NO_BOOT, Verdict.CRASHED, Verdict.HUNG):
        raise InfraError(f"the coverage kernel did not run the suite: {summary.verdict_line()} (results: {results})")
    placed = place_counters(results, copy, files)
    if not placed:
        raise InfraError(f"the guest left no gcov counters for {', '.join(f.path for f in files)} "
                         f"(results: {results})")
    data = gcovr(copy, files, out)
    # What the line numbers refer to: otns mutate --auto --coverage checks its tree has the same files.
    write_atomic(out / SOURCES, json.dumps({f.path: hashlib.sha256((copy / f.path).read_bytes()).hexdigest()
                                            for f in files}, indent=1) + "\n")
    report = CoverageReport(out, summary, per_function(data, copy, files, explanations()))
    write_atomic(out / "functions.json", json.dumps([f.to_json() for f in report.functions], indent=1) + "\n")
    write_atomic(out / "coverage.md", markdown(report))
    return report


def unreached_lines(folder: Path, tree: Path) -> dict[str, set[int]]:
    """{file: lines the suite never ran} from an otns coverage output folder, for a tree that
    holds the very sources it was measured on (BadInput otherwise: the lines would not match)."""
    try:
        sources = safefs.read_json_object(folder / SOURCES)
        data = safefs.read_json_object(folder / "coverage.json", limit=256 * safefs.MiB)
    except FileNotFoundError:
        raise BadInput(f"{folder} is not an otns coverage output folder (no {SOURCES} or coverage.json)") from None
    for path, digest in sources.items():
        here = tree / path
        if not here.is_file() or hashlib.sha256(here.read_bytes()).hexdigest() != digest:
            raise BadInput(f"the coverage in {folder} was measured on another {path} than {tree}'s: "
                           f"run otns coverage on this tree first")
    out: dict[str, set[int]] = {}
    for f in data.get("files", []):
        if isinstance(f, dict) and isinstance(f.get("file"), str) and isinstance(f.get("lines"), list):
            out[f["file"]] = {ln["line_number"] for ln in f["lines"] if isinstance(ln, dict)
                              and ln.get("count") == 0 and isinstance(ln.get("line_number"), int)
                              and not ln.get("gcovr/noncode")}
    return out
