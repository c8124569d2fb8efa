"""One owner per results folder, on a real kernel: while a run's guest runs, a second run on its
folder is refused naming the first, and the first run's results stay whole."""
from __future__ import annotations

import json
import subprocess

import pytest

from otns.paths import REPO_ROOT
from otns.results.files import parse_junit

from .conftest import otns_command
from .test_bad_input import assert_one_line_error

pytestmark = pytest.mark.boot


def test_two_runs_on_one_folder_never_lose_a_result(otns, cache_dir, tmp_path, no_stray_vms):
    """Run A on a subset; while its guest runs, run B on the same folder: B is refused (exit 2)
    naming A, and A's results are whole (B once emptied the folder under A's guest)."""
    folder = tmp_path / "r"
    a = subprocess.Popen(otns_command("run", "--accel", "tcg", "--results", str(folder), "-k", "test_core or test_flags",
                                      cache=cache_dir), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert a.stdout is not None
        for line in a.stdout:  # pytest's header, printed by the guest: A's guest is running
            if "test session starts" in line:
                break
        else:
            pytest.fail(f"run A never reached the suite: {a.stderr.read() if a.stderr else ''}")
        b = otns("run", "--accel", "tcg", "--results", str(folder), "-k", "test_unknown_flag_bits_are_einval",
                 results=False)
        assert_one_line_error(b, 2, "in use by another otns run", f"pid {a.pid}")
        rest, err = a.communicate(timeout=900)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    assert a.returncode == 0, err[-2000:]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["verdict"] == "CONFORMS" and summary["counts"]["pass"] > 100, summary
    assert len(parse_junit(folder / "junit.xml")) == sum(summary["counts"].values())
