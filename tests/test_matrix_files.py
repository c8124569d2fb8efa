"""The files of a matrix output folder besides the kernels' (plan.json, matrix.log), and bisect's
changelog file: written and read by otns.results.files alone, as untrusted on the way back."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from base import safefs
from otns.options import VmSettings
from otns.results import files
from otns.results.plan import Entry, Plan


def _plan(out: Path) -> Plan:
    return Plan(entries=[Entry("debian:7.2", "may-lack", "amd64"), Entry("debian:7.3.4")], out=out,
                cache_dir=out / "cache", vm=VmSettings(timeout=60.0), order=[1, 0])


def test_the_plan_reads_back_as_it_was_written(tmp_path):
    plan = _plan(tmp_path)
    path = files.write_plan(plan)
    assert path == tmp_path / files.PLAN and files.read_plan(path) == plan
    assert [k.name for k in files.load_matrix(tmp_path)] == ["debian:7.2 (amd64)", "debian:7.3.4"]


@pytest.mark.parametrize("text", ['{"entries": 3}', '{"entries": [{"kernel": "x", "colour": "red"}]}', "{}",
                                  '{"entries": [], "out": "o", "cache_dir": "c", "timeout": -1, "cpus": null, '
                                  '"memory": "1G", "accel": "auto", "pytest_args": []}'])
def test_a_file_that_is_no_plan_is_one_line(tmp_path, text):
    (tmp_path / files.PLAN).write_text(text)
    with pytest.raises(safefs.BadFile, match="not an otns matrix plan|--timeout"):
        files.read_plan(tmp_path / files.PLAN)


def test_a_linked_plan_is_not_followed(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    files.write_plan(_plan(tmp_path / "elsewhere"))
    os.symlink(tmp_path / "elsewhere" / files.PLAN, tmp_path / files.PLAN)
    with pytest.raises(safefs.BadFile, match="symbolic link"):
        files.read_plan(tmp_path / files.PLAN)


def test_the_log_tail_is_its_last_line_and_bounded(tmp_path):
    assert files.matrix_log_tail(tmp_path) == ""
    with files.open_matrix_log(tmp_path) as log:
        log.write("x" * (4 * files.LOG_TAIL_MAX) + "\nERROR: the last word\n\n")
    assert files.matrix_log_tail(tmp_path) == "ERROR: the last word"


def test_a_log_that_is_a_link_or_a_fifo_says_nothing(tmp_path):
    (tmp_path / "secret").write_text("do not print me\n")
    os.symlink(tmp_path / "secret", tmp_path / files.MATRIX_LOG)
    assert files.matrix_log_tail(tmp_path) == ""
    os.unlink(tmp_path / files.MATRIX_LOG)
    os.mkfifo(tmp_path / files.MATRIX_LOG)
    assert files.matrix_log_tail(tmp_path) == ""  # returns at once: opened non-blocking, not read


def test_the_changelog_and_a_kernels_log_replace_what_was_there(tmp_path):
    os.symlink(tmp_path / "target", tmp_path / "changelog-7.2.9-to-7.2.11.txt")
    path = files.write_changelog(tmp_path, "7.2.9", "7.2.11", ["a", "b"])
    assert path.read_text() == "a\nb\n" and not path.is_symlink() and not (tmp_path / "target").exists()
    with files.open_kernel_log(tmp_path / "new", tmp_path / "new" / "7.2.9-cloud") as log:
        log.write("booted\n")
    assert (tmp_path / "new" / "7.2.9-cloud.log").read_text() == "booted\n"


def test_a_recorded_plan_reads_back(tmp_path):
    """plan.json as an earlier otns wrote it (tests/data/matrix-3-kernels)."""
    plan = files.read_plan(Path(__file__).parent / "data" / "matrix-3-kernels" / files.PLAN)
    assert [e.kernel for e in plan.entries] == ["debian:6.19.14", "debian:7.0.4", "debian:7.2.13"]
    assert plan.vm == VmSettings(cpus=2, memory="1G", timeout=300.0, accel="auto") and plan.pytest_args == []


def test_what_the_runs_came_to(tmp_path):
    from otns.matrix import session
    from otns.results.model import Verdict

    plan = _plan(tmp_path)
    a, b = (tmp_path / e.slug for e in plan.entries)
    a.mkdir()
    b.mkdir()
    files.write_state(a, {"state": "done", "ok": True, "verdict": "CONFORMS", "verdict_name": Verdict.CONFORMS.name})
    files.write_state(b, {"state": "done", "ok": False, "verdict": "CRASHED", "verdict_name": Verdict.CRASHED.name,
                          "detail": "Kernel panic - not syncing: x"})
    end = session.ended(plan)
    assert [(e.kernel, why) for e, why in end.not_as_expected] == [("debian:7.3.4",
                                                                   "CRASHED: Kernel panic - not syncing: x")]
    assert end.crashed and not session.runner_broke(1, plan) and session.runner_broke(3, plan)
