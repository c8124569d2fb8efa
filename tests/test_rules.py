"""The rules and known fixes as data (no boot): the table and docs/semantics.md agree row for row,
every rule has a test or a written reason, every conformance test names a rule, markers are
checked at collection, and a failure's message and junit.xml carry its rule and fix."""
from __future__ import annotations

import platform
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance import marks
from conformance.references import FIXES
from conformance.rules import BY_ID, RULES
from otns.bisect import rules as host_rules
from otns.paths import REPO_ROOT
from otns.results.files import parse_junit
from otns.results.model import to_ktap

from .suite_marks import collected

SEMANTICS = REPO_ROOT / "docs" / "semantics.md"
_ROW = re.compile(r"^\| `([A-Z]{2}-[A-Z0-9-]+)` \| (.*) \|\s*$")


def doc_rows() -> list[tuple[str, str]]:
    return [(m[1], m[2]) for line in SEMANTICS.read_text().splitlines() if (m := _ROW.match(line))]


def test_the_document_states_the_table_row_for_row():
    table = [(r.id, r.text.replace("|", "\\|")) for r in RULES]
    rows = doc_rows()
    assert len({i for i, _ in rows}) == len(rows), "a rule id appears twice in docs/semantics.md"
    only_doc = [f"{i}: {t}" for i, t in rows if (i, t) not in table]
    only_table = [f"{i}: {t}" for i, t in table if (i, t) not in rows]
    assert not only_doc and not only_table, (
        "docs/semantics.md and conformance/rules.py differ:\n  only in the document (or worded otherwise):\n    "
        + "\n    ".join(only_doc) + "\n  only in the table (or worded otherwise):\n    " + "\n    ".join(only_table))
    assert [i for i, _ in rows] == [r.id for r in RULES], "the same rules, in another order"


def test_the_table_is_whole():
    assert len(BY_ID) == len(RULES), "a rule id appears twice in conformance/rules.py"
    features = {"open_tree_ns", "fsmount_ns", "empty_mntns"}
    for r in RULES:
        assert re.fullmatch(r"[A-Z]{2}-[A-Z0-9]+(-[A-Z0-9]+)*", r.id), r.id
        assert r.feature in features and r.text and r.source, r.id
        assert all(re.fullmatch(r"(fs|kernel)/[a-z_]+\.c: [a-z_0-9]+\(\)", s) for s in r.source), (r.id, r.source)
        assert set(r.fixes) <= set(FIXES), (r.id, r.fixes)
    # the host reads the same table, installed or not (no docs/ needed)
    assert host_rules.load() == {r.id: r.text for r in RULES}


def test_every_rule_has_a_test_or_a_written_reason():
    tested = {r for rules, _ in collected().values() for r in rules}
    no_test = [r.id for r in RULES if r.id not in tested and not r.untested]
    needless = [r.id for r in RULES if r.id in tested and r.untested]
    assert not no_test, f"rules no conformance test names (add a test, or a reason in conformance/rules.py): {no_test}"
    assert not needless, f"rules with a test and a reason for having none: {needless}"


def test_every_conformance_test_names_a_rule():
    suite = collected()
    assert len(suite) >= 457
    unnamed = [t for t, (rules, _) in suite.items() if not rules]
    assert not unnamed, "tests that name no rule (@pytest.mark.rule(ID)):\n" + "\n".join(unnamed)


def test_every_known_fix_is_guarded_and_stated_per_line():
    guarded = {f for _, fixes in collected().values() for f in fixes}
    assert guarded == set(FIXES), f"fixes no test guards: {set(FIXES) - guarded}"
    for f in FIXES.values():
        assert f.fixed, f.name
        assert all(re.fullmatch(r"\d+\.\d+", line) for line in [*f.fixed, *f.lacking]), f.name
        assert all(v.startswith(line + ".") or v.startswith(line + "-") for line, v in [*f.fixed.items(),
                                                                                         *f.lacking.items()]), f.name


