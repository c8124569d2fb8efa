"""report.html: one self-contained page over many kernels' results, rendered from
templates/report.html.j2. It opens on a head per kernel (verdict, counts, accelerator,
durations, where the kernel came from, its console log), then the rows that fail, then those
that differ between kernels (rows.py decides which). Names, messages and verdicts come
from the guest: the template escapes everything, and every link is relative."""
from __future__ import annotations

import os
import re
import shutil
import stat
import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from conformance.references import FIXES

from ..results.files import CONSOLE
from ..results.model import Outcome, Verdict
from .rows import Grade, Section, expected_skips, rows

if TYPE_CHECKING:
    from ..results.files import KernelResults

LABEL = {Grade.PASS: "pass", Grade.FAIL: "FAIL", Grade.ERROR: "ERROR", Grade.CRASH: "CRASH", Grade.SKIP: "skip",
         Grade.SKIP_ABSENT: "absent", Grade.SKIP_REQUIRED: "SKIP!", Grade.MISSING: "-"}
# What each section counts, said where it is counted: a test that fails on one kernel and passes
# on another is a failure, not also a difference.
TITLE = {Section.FAILURES: "Failures (the test fails on at least one kernel)",
         Section.DIFFERENCES: "Other differences between kernels (no kernel fails the test)",
         Section.ABSENT_ONLY: "The same, but for the expected skips of kernels allowed to lack a feature",
         Section.SAME: "The same on every kernel"}
_SAFE = re.compile(r"[^A-Za-z0-9._+-]")
# The verdicts a kernel is fine with; the others are a failure of the kernel or of the run.
GOOD = (Verdict.CONFORMS, Verdict.FEATURE_ABSENT)
KERNEL_FAULT = (Verdict.NONCONFORMING, Verdict.CRASHED, Verdict.HUNG)


def relative_link(target: Path, base: Path) -> str:
    """A link from the page's folder to target that can only be a relative path: every segment
    percent-encoded (no scheme, query or fragment survives: "javascript:x" becomes
    "./javascript%3Ax"), and starting with ./ or ../."""
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(base))
    link = "/".join(urllib.parse.quote(part, safe="") for part in rel.split(os.sep))
    return link if link.startswith("../") else "./" + link


@dataclass(frozen=True)
class Head:
    """What the page says about one kernel before any row."""
    name: str
    expect: str
    verdict_line: str
    tone: str  # good, bad (the kernel's fault) or broken (the run's)
    counts: list[tuple[str, int]]
    expected_skips: int
    accel: str
    durations: list[tuple[str, str]]
    origin: list[tuple[str, str]]
    console: str  # a relative link, or "" when the folder has no console log


def titles(kernels: list[KernelResults]) -> list[str]:
    """Each column's title: the kernel's name, and where two runs share it, which run (its start
    time, else its folder), so two runs of one kernel are told apart."""
    names = [k.name for k in kernels]
    return [n if names.count(n) == 1 else f"{n} @ {(k.summary.started if k.summary else '') or k.folder.name}"
            for n, k in zip(names, kernels, strict=True)]


def bring_consoles(kernels: list[KernelResults], out: Path) -> list[Path | None]:
    """Each kernel's console log where the page can link to it inside its own folder: in place
    when the results folder is below `out` (a matrix), else copied to out/consoles/ (a report
    uploaded alone, as CI's report/ artifact, keeps its links). A log that is not a regular file
    is not copied (a results folder from elsewhere is not trusted)."""
    found: list[Path | None] = []
    for i, k in enumerate(kernels):
        src = k.folder / CONSOLE
        try:
            regular = stat.S_ISREG(os.lstat(src).st_mode)
        except OSError:
            regular = False
        if not regular:
            found.append(None)
        elif os.path.abspath(src).startswith(os.path.abspath(out) + os.sep):
            found.append(src)
        else:
            dest = out / "consoles" / f"{i + 1:02d}-{_SAFE.sub('_', k.folder.name)[:80]}.log"
            dest.parent.mkdir(exist_ok=True)
            shutil.copyfile(src, dest, follow_symlinks=False)
            found.append(dest)
    return found


def where_fixed(k: KernelResults, fixes: tuple[str, ...]) -> str:
    """Where the known fixes of a failing test are, for this kernel's line of releases."""
    release = k.summary.release if k.summary else ""
    return "; ".join(f"{f}: {FIXES[f].where_fixed(release)}" for f in fixes if f in FIXES)


def head(k: KernelResults, base: Path) -> Head:
    s = k.summary
    verdict = s.verdict if s else None
    tone = "good" if verdict in GOOD else "bad" if verdict in KERNEL_FAULT else "broken"
    counts = s.counts if s else {}
    durations = s.durations if s else {}
    # source names a Debian kernel's package version and suite, or a built tree's path.
    origin = [("spec", (s.kernel if s else "") or k.name), ("source", s.source if s else ""),
              ("release", s.release if s else "")]
    console = k.folder / CONSOLE
    return Head(
        name=k.name, expect=k.expect, verdict_line=k.verdict, tone=tone,
        counts=[(o.value, int(counts.get(o.value, 0))) for o in Outcome],
        expected_skips=expected_skips(k), accel=(s.accel if s else "") or "?",
        durations=[(key, f"{float(durations[key]):.1f} s") for key in ("boot", "suite", "total") if key in durations],
        origin=[(key, value) for key, value in origin if value],
        console=relative_link(console, base) if os.path.lexists(console) else "")


def _environment() -> jinja2.Environment:
    # autoescape=True whatever the template's file name: every value on the page is data.
    return jinja2.Environment(loader=jinja2.PackageLoader("otns.report", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def html_page(kernels: list[KernelResults], base: Path, logs: list[Path | None] | None = None) -> str:
    """The page, with console logs (`logs`, as bring_consoles gives them; else in their results
    folders) linked relative to base, the folder it is written to."""
    all_rows = rows(kernels)
    sections = [(s, TITLE[s], [r for r in all_rows if r.section is s]) for s in Section]
    logs = logs if logs is not None else [k.folder / CONSOLE for k in kernels]
    consoles = [relative_link(p, base) if p is not None else "" for p in logs]
    heads = [replace(head(k, base), name=t, console=c) for k, t, c in zip(kernels, titles(kernels), consoles, strict=True)]
    # A failing cell shows where the fix is for its kernel's line, without a click.
    fixed = {(r.test, i): where_fixed(k, r.fixes) for r in all_rows if r.section is Section.FAILURES and r.fixes
             for i, (k, c) in enumerate(zip(kernels, r.cells, strict=True)) if c.grade in (Grade.FAIL, Grade.ERROR)}
    return _environment().get_template("report.html.j2").render(
        kernels=kernels, heads=heads, titles=titles(kernels), sections=sections, consoles=consoles, fixed=fixed,
        label=LABEL, shown=(Section.FAILURES, Section.DIFFERENCES), tests=len(all_rows))

