"""The code keeps to its lint (ruff: pycodestyle, pyflakes, import order, bugbear, pyupgrade) and
its types (mypy), as pyproject.toml configures them. Each tool's own findings are the message."""
from __future__ import annotations

import subprocess
import sys

from otns.paths import REPO_ROOT


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    p = _run("ruff", "check", "--no-cache", "--output-format", "concise", "base", "kernels", "vm", "otns", "tests",
             "scripts")
    assert p.returncode == 0, p.stdout + p.stderr


def test_mypy_finds_nothing():
    p = _run("mypy")  # the files and options of [tool.mypy]
    assert p.returncode == 0, p.stdout + p.stderr
