"""`otns coverage` and `otns mutate --auto` on the real 7.2.13 tree of tests/test_build_boot.py: a
coverage kernel built and booted for two tests, and two generated faults (one the suite catches,
one the compiler erases)."""
from __future__ import annotations

import json

import pytest

from tests.test_build_boot import built_tree, otns, tarball  # noqa: F401 - the shared built tree

pytestmark = pytest.mark.boot

TWO_TESTS = "test_target_must_be_directory or test_unknown_flag_bit_is_einval"
CAUGHT = "auto-vfs-open-tree-3285-negate"  # open_tree's flag check inverted: every call refused
ERASED = "auto-create-new-namespace-3204-statement"  # a statement the compiler makes no code of


def test_coverage_counts_what_the_tests_ran(cache_dir, built_tree, tmp_path):  # noqa: F811 - the fixture
    out = tmp_path / "cov"
    r = otns(cache_dir, "coverage", str(built_tree), "-k", TWO_TESTS, "--out", str(out))
    assert r.returncode in (0, 1), r.stderr  # 1: gaps without a reason, as two tests must leave
    for name in ("coverage.json", "coverage.info", "coverage.md", "summary.txt", "functions.json", "html/index.html"):
        assert (out / name).is_file(), f"{name} missing"
    functions = {f["function"]: f for f in json.loads((out / "functions.json").read_text())}
    # Counters are the suite's own (reset before it ran): what the two tests call is reached,
    # what neither they nor the feature probes call (setns into a mount namespace) is not.
    assert functions["vfs_open_tree"]["lines_hit"] > 0 and functions["create_new_namespace"]["lines_hit"] > 0
    assert functions["mntns_install"]["lines_hit"] == 0, functions["mntns_install"]
    assert "SF:" in (out / "coverage.info").read_text()  # an lcov tracefile
    assert "lines" in r.stdout + r.stderr


def test_mutate_auto_judges_generated_faults(cache_dir, built_tree, tmp_path):  # noqa: F811 - the fixture
    out = tmp_path / "auto"
    r = otns(cache_dir, "mutate", str(built_tree), "--auto", "--faults", f"{CAUGHT},{ERASED}", "--out", str(out))
    assert r.returncode == 0, r.stderr  # nothing survived
    rows = {row["id"]: row for row in json.loads((out / "mutate.json").read_text())["faults"]}
    assert rows[CAUGHT]["status"] == "caught", rows[CAUGHT]
    assert rows[ERASED]["status"] == "equivalent", rows[ERASED]
