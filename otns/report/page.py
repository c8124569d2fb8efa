"""report.html: one self-contained page over many kernels' results, rendered from
templates/report.html.j2. It opens on a head per kernel (verdict, counts, accelerator,
durations, where the kernel came from, its console log), then the rows that fail, then those
that differ between kernels (rows.py decides which). Names, messages and verdicts come
from the guest: the template escapes everything, and every link is relative."""
from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from ..results.files import CONSOLE, summary_verdict
from ..results.model import Outcome, Verdict
from .rows import Grade, Section, expected_skips, rows

if TYPE_CHECKING:
    from .grid import KernelResults

LABEL = {Grade.PASS: "pass", Grade.FAIL: "FAIL", Grade.ERROR: "ERROR", Grade.CRASH: "CRASH", Grade.SKIP: "skip",
         Grade.SKIP_ABSENT: "absent", Grade.SKIP_REQUIRED: "SKIP!", Grade.MISSING: "-"}
TITLE = {Section.FAILURES: "Failures", Section.DIFFERENCES: "Differences between kernels",
         Section.ABSENT_ONLY: "The same, but for the expected skips of kernels allowed to lack a feature",
         Section.SAME: "The same on every kernel"}
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


def _text(summary: dict, key: str) -> str:
    value = summary.get(key)
    return value if isinstance(value, str) else ""


def head(k: KernelResults, base: Path) -> Head:
    s = k.summary
    verdict = summary_verdict(s)
    tone = "good" if verdict in GOOD else "bad" if verdict in KERNEL_FAULT else "broken"
    counts = c if isinstance(c := s.get("counts"), dict) else {}
    durations = d if isinstance(d := s.get("durations"), dict) else {}
    # source names a Debian kernel's package version and suite, or a built tree's path.
    origin = [("spec", _text(s, "kernel") or k.name), ("source", _text(s, "source")), ("release", _text(s, "release"))]
    console = k.folder / CONSOLE
    return Head(
        name=k.name, expect=k.expect, verdict_line=k.verdict, tone=tone,
        counts=[(o.value, int(counts.get(o.value, 0))) for o in Outcome],
        expected_skips=expected_skips(k), accel=_text(s, "accel") or "?",
        durations=[(key, f"{float(durations[key]):.1f} s") for key in ("boot", "suite", "total") if key in durations],
        origin=[(key, value) for key, value in origin if value],
        console=relative_link(console, base) if os.path.lexists(console) else "")


def _environment() -> jinja2.Environment:
    # autoescape=True whatever the template's file name: every value on the page is data.
    return jinja2.Environment(loader=jinja2.PackageLoader("otns.report", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def html_page(kernels: list[KernelResults], base: Path) -> str:
    """The page, with console logs linked relative to base, the folder it is written to."""
    all_rows = rows(kernels)
    sections = [(s, TITLE[s], [r for r in all_rows if r.section is s]) for s in Section]
    consoles = [relative_link(k.folder / CONSOLE, base) for k in kernels]
    return _environment().get_template("report.html.j2").render(
        kernels=kernels, heads=[head(k, base) for k in kernels], sections=sections, consoles=consoles,
        label=LABEL, shown=(Section.FAILURES, Section.DIFFERENCES), tests=len(all_rows))

