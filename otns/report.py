"""Reports over many kernels' result folders: the kernel x test grid (terminal, Markdown,
self-contained HTML), one combined JUnit file, and the diff between two result folders."""
from __future__ import annotations

import html
import os
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.table import Table
from rich.text import Text

from .resultfiles import CONSOLE, JUNIT, KernelResults, is_result_folder, junit_cases, load_folder, load_matrix
from .results import Outcome

SYMBOL = {"pass": "pass", "fail": "FAIL", "skip": "skip", "error": "ERROR", None: "-"}
MD_SYMBOL = {"pass": "✅", "fail": "❌", "skip": "⏭️", "error": "⚠️", None: "—"}


def test_names(kernels: list[KernelResults]) -> list[str]:
    names: dict[str, None] = {}
    for k in kernels:
        for n in k.tests:
            names.setdefault(n, None)
    return list(names)


def outcome(k: KernelResults, test: str) -> str | None:
    t = k.tests.get(test)
    return t.outcome.value if t else None


def interesting(kernels: list[KernelResults], test: str) -> bool:
    """A row worth showing: outcomes differ between kernels, or something failed."""
    outs = [outcome(k, test) for k in kernels]
    return len(set(outs)) > 1 or any(o in ("fail", "error") for o in outs)


def terminal_grid(kernels: list[KernelResults]) -> Table:
    names = test_names(kernels)
    shown = [n for n in names if interesting(kernels, n)]
    t = Table(title=f"{len(shown)} of {len(names)} tests differ between kernels or fail "
                    f"(the other {len(names) - len(shown)} have one outcome everywhere)")
    t.add_column("test")
    for k in kernels:
        t.add_column(Text(k.name), justify="center")
    colour = {"pass": "green", "fail": "bold red", "skip": "yellow", "error": "magenta", None: "dim"}
    for n in shown:
        # The whole test id, as text: a parameter id in brackets is not rich markup.
        t.add_row(Text(n), *(Text(SYMBOL[outcome(k, n)], style=colour[outcome(k, n)]) for k in kernels))
    t.add_row(Text("verdict", style="bold"), *(Text(k.verdict) for k in kernels))
    return t


def _md(text: str) -> str:
    """A table cell's text: one line, no cell break, no markup (names come from folder names)."""
    return "".join("\\" + c if c in "\\|`*_[]<>()#!" else c for c in " ".join(str(text).split()))


def markdown_grid(kernels: list[KernelResults]) -> str:
    lines = ["| test | " + " | ".join(_md(k.name) for k in kernels) + " |",
             "|---|" + "---|" * len(kernels)]
    lines.append("| **verdict** | " + " | ".join(_md(k.verdict) for k in kernels) + " |")
    for n in test_names(kernels):
        lines.append(f"| {_md(n.split('::', 1)[-1])} | " + " | ".join(MD_SYMBOL[outcome(k, n)] for k in kernels) + " |")
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:1em}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:2px 6px}th{background:#eee;position:sticky;top:0}
td.pass{background:#c8f7c5}td.fail{background:#f7a8a8;font-weight:bold}td.skip{background:#fdf1b8}
td.error{background:#e3b5f5}td.none{background:#f4f4f4;color:#999}td.cell{cursor:pointer;text-align:center}
td.name{font-family:monospace;max-width:50em;overflow-wrap:anywhere}.hidden{display:none}#detail{white-space:pre-wrap;font-family:monospace;
background:#f8f8f8;border:1px solid #ccc;padding:8px;margin-top:1em}
"""
_JS = """
function only(on){document.querySelectorAll('tr.row').forEach(function(r){
 r.classList.toggle('hidden', on && r.dataset.interesting!=='1');});}
function show(td){var d=document.getElementById('detail');
 d.textContent=td.dataset.kernel+' :: '+td.dataset.test+' :: '+td.dataset.outcome+'\\n\\n'+(td.dataset.msg||'(no message)');
 var a=document.getElementById('console');a.href=td.dataset.console;a.textContent='console log of '+td.dataset.kernel;}
"""


def relative_link(target: Path, base: Path) -> str:
    """A link from the page's folder to target that can only be a relative path: every segment
    percent-encoded (no scheme, query or fragment survives: "javascript:x" becomes
    "./javascript%3Ax"), and starting with ./ or ../."""
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(base))
    link = "/".join(urllib.parse.quote(part, safe="") for part in rel.split(os.sep))
    return link if link.startswith("../") else "./" + link


def html_page(kernels: list[KernelResults], base: Path) -> str:
    """One self-contained page; console logs are linked relative to the page's folder."""
    e = html.escape
    head = "".join(f"<th>{e(k.name)}<br><small>{e(k.verdict)}</small></th>" for k in kernels)
    shown = sum(interesting(kernels, n) for n in test_names(kernels))
    rows = []
    for n in test_names(kernels):
        cells = []
        for k in kernels:
            o = outcome(k, n)
            t = k.tests.get(n)
            rel = relative_link(k.folder / CONSOLE, base)
            cells.append(f'<td class="cell {o or "none"}" onclick="show(this)" data-kernel="{e(k.name)}" '
                         f'data-test="{e(n)}" data-outcome="{o or "missing"}" data-msg="{e(t.message if t else "")}" '
                         f'data-console="{e(rel)}">{e(SYMBOL[o])}</td>')
        flag = "1" if interesting(kernels, n) else "0"
        hidden = "" if flag == "1" else " hidden"
        rows.append(f'<tr class="row{hidden}" data-interesting="{flag}"><td class="name" title="{e(n)}">'
                    f'{e(n.replace("conformance/", ""))}</td>{"".join(cells)}</tr>')
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>otns matrix</title><style>{_CSS}</style>"
            f"<script>{_JS}</script></head><body><h1>otns: {len(kernels)} kernels, {len(rows)} tests</h1>"
            f"<p>{shown} rows differ between kernels or fail.</p>"
            "<label><input type='checkbox' id='only' checked onchange='only(this.checked)'> only rows that differ "
            "or fail</label><div id='detail'>Click a cell for its message.</div><p><a id='console' href='#'></a></p>"
            f"<table id='grid'><thead><tr><th>test</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "</body></html>\n")


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
