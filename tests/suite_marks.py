"""Every conformance test's rule and fix markers, as pytest collects the suite on the host
(`pytest --collect-only conformance`, no root or boot needed; a child process, as otns collects).

Also the pytest plugin that child loads (`-p tests.suite_marks`): it writes {node id: [rules,
fixes]} as JSON to $OTNS_SUITE_MARKS.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import pytest

from otns.paths import REPO_ROOT

ENV = "OTNS_SUITE_MARKS"


def pytest_collection_finish(session: pytest.Session) -> None:
    from conformance import marks
    out = {i.nodeid: [marks.of(i, marks.RULE), marks.of(i, marks.FIX)] for i in session.items}
    Path(os.environ[ENV]).write_text(json.dumps(out))


@cache
def collected() -> dict[str, tuple[list[str], list[str]]]:
    """{node id: (rules, fixes)} of the whole suite."""
    with tempfile.TemporaryDirectory(prefix="otns-marks-") as tmp:
        out = Path(tmp) / "marks.json"
        env = {**os.environ, ENV: str(out), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        p = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                            "-p", "tests.suite_marks", "conformance"], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, f"collecting conformance/ failed ({p.returncode}):\n{p.stdout[-3000:]}{p.stderr[-2000:]}"
        return {k: (v[0], v[1]) for k, v in json.loads(out.read_text()).items()}
