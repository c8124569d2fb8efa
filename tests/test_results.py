"""JUnit parsing, KTAP writing and the verdict, on JUnit files pytest really wrote."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance.features import BY_NAME
from otns.results.absence import Policy, judge
from otns.results.files import parse_junit
from otns.results.model import Outcome, Verdict, counts, decide, skip_reason, to_ktap

SAMPLE = textwrap.dedent('''
    import pytest

    def test_passes():
        pass

    def test_fails():
        assert 1 == 2, "kernel gave EPERM, a conforming kernel gives EINVAL"

    def test_skips():
        pytest.skip("kernel lacks OPEN_TREE_NAMESPACE # really")

    @pytest.fixture
    def broken():
        raise RuntimeError("harness broke")

    def test_errors(broken):
        pass

    @pytest.mark.parametrize("bit", [1, 2])
    def test_param(bit):
        pass

    class TestGroup:
        def test_inner(self):
            pass
''')


@pytest.fixture(scope="module")
def junit(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("junit")
    pkg = d / "conformance"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "test_sample.py").write_text(SAMPLE)
    xml = d / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "junit_family=xunit2",
                    f"--junitxml={xml}", "conformance"], cwd=d, capture_output=True)
    return xml


def test_outcomes_kept_apart(junit):
    results = {r.name: r for r in parse_junit(junit)}
    assert results["conformance/test_sample.py::test_passes"].outcome is Outcome.PASS
    assert results["conformance/test_sample.py::test_fails"].outcome is Outcome.FAIL
    assert "conforming kernel gives EINVAL" in results["conformance/test_sample.py::test_fails"].message
    assert results["conformance/test_sample.py::test_skips"].outcome is Outcome.SKIP
    assert results["conformance/test_sample.py::test_errors"].outcome is Outcome.ERROR
    assert results["conformance/test_sample.py::test_param[2]"].outcome is Outcome.PASS
    assert results["conformance/test_sample.py::TestGroup::test_inner"].outcome is Outcome.PASS
    assert counts(list(results.values())) == {"pass": 4, "fail": 1, "skip": 1, "error": 1}


def test_ktap(junit):
    results = parse_junit(junit)
    ktap = to_ktap(results).splitlines()
    assert ktap[0] == "KTAP version 1"
    assert ktap[1] == f"1..{len(results)}"
    test_lines = [ln for ln in ktap[2:] if not ln.startswith("#")]
    assert len(test_lines) == len(results)
    for i, line in enumerate(test_lines, 1):
        assert line.startswith((f"ok {i} ", f"not ok {i} "))
    skip = next(ln for ln in test_lines if "test_skips" in ln)
    # the reason follows the directive, and a '#' inside it cannot start another one
    assert skip.startswith("ok ") and skip.count("#") == 1
    assert skip.endswith("# SKIP kernel lacks OPEN_TREE_NAMESPACE (hash) really")
    assert next(ln for ln in test_lines if "test_fails" in ln).startswith("not ok ")
    assert any(ln.startswith("# ") and "conforming kernel" in ln for ln in ktap)


def test_skip_reason_prefixes():
    assert skip_reason("conformance/x.py:12: the reason") == "the reason"
    assert skip_reason("Skipped: the reason") == "the reason"
    assert skip_reason("plain: with colon") == "plain: with colon"


def test_verdicts(junit):
    results = parse_junit(junit)
    passing = [r for r in results if r.outcome is Outcome.PASS]
    skipped = [r for r in results if r.outcome in (Outcome.PASS, Outcome.SKIP)]
    errors = [r for r in results if r.outcome in (Outcome.PASS, Outcome.ERROR)]
    have = judge({n: {"state": "present"} for n in BY_NAME}, "7.3.4", Policy())
    lack = judge({n: {"state": "absent"} for n in BY_NAME}, "6.19.14", Policy())
    assert decide(results, have, "exited") is Verdict.NONCONFORMING
    assert decide(errors, have, "exited") is Verdict.HARNESS_ERROR
    assert decide(passing, have, "exited") is Verdict.CONFORMS
    assert decide(skipped, lack, "exited") is Verdict.FEATURE_ABSENT
    assert decide([], have, "exited") is Verdict.NO_TESTS
    assert decide(None, [], "no-boot") is Verdict.NO_BOOT
    # the kernel's fate beats whatever the tests said
    assert decide(passing, have, "crashed") is Verdict.CRASHED
    assert decide(None, [], "hung") is Verdict.HUNG


def test_terminal_grid_shows_whole_parametrized_test_ids(tmp_path):
    """Test ids in brackets are data, not rich markup: the grid keeps every parameter id."""
    import io

    from rich.console import Console

    from otns.report.grid import KernelResults, terminal_grid
    from otns.results.model import Outcome, RunSummary, TestResult
    names = [f"conformance/test_x.py::TestA::test_b[{p}]" for p in ("basic_root", "bold", "/red")]
    a = KernelResults("debian:7.2 [bold]", tmp_path, RunSummary.from_json({"verdict": "CONFORMS"}),
                      {n: TestResult(n, Outcome.PASS) for n in names})
    b = KernelResults("b", tmp_path, RunSummary.from_json({"verdict": "NONCONFORMING", "counts": {"fail": 1}}),
                      {n: TestResult(n, Outcome.FAIL) for n in names})
    out = io.StringIO()
    Console(file=out, width=300, color_system=None).print(terminal_grid([a, b]))
    text = out.getvalue()
    assert all(n in text for n in names), text
    assert "debian:7.2 [bold]" in text
