"""Reports over many kernels' result folders: the kernel x test grid (terminal, Markdown, and
the self-contained HTML page of otns/report/page.py), one combined JUnit file, and the diff
between two result folders. Which rows come first is otns/report/rows.py's call."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from rich.table import Table
from rich.text import Text

from ..results.files import JUNIT, KernelResults, is_result_folder, junit_cases, load_folder, load_matrix
from ..results.model import Outcome
from .page import LABEL, html_page
from .rows import Grade, Section, rows, test_names

MD_SYMBOL = {Grade.PASS: "✅", Grade.FAIL: "❌", Grade.ERROR: "⚠️", Grade.CRASH: "💥", Grade.SKIP: "⏭️",
             Grade.SKIP_ABSENT: "absent", Grade.SKIP_REQUIRED: "❌ skip", Grade.MISSING: "—"}

def outcome(k: KernelResults, test: str) -> str | None:
    t = k.tests.get(test)
    return t.outcome.value if t else None

COLOUR = {Grade.PASS: "green", Grade.FAIL: "bold red", Grade.ERROR: "bold magenta", Grade.CRASH: "bold red",
          Grade.SKIP: "yellow", Grade.SKIP_ABSENT: "dim", Grade.SKIP_REQUIRED: "bold red", Grade.MISSING: "dim"}

def terminal_grid(kernels: list[KernelResults]) -> Table:
    """The rows that fail, then those that differ between kernels, each test id whole; the
    verdict lines go under the table, so they do not squeeze the test column."""
    every = rows(kernels)
    shown = [r for r in every if r.section in (Section.FAILURES, Section.DIFFERENCES)]
    by = {s: sum(r.section is s for r in every) for s in Section}
    t = Table(title=f"{len(every)} tests: {by[Section.FAILURES]} fail, {by[Section.DIFFERENCES]} differ between "
                    f"kernels; {by[Section.ABSENT_ONLY]} differ only by expected skips (absent features a kernel "
                    f"may lack), {by[Section.SAME]} have one outcome everywhere",
              caption=Text("\n".join(f"{k.name}: {k.verdict}" for k in kernels)), caption_justify="left")
    # Folded, never cut with an ellipsis: a test id is shown whole, its [parameter] included.
    t.add_column("test", overflow="fold")
    for k in kernels:
        t.add_column(Text(k.name), justify="center", overflow="fold")
    for r in shown:
        # The test id as text: a parameter id in brackets is not rich markup. A failing row's rules
        # and fixes go on a line of their own, so the id stays whole.
        name = Text(r.test)
        if r.section is Section.FAILURES and r.marks:
            name.append(f"\n  {r.marks}", style="dim")
        t.add_row(name, *(Text(LABEL[c.grade], style=COLOUR[c.grade]) for c in r.cells))
    t.add_row(Text("verdict", style="bold"), *(Text(str(k.summary.get("verdict", "?"))) for k in kernels))
    return t

def _md(text: str) -> str:
    """A table cell's text: one line, no cell break, no markup (names come from folder names)."""
    return "".join("\\" + c if c in "\\|`*_[]<>()#!" else c for c in " ".join(str(text).split()))

def markdown_grid(kernels: list[KernelResults]) -> str:
    """Every test, failures first, then differences (as the page)."""
    lines = ["| test | " + " | ".join(_md(k.name) for k in kernels) + " |",
             "|---|" + "---|" * len(kernels)]
    lines.append("| **verdict** | " + " | ".join(_md(k.verdict) for k in kernels) + " |")
    for r in rows(kernels):
        lines.append(f"| {_md(r.test.removeprefix('conformance/'))} | "
                     + " | ".join(MD_SYMBOL[c.grade] for c in r.cells) + " |")
    return "\n".join(lines) + "\n"

def combined_junit(kernels: list[KernelResults]) -> str:
    root = ET.Element("testsuites")
    for k in kernels:
        suite = ET.SubElement(root, "testsuite", name=k.name)
        try:
            cases = junit_cases(k.folder / JUNIT)
        except FileNotFoundError:
            continue
        for case in cases:
            case.set("classname", f"{k.name}.{case.get('classname', '')}")
            suite.append(case)
        counts = k.summary.get("counts", {})
        suite.set("tests", str(sum(counts.values())))
        suite.set("failures", str(counts.get("fail", 0)))
        suite.set("errors", str(counts.get("error", 0)))
        suite.set("skipped", str(counts.get("skip", 0)))
    return ET.tostring(root, encoding="unicode") + "\n"

def write_reports(kernels: list[KernelResults], out: Path) -> dict[str, Path]:
    files = {"markdown": out / "grid.md", "html": out / "report.html", "junit": out / "combined-junit.xml"}
    files["markdown"].write_text(markdown_grid(kernels))
    files["html"].write_text(html_page(kernels, out))
    files["junit"].write_text(combined_junit(kernels))
    return files

def diff(a: KernelResults, b: KernelResults) -> list[tuple[str, str | None, str | None]]:
    """Tests whose outcome differs between two result folders: the starting point of a bisect."""
    return [(n, outcome(a, n), outcome(b, n)) for n in test_names([a, b]) if outcome(a, n) != outcome(b, n)]

__all__ = ["KernelResults", "Outcome", "is_result_folder", "load_folder", "load_matrix", "terminal_grid",
           "write_reports", "diff"]
