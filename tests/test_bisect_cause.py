"""`otns bisect` names the likeliest cause first (no boot): the ranking of changelog lines
against what a test is about, on a changelog recorded from Debian (7.2.10 and 7.2.11, the
boundary where the covered-mounts fix entered). What the test is about comes from its rule and
fix markers, as bisect reads them from the junit.xml of the kernels it ran (here: as the host's
collection of the suite gives them, the same markers)."""
from __future__ import annotations

from pathlib import Path

import pytest

from otns.bisect import cause, hunt, rules

from .suite_marks import collected

DATA = Path(__file__).parent / "data" / "changelog-7.2.9-to-7.2.11.txt"
COVERED = "conformance/test_foreign.py::test_foreign_non_recursive_copy_over_children_is_einval"
FIX = "namespace: keep covered mounts covered in OPEN_TREE_NAMESPACE"


@pytest.fixture(scope="module")
def relevant() -> list[str]:
    with open(DATA) as f:
        entries = hunt.changelog_entries(f, "7.2.9")
    return [ln.strip() for ln in entries if hunt.RELEVANT.search(ln)]


def test_the_recording_is_the_case_to_fix(relevant):
    # in changelog order the fix is far down the list, behind unrelated mount fixes and a drm line
    assert len(relevant) == 28
    assert [i for i, ln in enumerate(relevant) if FIX in ln] == [10]
    assert any(ln.startswith("- drm/") for ln in relevant)


def test_the_covered_mounts_fix_ranks_first(relevant):
    rule_ids, fixes = collected()[COVERED]
    assert (rule_ids, fixes) == (["OT-FOREIGN-NONREC"], ["COVERED_MOUNTS"])
    prof = cause.profile(COVERED, rule_ids, fixes)
    assert prof.references == [FIX]  # the fix's subject, from conformance/references.py
    ranked = cause.rank(relevant, prof)
    assert FIX in ranked[0][1] and ranked[0][0] > 2 * ranked[1][0], ranked[:3]
    printed = cause.likely_causes(COVERED, relevant, rule_ids, fixes)
    assert printed[0].startswith("likely cause") and FIX in printed[0]
    assert len(printed) == 3  # the best, then two more


def test_it_ranks_first_from_the_rule_and_words_alone(relevant):
    # a test that names no known fix: its rule and its words suffice
    prof = cause.profile(COVERED, ["OT-FOREIGN-NONREC"])
    assert not prof.references and prof.rule_ids == ["OT-FOREIGN-NONREC"]
    assert FIX in cause.rank(relevant, prof)[0][1]


def test_results_without_markers_rank_by_the_nearest_rules(relevant):
    # results from before tests carried markers: the rules nearest the test's name and docstring
    prof = cause.profile(COVERED)
    assert not prof.references and "OT-FOREIGN-NONREC" in prof.rule_ids
    assert FIX in cause.rank(relevant, prof)[0][1]


def test_every_line_is_kept_once(relevant):
    ranked = [line for _, line in cause.rank(relevant, cause.profile(COVERED, *collected()[COVERED]))]
    assert sorted(ranked) == sorted(relevant)


def test_the_recorded_rule_is_used_not_the_source_text(tmp_path):
    (tmp_path / "conformance").mkdir()
    (tmp_path / "conformance" / "test_x.py").write_text(
        'def test_thing():\n    """Checks OT-LIMIT: see the rule."""\n    assert True\n')
    prof = cause.profile("conformance/test_x.py::test_thing", ["OT-DIR"], root=tmp_path)
    assert prof.rule_ids == ["OT-DIR"]
    assert "directory" in prof.weights  # from the rule's text in conformance/rules.py
    assert "OT-DIR" in rules.load()


def test_a_test_that_is_not_in_this_checkout_ranks_by_its_name(relevant):
    prof = cause.profile("conformance/test_gone.py::test_unbindable_copy_kept[x]")
    assert cause.rank(relevant, prof)[0][1] == "- mount: keep a copied mount unbindable"


def test_tokens():
    assert cause.tokens("Keep covered MOUNTS covered in OPEN_TREE_NAMESPACE") == [
        "keep", "cover", "mount", "cover", "open_tree_namespace", "open", "tree", "namespace"]


def test_a_bisect_session_explains_where_it_ended(tmp_path, monkeypatch):
    """otns.bisect.session.find on recorded data: 7.2.6 to 7.2.13 (the recorded index's 7.2.13 cloud
    kernel, renumbered), outcomes as the fix arrived in 7.2.11, and the recorded changelog."""
    import dataclasses

    from kernels.debian import parse_index, upstream_key
    from otns.bisect import session
    from otns.bisect.hunt import Known, Runner

    index = {p.stem: p.read_text() for p in DATA.parent.glob("*.Packages")}
    k13 = next(k for k in parse_index(index) if k.upstream == "7.2.13" and k.flavour == "cloud")
    kernels = [dataclasses.replace(k13, upstream=f"7.2.{n}", debian_version=f"7.2.{n}-1") for n in range(6, 14)]

    class Recorded(Runner):
        def outcomes(self, k, tests):
            self.boots += 1
            fixed = upstream_key(k.upstream) >= upstream_key("7.2.11")
            return {COVERED: "pass" if fixed else "fail"}, Known({}, None, ""), 0.0

        def marks(self, test, ks):
            return collected()[test]
    monkeypatch.setattr(hunt, "changelog_between", lambda cache_dir, older, newer:
                        hunt.changelog_entries(open(DATA), older.upstream))
    plan = session.Bisect([COVERED], "cloud", kernels, Recorded(tmp_path, tmp_path), {"fail"}, {"pass"})
    steps = []
    found = session.find(plan, COVERED, tmp_path, tmp_path, steps.append)
    assert (found.last_good.upstream, found.first_bad.upstream) == ("7.2.10", "7.2.11") and not found.skipped
    assert len(steps) == plan.runner.boots < len(kernels)  # a search, not a scan
    assert found.changelog_file == tmp_path / "changelog-7.2.10-to-7.2.11.txt" and found.changelog_file.is_file()
    assert 0 < len(found.relevant) < 28 and FIX in found.causes[0]  # from 7.2.10 on: fewer lines than from 7.2.9
