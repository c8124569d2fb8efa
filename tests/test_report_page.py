"""report.html and the terminal grid put what matters first, on a recorded 3-kernel matrix.

tests/data/matrix-3-kernels is `otns matrix debian:6.19.14=may-lack debian:7.0.4=version
debian:7.2.13=conform` as it ran, its junit.xml files cut down to 26 tests (the 11 that fail on
7.0.4 and a few of each other kind); summary.json, features.json and console.log are whole.
"""
from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console

from otns.paths import REPO_ROOT
from otns.report.grid import KernelResults, load_folder, load_matrix, terminal_grid
from otns.report.page import html_page
from otns.report.rows import Grade, Section, rows
from otns.results.absence import FeatureState, State
from otns.results.model import Outcome, RunSummary, Verdict
from otns.results.model import TestResult as Result  # not collected as a test class

from .conftest import chromium, otns_command

RECORDED = Path(__file__).parent / "data" / "matrix-3-kernels"
KERNELS = ["debian:6.19.14", "debian:7.0.4", "debian:7.2.13"]
ORDER = [s.value for s in Section]


class Page(HTMLParser):
    """The parts of report.html the tests look at: heads, rows (section, test, cell classes), scripts."""

    def __init__(self):
        super().__init__()
        self.heads: list[dict] = []
        self.rows: list[dict] = []
        self.scripts = 0
        self.handlers: list[str] = []
        self.tags: list[str] = []
        self._in_head = self._in_verdict = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if self._in_head:
            self.heads[-1]["text"] += " "  # a term and its value are apart
        self.scripts += tag == "script"
        self.handlers += [f"{tag} {n}" for n in a if n.startswith("on") and n not in ("onclick", "onchange")]
        classes = (a.get("class") or "").split()
        if tag == "div" and "head" in classes:
            self.heads.append({"tone": classes[1], "text": "", "verdict": "", "console": None})
            self._in_head = True
        elif tag == "div" and "verdict" in classes and self._in_head:
            self._in_verdict = True
        elif tag == "a" and "console" in classes and self._in_head:
            self.heads[-1]["console"] = a["href"]
        elif tag == "tr" and "row" in classes:
            self.rows.append({"section": a["data-section"], "cells": []})
        elif tag == "td" and "name" in classes:
            self.rows[-1]["test"] = a["title"]
        elif tag == "td" and "cell" in classes:
            self.rows[-1]["cells"].append(classes[1])

    def handle_endtag(self, tag):
        if tag == "div" and self._in_verdict:
            self._in_verdict = False
        elif tag == "div" and self._in_head:
            self._in_head = False

    def handle_data(self, data):
        if self._in_head:
            self.heads[-1]["text"] += data
        if self._in_verdict:
            self.heads[-1]["verdict"] += data


