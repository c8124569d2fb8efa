"""`otns bisect` on real Debian kernels: the boundary equals a linear scan's."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from otns.bisect.hunt import Runner, kernels_between
from otns.paths import REPO_ROOT

from .conftest import otns_command

pytestmark = pytest.mark.boot

TEST = "conformance/test_foreign.py::test_foreign_non_recursive_copy_over_children_is_einval"
# Fixed by "namespace: keep covered mounts covered in OPEN_TREE_NAMESPACE" (stable 7.2.11).
OLD, NEW = "debian:7.2.6", "debian:7.2.13"


def otns(cache_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(otns_command(*args, cache=cache_dir), cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=1800)


def test_bisect_finds_the_fix_and_agrees_with_a_linear_scan(cache_dir, tmp_path):
    out = tmp_path / "bisect"
    p = otns(cache_dir, "bisect", TEST, "--find", "fix", "--good", OLD, "--bad", NEW, "--out", str(out))
    assert p.returncode == 0, p.stderr
    kernels = kernels_between(cache_dir, OLD, NEW, "cloud", print)
    assert len(kernels) >= 4
    line = next(ln for ln in p.stderr.splitlines() if "last with the old behaviour" in ln)
    # the linear scan over the same kernels, reusing the bisect's boots where it made them
    runner = Runner(cache_dir=cache_dir, out=out, select=[TEST])
    outcomes = [runner.outcomes(k, [TEST])[0][TEST] for k in kernels]
    first_new = next(i for i, o in enumerate(outcomes) if o == "pass")
    assert all(o == "fail" for o in outcomes[:first_new]) and all(o == "pass" for o in outcomes[first_new:])
    assert f"last with the old behaviour: {kernels[first_new - 1].upstream} " in line
    assert f"first with the new: {kernels[first_new].upstream} " in line
    boots = int(p.stderr.strip().splitlines()[-1].split()[0])
    assert boots < len(kernels), "bisect booted every kernel"
    assert "keep covered mounts covered" in p.stderr, "the Debian changelog between the two was not shown"
    # ranked first from the test's markers, read from the junit.xml of the kernels it ran
    likely = next(ln for ln in p.stderr.splitlines() if "likely cause" in ln)
    assert "keep covered mounts covered in OPEN_TREE_NAMESPACE" in likely, likely


def test_bisect_changed_between_two_result_folders(cache_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for spec, folder in (("debian:7.2.9", a), ("debian:7.2.12", b)):
        r = otns(cache_dir, "run", "--kernel", spec, "-k", "test_foreign", "--results", str(folder))
        assert r.returncode in (0, 1), r.stderr
    p = otns(cache_dir, "bisect", "--changed", str(a), str(b), "--find", "fix", "--out", str(tmp_path / "out"))
    assert p.returncode == 0, p.stderr
    # Every test that changed (the covered-mounts rule and the rules it brought, 7.2.11) has the same boundary.
    n = int(p.stderr.split("bisecting ", 1)[1].split()[0])
    assert n >= 2 and p.stderr.count("last with the old behaviour: 7.2.9") == n, p.stderr
    # one boot per kernel answered both tests: the ends plus the one between
    assert p.stderr.strip().splitlines()[-1].startswith("3 boots")
