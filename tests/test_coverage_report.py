"""`otns coverage`'s host side on prepared data (no boot): the guest's counters taken only where
expected and read as untrusted files, gcovr's JSON turned into per-function lines, branches and
gaps, gaps matched to their written reasons, and the unreached lines mutate skips."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from base import filenames
from base.errors import BadInput
from kernels.coverage import FeatureFile
from otns.coverage.gcov import (
    SOURCES,
    CoverageReport,
    Explanation,
    markdown,
    per_function,
    place_counters,
    unreached_lines,
)
from otns.results.model import RunSummary, Verdict

from .test_mutants import SNIPPET

FILES = [FeatureFile("fs/frob.c", ("check", "sys_frob"))]


def tree_with_notes(tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    (copy / "fs").mkdir(parents=True)
    (copy / "fs" / "frob.c").write_bytes(SNIPPET)
    (copy / "fs" / "frob.gcno").write_bytes(b"oncg")
    return copy


def guest_counters(tmp_path: Path, build_dir: str = "root/.cache/otns/coverage/x/linux") -> Path:
    results = tmp_path / "results"
    gcda = results / filenames.GCOV / build_dir / "fs" / "frob.gcda"
    gcda.parent.mkdir(parents=True)
    gcda.write_bytes(b"adcg counters")
    return results


def test_counters_are_placed_beside_their_notes(tmp_path):
    copy, results = tree_with_notes(tmp_path), guest_counters(tmp_path)
    (results / filenames.GCOV / "elsewhere.gcda").write_bytes(b"not asked for")
    assert place_counters(results, copy, FILES) == [copy / "fs" / "frob.gcda"]
    assert (copy / "fs" / "frob.gcda").read_bytes() == b"adcg counters"
    assert not (copy / "elsewhere.gcda").exists()


def test_a_planted_link_or_fifo_is_refused(tmp_path):
    copy, results = tree_with_notes(tmp_path), guest_counters(tmp_path)
    gcda = next((results / filenames.GCOV).rglob("frob.gcda"))
    gcda.unlink()
    gcda.symlink_to("/etc/shadow")
    with pytest.raises(BadInput, match="symbolic link"):
        place_counters(results, copy, FILES)
    gcda.unlink()
    os.mkfifo(gcda)
    with pytest.raises(BadInput, match="not a regular file"):
        place_counters(results, copy, FILES)


def gcovr_json() -> dict:
    """gcovr's JSON for SNIPPET: check() run once with flags set and n >= 3 (line 9's return not
    taken, the && short-circuited), sys_frob run."""
    hit, missed = {4, 5, 8, 10, 12, 13, 15, 22, 23}, {9, 11, 14, 17, 18}
    lines = [{"line_number": n, "count": 1 if n in hit else 0, "branches": []} for n in sorted(hit | missed)]
    by = {ln["line_number"]: ln for ln in lines}
    by[8]["branches"] = [{"count": 1}, {"count": 0}]
    by[10]["branches"] = [{"count": 1}, {"count": 0}, {"count": 1}, {"count": 0}]
    by[13]["branches"] = [{"count": 1}, {"count": 1}]
    return {"files": [{"file": "fs/frob.c", "lines": lines}]}


def test_per_function_lines_branches_and_gaps(tmp_path):
    copy = tree_with_notes(tmp_path)
    known = [Explanation("fs/frob.c", "check", "cleanup();", "only after a goto the suite cannot cause")]
    check, frob = per_function(gcovr_json(), copy, FILES, known)
    assert (check.lines_hit, check.lines) == (7, 12)
    assert (check.branches_hit, check.branches) == (5, 8)
    assert (frob.lines_hit, frob.lines, frob.branches) == (2, 2, 0) and frob.gaps == []
    gaps = {(g.line, g.kind): g for g in check.gaps}
    assert set(gaps) == {(8, "branch"), (9, "line"), (10, "branch"), (11, "line"), (14, "line"), (17, "line"),
                         (18, "line")}
    assert gaps[(10, "branch")].branches == (2, 4) and gaps[(9, "line")].text == "return -EINVAL;"
    assert gaps[(17, "line")].reason.startswith("only after a goto") and not gaps[(18, "line")].reason
    report = CoverageReport(tmp_path, RunSummary("tree", "7.2.13", "tree", "tcg", Verdict.CONFORMS, {}, {}, True, ""),
                            [check, frob])
    assert report.totals() == (9, 14, 5, 8) and len(report.unexplained()) == 6
    md = markdown(report)
    assert "reaches 9 of 14 lines (64.3 %)" in md and "| `check` | 17 | `cleanup();`: never reached | only after" in md


def test_a_function_the_list_names_must_exist(tmp_path):
    copy = tree_with_notes(tmp_path)
    with pytest.raises(BadInput, match="has no function nothing_here"):
        per_function(gcovr_json(), copy, [FeatureFile("fs/frob.c", ("nothing_here",))], [])


def test_unreached_lines_only_for_the_sources_they_were_measured_on(tmp_path):
    copy, out = tree_with_notes(tmp_path), tmp_path / "cov"
    out.mkdir()
    (out / "coverage.json").write_text(json.dumps(gcovr_json()))
    (out / SOURCES).write_text(json.dumps({"fs/frob.c": hashlib.sha256(SNIPPET).hexdigest()}))
    assert unreached_lines(out, copy) == {"fs/frob.c": {9, 11, 14, 17, 18}}
    (copy / "fs" / "frob.c").write_bytes(SNIPPET + b"\n/* edited since */\n")
    with pytest.raises(BadInput, match="measured on another fs/frob.c"):
        unreached_lines(out, copy)
    with pytest.raises(BadInput, match="not an otns coverage output folder"):
        unreached_lines(tmp_path / "nothing", copy)


def test_the_coverage_copy_takes_sources_not_build_outputs(tmp_path):
    from kernels.coverage import sync
    tree = tmp_path / "linux"
    for rel, text in {"Makefile": "mrproper:\n\t@rm -f .config\n", "arch/x86/kernel/vmlinux.lds.S": "SECTIONS {}\n",
                      "fs/namespace.c": "int x;\n", "fs/namespace.o": "object", "fs/.namespace.o.cmd": "cmd",
                      "vmlinux": "elf", "vmlinux.a": "archive", ".config": "CONFIG_X=y\n", ".git/HEAD": "ref"}.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    copy = tmp_path / "copy" / "linux"
    with open(tmp_path / "log", "w") as log:
        sync(tree, copy, log)
    have = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
    assert have == ["Makefile", "arch/x86/kernel/vmlinux.lds.S", "fs/namespace.c"]  # .config: mrproper's