def parse(page: str) -> Page:
    p = Page()
    p.feed(page)
    return p


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`otns report` over the recorded matrix, as CI's final job runs it."""
    out = tmp_path_factory.mktemp("report")
    p = subprocess.run(otns_command("report", str(RECORDED), "--out", str(out)), cwd=REPO_ROOT, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    return out, p


def test_the_page_opens_on_the_failures(recorded):
    out, _ = recorded
    page = parse((out / "report.html").read_text())
    failing = [r for r in page.rows if "fail" in r["cells"]]
    assert len(failing) == 11  # what 7.0.4 fails of the 26 recorded tests
    assert page.rows[:11] == failing
    for r in failing:
        # 6.19.14 lacks the features (allowed); 7.0.4 fails; 7.2.13 passes
        assert r["section"] == "failures" and r["cells"] == ["skip-absent", "fail", "pass"], r
    sections = [r["section"] for r in page.rows]
    assert sections == sorted(sections, key=ORDER.index), "the sections are out of order"
    md = (out / "grid.md").read_text().splitlines()[3:]  # after the header and the verdicts
    assert all("| absent | ❌ | ✅ |" in line for line in md[:11]) and "❌" not in "".join(md[11:]), md


def test_expected_skips_are_not_differences(recorded):
    out, p = recorded
    page = parse((out / "report.html").read_text())
    absent_only = [r for r in page.rows if r["section"] == "absent-only"]
    # 7.0.4 lacks fsmount_ns and empty_mntns (Linux 7.0 predates them): its skips are expected too.
    assert any(r["cells"] == ["skip-absent", "skip-absent", "pass"] for r in absent_only)
    assert any(r["cells"] == ["skip-absent", "pass", "pass"] for r in absent_only)
    assert not [r for r in page.rows if r["section"] == "differences"]
    for r in page.rows:
        assert ("skip-absent" in r["cells"]) == (r["section"] in ("failures", "absent-only")), r
    # The terminal grid: the failures, nothing else; every test id whole, parameters included.
    grid = p.stdout
    assert "26 tests: 11 fail, 0 differ between kernels; 9 differ only by expected skips" in " ".join(grid.split())
    for r in page.rows:
        assert (r["test"] in grid) == (r["section"] == "failures"), r["test"]
    assert "test_foreign_non_recursive_counts_only_children_below_the_path[mount-two-levels-below]" in grid


def test_a_head_per_kernel(recorded):
    out, _ = recorded
    page = parse((out / "report.html").read_text())
    assert len(page.heads) == 3
    for head, folder, kernel in zip(page.heads, sorted(RECORDED.glob("debian_*")), KERNELS, strict=True):
        summary = json.loads((folder / "summary.json").read_text())
        assert head["text"].lstrip().startswith(kernel)
        assert " ".join(head["verdict"].split()) == summary["verdict_line"]
        # Inside the report's own folder (CI uploads report/ alone), a copy of the kernel's log.
        assert head["console"].startswith("./consoles/") and ":" not in head["console"]
        assert (out / head["console"]).read_bytes() == (folder / "console.log").read_bytes()
        text = " ".join(head["text"].split())
        for key in ("pass", "fail", "skip", "error"):
            assert f"{key} {summary['counts'][key]}" in text
        assert f"accel {summary['accel']}" in text and summary["source"] in text and summary["release"] in text
        for key in ("boot", "suite", "total"):
            assert f"{key} {summary['durations'][key]:.1f} s" in text
    assert [h["tone"] for h in page.heads] == ["good", "bad", "good"]
    # the skips counted as expected are those of the junit.xml (cut down here): the cells marked absent
    absent = sum(r["cells"][0] == "skip-absent" for r in page.rows)
    assert f"({absent} skips for absent features it may lack)" in " ".join(page.heads[0]["text"].split())


def _with_state(tmp_path: Path, name: str, feature: str, state: str) -> KernelResults:
    folder = tmp_path / name
    shutil.copytree(RECORDED / name, folder)
    summary = json.loads((folder / "summary.json").read_text())
    summary["features"][feature]["state"] = state
    (folder / "summary.json").write_text(json.dumps(summary))
    return load_folder(folder)


def test_a_skip_where_the_feature_must_be_is_a_failure(tmp_path):
    # As 7.0.4=conform would have judged it: fsmount_ns absent, but every feature is required.
    required = _with_state(tmp_path, "debian_7.0.4-cloud", "fsmount_ns", "absent-but-required")
    good = load_folder(RECORDED / "debian_7.2.13-cloud")
    by_test = {r.test: r for r in rows([required, good])}
    fsmount = [r for t, r in by_test.items() if "test_fsmount_ns.py" in t]
    assert fsmount
    for r in fsmount:
        assert r.section is Section.FAILURES and r.cells[0].grade is Grade.SKIP_REQUIRED
        assert "so it must not skip" in r.cells[0].message
    # empty_mntns stays absent-expected: its skips are no failure
    clone3 = [r for t, r in by_test.items() if "clone3" in t]
    assert clone3 and all(r.cells[0].grade is Grade.SKIP_ABSENT for r in clone3)
    page = parse(html_page([required, good], tmp_path))
    assert page.rows[0]["section"] == "failures"
    assert {r["section"] for r in page.rows if "skip-required" in r["cells"]} == {"failures"}


def test_a_real_difference_follows_the_failures(tmp_path):
    kernels = load_matrix(RECORDED)
    other = "conformance/test_core.py::test_recursive_alone_is_einval"
    assert kernels[2].tests[other].outcome is Outcome.PASS
    # a skip for another reason than an absent feature is a real difference
    kernels[2] = dataclasses.replace(kernels[2], tests={
        **kernels[2].tests, other: Result(other, Outcome.SKIP, message="needs a writable /sys")})
    page = parse(html_page(kernels, tmp_path))
    assert [r["section"] for r in page.rows[:12]] == ["failures"] * 11 + ["differences"]
    assert page.rows[11]["test"] == other and page.rows[11]["cells"] == ["pass", "pass", "skip"]
    # the terminal grid too, though the suite runs test_core.py before the files of most failures
    out = io.StringIO()
    Console(file=out, width=250, color_system=None).print(terminal_grid(kernels))
    lines = [ln for ln in out.getvalue().splitlines() if "conformance/" in ln]
    assert len(lines) == 12 and other in lines[-1] and "FAIL" not in lines[-1], out.getvalue()


HOSTILE = '<script>alert(1)</script>"\'><img src=x onerror=alert(2)>{{ 7*7 }}&amp;'


def test_hostile_names_and_messages_are_escaped(tmp_path):
    folder = tmp_path / "k"
    folder.mkdir()
    (folder / "console.log").write_text("x\n")
    test = f"conformance/test_x.py::test_y[{HOSTILE}]"
    summary = RunSummary(kernel=HOSTILE, release=HOSTILE, source=HOSTILE, accel=HOSTILE, verdict=Verdict.NONCONFORMING,
                         counts={"fail": 1}, durations={"boot": 1.0}, feature_present=True, line=HOSTILE,
                         features=[FeatureState(HOSTILE, State.ABSENT_REQUIRED, HOSTILE, HOSTILE)])
    k = KernelResults(HOSTILE, folder, summary, {test: Result(test, Outcome.FAIL, message=HOSTILE)}, HOSTILE)
    page = html_page([k], tmp_path)
    parsed = parse(page)
    assert parsed.scripts == 1 and "img" not in parsed.tags, "a name became markup"
    assert not parsed.handlers, parsed.handlers
    assert "49" not in page, "a name was run as a template"
    assert parsed.rows == [{"section": "failures", "cells": ["fail"], "test": test}]
    assert " ".join(parsed.heads[0]["verdict"].split()) == " ".join(HOSTILE.split())


def test_page_in_chromium(recorded, tmp_path):
    out, _ = recorded
    page = out / "report.html"
    dom = chromium(tmp_path / "profile", "--dump-dom", page.as_uri())
    parsed = parse(dom)
    assert len(parsed.heads) == 3 and len(parsed.rows) == 26
    assert parsed.rows[0]["section"] == "failures"
    # the failures and differences are shown; the rest waits behind "show every test"
    assert '<tbody id="failures" class="shown">' in dom and '<tbody id="absent-only" class="rest hidden">' in dom


def test_the_test_running_at_a_crash_is_a_failure(tmp_path):
    kernels = load_matrix(RECORDED)
    running = "conformance/test_core.py::test_recursive_alone_is_einval"
    crashed = kernels[2]
    summary = dataclasses.replace(crashed.finished(), verdict=Verdict.CRASHED, line="CRASHED", detail="Kernel panic",
                                  running=[running])
    kernels[2] = dataclasses.replace(crashed, summary=summary,
                                     tests={n: t for n, t in crashed.tests.items() if n != running})
    page = parse(html_page(kernels, tmp_path))
    row = next(r for r in page.rows if r["test"] == running)
    assert row["section"] == "failures" and row["cells"] == ["pass", "pass", "crash"]
    assert page.heads[2]["tone"] == "bad"


def test_two_runs_of_one_kernel_get_two_titles_and_failing_cells_say_where_the_fix_is(tmp_path):
    # The same kernel run twice (two nights): each column is titled by its run. A failing cell
    # states where its known fix is for that kernel's line, without a click.
    data = Path(__file__).parent / "data"
    kernels = [load_folder(data / "results-7.0.4"), load_folder(data / "run-7.3.4"), load_folder(data / "run-7.3.4")]
    kernels[2] = KernelResults(kernels[2].name, tmp_path / "other-night", dataclasses.replace(
        kernels[2].finished(), started="2026-12-08T03:17:00+00:00"), kernels[2].tests)
    page = html_page(kernels, tmp_path)
    heads = re.findall(r"<h2>(.*?)(?:<small>|</h2>)", page)
    assert len(set(heads)) == 3 and "debian:7.3.4 @ 2026-12-08T03:17:00+00:00" in heads[2], heads
    assert 'class="fixed">ENOTDIR_TARGET: fixed in 7.0.13 (7.0.12 lacks it)</div>' in page
    assert "Failures (the test fails on at least one kernel): 11" in " ".join(page.split())