def test_a_fix_is_stated_in_the_kernels_own_line():
    enotdir, covered = FIXES["ENOTDIR_TARGET"], FIXES["COVERED_MOUNTS"]
    assert enotdir.where_fixed("7.0.4+deb13-cloud-amd64") == "fixed in 7.0.13 (7.0.12 lacks it)"
    assert enotdir.where_fixed("7.1.13+deb13-cloud-amd64").startswith("fixed in 7.1.3 or earlier")
    assert covered.where_fixed("7.2.9+deb13-cloud-amd64") == "fixed in 7.2.11 (7.2.9 lacks it)"
    # a line where Debian's kernels show no fix names the lines that have one, never as its own
    assert "7.2.11" in covered.where_fixed("6.19.14") and not covered.where_fixed("6.19.14").startswith("fixed in 7.2")


# The markers at work: a small suite of its own, run on the host through conformance/marks.py.

DUMMY = '''
import pytest

@pytest.mark.rule("OT-DIR")
@pytest.mark.fix("ENOTDIR_TARGET")
def test_fails():
    assert 0 == 20, "open_tree(file): the kernel gave an fd, a conforming kernel ENOTDIR"

@pytest.mark.rule("OT-FD", "OT-ID")
def test_passes():
    pass
'''


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conformance.marks",
                           "-o", "junit_family=xunit2", "-rfEs", *args], cwd=folder, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT),
                                            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "COLUMNS": "300"})


def test_a_failure_carries_its_rule_and_fix(tmp_path: Path):
    (tmp_path / "test_dummy.py").write_text(DUMMY)
    p = run_pytest(tmp_path, "--junitxml=junit.xml", "test_dummy.py")
    assert p.returncode == 1, p.stdout + p.stderr
    head = marks.tag(["OT-DIR"], ["ENOTDIR_TARGET"], platform.release())
    assert head.startswith("[rule OT-DIR; known fix ENOTDIR_TARGET: ")
    # the failing test's line, and the failure's long report
    assert f"FAILED test_dummy.py::test_fails - {head} AssertionError: open_tree(file)" in p.stdout
    assert "rules and known fixes" in p.stdout and "OT-DIR: the looked-up object must be a directory" in p.stdout
    # and whole at the end, however narrow the terminal: the short summary line may be cut
    block = p.stdout.split(" rules and known fixes of the failures ")[1]
    assert f"\ntest_dummy.py::test_fails {head}\n" in block and "test_passes" not in block
    # junit.xml: the message starts with them; every test has its properties
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "junit.xml").iter("testcase")}
    assert cases["test_fails"].find("failure").get("message").startswith(head + " AssertionError:")
    props = {n: [(p.get("name"), p.get("value")) for p in c.iter("property")] for n, c in cases.items()}
    assert props == {"test_fails": [("rule", "OT-DIR"), ("fix", "ENOTDIR_TARGET")],
                     "test_passes": [("rule", "OT-FD"), ("rule", "OT-ID")]}
    # what otns reads of it, and the KTAP it writes
    results = {r.name.rpartition("::")[2]: r for r in parse_junit(tmp_path / "junit.xml")}
    assert (results["test_fails"].rules, results["test_fails"].fixes) == (["OT-DIR"], ["ENOTDIR_TARGET"])
    assert (results["test_passes"].rules, results["test_passes"].fixes) == (["OT-FD", "OT-ID"], [])
    ktap = to_ktap(list(results.values()))
    assert "# rules: OT-DIR; known fixes: ENOTDIR_TARGET\n# [rule OT-DIR; known fix ENOTDIR_TARGET:" in ktap


@pytest.mark.parametrize("marker, says", [
    ('@pytest.mark.rules("OT-DIR")', "unknown marker 'rules'"),
    ('@pytest.mark.rule("OT-DIRR")', "unknown rule 'OT-DIRR'"),
    ('@pytest.mark.fix("ENOTDIR")', "unknown fix 'ENOTDIR'"),
    ("@pytest.mark.rule()", "a rule marker names nothing"),
])
def test_a_wrong_marker_stops_collection(tmp_path: Path, marker: str, says: str):
    (tmp_path / "test_typo.py").write_text(f"import pytest\n\n{marker}\ndef test_x():\n    pass\n")
    p = run_pytest(tmp_path, "--collect-only", "-q", "test_typo.py")
    assert p.returncode == pytest.ExitCode.USAGE_ERROR, p.stdout + p.stderr
    assert f"ERROR: wrong marker in conformance/: test_typo.py::test_x: {says}" in p.stdout + p.stderr
