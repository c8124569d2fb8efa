"""Each output names a failure's rules and known fixes, read from the markers the guest recorded
(no boot): a real `otns run --kernel debian:7.0.4` (tests/data/results-7.0.4: junit.xml,
summary.json, features.json), which fails the 11 tests that guard fixes Debian's 7.0.4 lacks."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rich.console import Console

from otns.bisect.hunt import Runner
from otns.report import grid as report
from otns.report import kcidb
from otns.report.page import html_page
from otns.report.rows import Section, rows
from otns.results.files import load_folder, read_tests
from otns.results.model import Outcome, to_ktap

from .suite_marks import collected

RECORDED = Path(__file__).parent / "data" / "results-7.0.4"
ENOTDIR_ON_7_0 = "known fix ENOTDIR_TARGET: fixed in 7.0.13 (7.0.12 lacks it)"
COVERED_ON_7_0 = "known fix COVERED_MOUNTS: not in Debian's 7.0 kernels up to 7.0.13"


@pytest.fixture(scope="module")
def tests():
    return {t.name: t for t in read_tests(RECORDED)}


def test_every_failure_starts_with_its_rules_and_the_fix_of_its_own_line(tests):
    failed = {n: t for n, t in tests.items() if t.outcome is Outcome.FAIL}
    assert len(failed) == 11
    for name, t in failed.items():
        assert t.rules and t.fixes, name
        head = t.message.split("] ", 1)[0]
        assert head.startswith("[rule"), t.message[:200]
        assert all(r in head for r in t.rules), (name, head)
        assert ("ENOTDIR_TARGET" in t.fixes) == (ENOTDIR_ON_7_0 in head), (name, head)
        assert ("COVERED_MOUNTS" in t.fixes) == (COVERED_ON_7_0 in head), (name, head)
        assert "fixed in 7.2.11 (" not in head, head  # a 7.0 kernel is not sent to the 7.2 line
    # the markers it recorded are the suite's own, test for test
    suite = collected()
    assert all((t.rules, t.fixes) == suite[n] for n, t in tests.items()), "recorded markers differ from the suite's"


def test_ktap_gives_each_failure_its_rules_and_fixes(tests):
    ktap = to_ktap([tests["conformance/test_core.py::test_target_must_be_directory"]])
    assert ktap.splitlines()[2:4] == ["# rules: OT-DIR; known fixes: ENOTDIR_TARGET",
                                      f"# [rule OT-DIR; {ENOTDIR_ON_7_0}] AssertionError: open_tree('/proc/self/status', "
                                      "OPEN_TREE_NAMESPACE): the kernel gave success, a conforming kernel gives ENOTDIR"]


def test_kcidb_tests_carry_them_in_misc():
    kcidb_io = pytest.importorskip("kcidb_io")
    data = kcidb.report([load_folder(RECORDED)])
    kcidb_io.schema.V5_3.validate(data)
    misc = {t["misc"]["node_id"]: t["misc"] for t in data["tests"] if t["path"] != "boot"}
    assert misc["conformance/test_core.py::test_target_must_be_directory"] == {
        "node_id": "conformance/test_core.py::test_target_must_be_directory", "rules": ["OT-DIR"],
        "fixes": ["ENOTDIR_TARGET"]}
    assert all(m.get("rules") for m in misc.values())


def test_the_report_shows_them_on_the_failing_rows(tmp_path: Path):
    kernels = [load_folder(RECORDED)]
    failing = [r for r in rows(kernels) if r.section is Section.FAILURES]
    assert len(failing) == 11 and all(r.marks.startswith("rules: ") for r in failing)
    console = Console(width=120, record=True, file=open("/dev/null", "w"))
    console.print(report.terminal_grid(kernels))
    text = console.export_text()
    assert "conformance/test_core.py::test_target_must_be_directory" in text  # whole, on its own line
    assert "rules: OT-DIR; known fixes: ENOTDIR_TARGET" in text
    page = html_page(kernels, tmp_path)
    assert '<div class="marks">rules: OT-DIR; known fixes: ENOTDIR_TARGET</div>' in page


def test_bisect_reads_them_from_the_results_it_has(tmp_path: Path):
    runner = Runner(cache_dir=tmp_path, out=tmp_path)

    class Kernel:  # what Runner.folder needs of a Debian kernel
        upstream, flavour = "7.0.4", "cloud"
    shutil.copytree(RECORDED, runner.folder(Kernel))
    covered = "conformance/test_foreign.py::test_foreign_non_recursive_copy_over_children_is_einval"
    assert runner.marks(covered, [Kernel]) == (["OT-FOREIGN-NONREC"], ["COVERED_MOUNTS"])
    assert runner.marks("conformance/test_gone.py::test_x", [Kernel]) == ([], [])


def test_a_hostile_property_is_not_read(tmp_path: Path):
    folder = shutil.copytree(RECORDED, tmp_path / "r")
    junit = (folder / "junit.xml").read_text()
    junit = junit.replace('<property name="rule" value="OT-DIR" />',
                          '<property name="rule" value="OT-DIR&quot;&gt;&lt;script&gt;" /><property name="x" value="y" />', 1)
    (folder / "junit.xml").write_text(junit)
    t = {t.name: t for t in read_tests(folder)}["conformance/test_core.py::test_target_must_be_directory"]
    assert t.rules == [] and t.fixes == ["ENOTDIR_TARGET"]
