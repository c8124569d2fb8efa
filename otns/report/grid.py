"""Reports over many kernels' result folders: the kernel x test grid (terminal, Markdown, and
the self-contained HTML page of otns/report/page.py), one combined JUnit file, and the diff
between two result folders. Which rows come first is otns/report/rows.py's call."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..results.files import JUNIT, KernelResults, is_result_folder, junit_cases, load_folder, load_matrix
from ..results.model import Outcome
from .page import LABEL, bring_consoles, html_page
from .rows import Grade, Section, rows, test_names

MD_SYMBOL = {Grade.PASS: "✅", Grade.FAIL: "❌", Grade.ERROR: "⚠️", Grade.CRASH: "💥", Grade.SKIP: "⏭️",
             Grade.SKIP_ABSENT: "absent", Grade.SKIP_REQUIRED: "❌ skip", Grade.MISSING: "—"}

def outcome(k: KernelResults, test: str) -> str | None:
    t = k.tests.get(test)
    return t.outcome.value if t else None

COLOUR = {Grade.PASS: "green", Grade.FAIL: "bold red", Grade.ERROR: "bold magenta", Grade.CRASH: "bold red",
          Grade.SKIP: "yellow", Grade.SKIP_ABSENT: "dim", Grade.SKIP_REQUIRED: "bold red", Grade.MISSING: "dim"}

def grid_width(kernels: list[KernelResults], ids: list[str]) -> int:
    """The columns a table with every id whole on one line needs (borders and padding included)."""
    cells = [max(len(k.name), len(verdict_words(k)), 5) for k in kernels]
    return max((len(i) for i in ids), default=4) + sum(cells) + 3 * (len(cells) + 1) + 1


def terminal_grid(kernels: list[KernelResults], width: int | None = None) -> Table | Group:
    """The rows that fail, then those that differ between kernels, each test id whole; the
    verdict lines go under the table, so they do not squeeze the test column. Where the table
    would not fit `width` with each id on one line (a folded id copied into `otns bisect` is no
    id), each row is listed instead: its id alone on a line, its outcomes on the next."""
    every = rows(kernels)
    shown = [r for r in every if r.section in (Section.FAILURES, Section.DIFFERENCES)]
    by = {s: sum(r.section is s for r in every) for s in Section}
    title = (f"{len(every)} tests: {by[Section.FAILURES]} fail, {by[Section.DIFFERENCES]} differ between "
             f"kernels; {by[Section.ABSENT_ONLY]} differ only by expected skips (absent features a kernel "
             f"may lack), {by[Section.SAME]} have one outcome everywhere")
    if width is not None and grid_width(kernels, [r.test for r in shown]) > width:
        return _listed(kernels, shown, title)
    t = Table(title=title,
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
    # The verdict's words, as otns run prints them (DOES NOT CONFORM, not its stored name).
    t.add_row(Text("verdict", style="bold"), *(Text(verdict_words(k)) for k in kernels))
    return t

def _listed(kernels: list[KernelResults], shown: list, title: str) -> Group:
    lines = [Text(title, style="bold")]
    for r in shown:
        lines.append(Text(r.test, no_wrap=True, overflow="ignore"))  # alone on its line: whole, at any width
        cells = Text("    ")
        for k, c in zip(kernels, r.cells, strict=True):
            cells.append(f"{k.name} ")
            cells.append(LABEL[c.grade], style=COLOUR[c.grade])
            cells.append("  ")
        lines.append(cells)
        if r.section is Section.FAILURES and r.marks:
            lines.append(Text(f"    {r.marks}", style="dim"))
    lines += [Text(f"{k.name}: {verdict_words(k)} - {k.verdict}") for k in kernels]
    return Group(*lines)


def verdict_words(k: KernelResults) -> str:
    """The kernel's verdict in the words every output uses ("DOES NOT CONFORM"), not its name in
    summary.json ("NONCONFORMING"); a kernel that never finished keeps what it says."""
    return k.summary.verdict.value if k.summary else k.verdict.split(" (")[0]


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
        counts = k.summary.counts if k.summary else {}
        suite.set("tests", str(sum(counts.values())))
        suite.set("failures", str(counts.get("fail", 0)))
        suite.set("errors", str(counts.get("error", 0)))
        suite.set("skipped", str(counts.get("skip", 0)))
    return ET.tostring(root, encoding="unicode") + "\n"

def write_reports(kernels: list[KernelResults], out: Path) -> dict[str, Path]:
    files = {"markdown": out / "grid.md", "html": out / "report.html", "junit": out / "combined-junit.xml"}
    files["markdown"].write_text(markdown_grid(kernels))
    files["html"].write_text(html_page(kernels, out, bring_consoles(kernels, out)))
    files["junit"].write_text(combined_junit(kernels))
    return files

def diff(a: KernelResults, b: KernelResults) -> list[tuple[str, str | None, str | None]]:
    """Tests whose outcome differs between two result folders: the starting point of a bisect."""
    return [(n, outcome(a, n), outcome(b, n)) for n in test_names([a, b]) if outcome(a, n) != outcome(b, n)]

__all__ = ["KernelResults", "Outcome", "is_result_folder", "load_folder", "load_matrix", "terminal_grid",
           "write_reports", "diff"]
