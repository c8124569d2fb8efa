"""`pip install .` (not editable) into a fresh virtual environment gives a working `otns run`
from any folder: the conformance suite ships with the package. The venv lives under /tmp on
purpose: a module-less guest kernel cannot write /tmp, and the guest must not hide it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otns.paths import REPO_ROOT

from .conftest import DEFAULT_SPEC, otns_argv

pytestmark = pytest.mark.boot


def test_non_editable_install_runs_the_suite_from_tmp(cache_dir: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    p = subprocess.run([str(venv / "bin/pip"), "install", "-q", str(REPO_ROOT)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    site = next(venv.glob("lib/python*/site-packages"))
    assert (site / "conformance" / "test_core.py").is_file() and not (site / "otns.egg-link").exists()
    results = tmp_path / "results"
    p = subprocess.run([str(venv / "bin/otns"), *otns_argv("run", "--kernel", DEFAULT_SPEC, "--results", str(results),
                                                          "-k", "test_recursive_alone_is_einval", cache=cache_dir)],
                       cwd="/tmp", capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads((results / "summary.json").read_text())
    assert summary["verdict"] == "CONFORMS" and summary["counts"]["pass"] >= 1, summary
    guest = json.loads((results / "guest.json").read_text())
    assert guest["pytest_path"].startswith(str(site)), guest  # the installed pytest, not the checkout's
    ktap = (results / "ktap.txt").read_text()
    assert "ok 1 conformance/test_core.py::test_recursive_alone_is_einval" in ktap, ktap
    # report.html's template ships as package data: the installed otns renders the page too.
    p = subprocess.run([str(venv / "bin/otns"), "report", str(results), "--out", str(tmp_path / "report")],
                       cwd="/tmp", capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    page = (tmp_path / "report" / "report.html").read_text()
    assert '<div class="head good">' in page and summary["verdict_line"] in page
