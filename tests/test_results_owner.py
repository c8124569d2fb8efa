"""One owner per results folder: a run holds its folder, a second run on it is refused (exit 2)
naming the holder; a matrix refuses a kernel listed twice and holds its output folder; a
matrix kernel that never finished is shown as such by `otns report`. No boot here (the two
runs at once, on a real kernel: test_results_owner_boot.py)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from base import safefs
from otns.matrix.entries import check_unique
from otns.report import grid as report
from otns.results.plan import Entry

from .test_bad_input import assert_one_line_error

RECORDED_MATRIX = Path(__file__).parent / "data" / "matrix-3-kernels"


def _holder(folder: Path) -> subprocess.Popen:
    """Another process holding `folder` as a run does (base.safefs.owned), until it is killed."""
    code = ("import sys, time; from pathlib import Path; from base import safefs\n"
            "with safefs.owned(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True,
                         cwd=Path(__file__).parent.parent)
    assert p.stdout is not None and p.stdout.readline() == "held\n"
    return p


@pytest.fixture
def held(tmp_path):
    folder = safefs.prepare_results(tmp_path / "r")
    (folder / "junit.xml").write_text("the first run's")
    p = _holder(folder)
    yield folder, p
    p.kill()
    p.wait()


def test_a_held_results_folder_is_refused_naming_the_holder(otns, held, cached_image):
    folder, p = held
    r = otns("run", "--kernel", str(cached_image), "--results", str(folder), "-k", "test_recursive_alone_is_einval",
             results=False)
    assert_one_line_error(r, 2, str(folder), "in use by another otns run", f"pid {p.pid}")
    assert (folder / "junit.xml").read_text() == "the first run's", "the second run emptied the first's folder"


def test_the_lock_nests_within_a_process_and_goes_with_its_holder(tmp_path, held):
    folder, p = held
    with pytest.raises(safefs.BadInput, match=f"pid {p.pid}"):
        with safefs.owned(folder):
            pass
    p.kill()
    p.wait()
    with safefs.owned(folder), safefs.owned(folder):  # the run a matrix entry makes in the folder it holds
        pass
    with safefs.owned(folder):
        pass  # released by the blocks above


def test_a_matrix_refuses_a_kernel_listed_twice(otns):
    r = otns("matrix", "debian:7.3.4", "debian:7.3.4=conform", results=False)
    assert_one_line_error(r, 2, "listed twice", "debian:7.3.4")
    with pytest.raises(safefs.BadInput, match="listed twice"):  # different specs, one folder name
        check_unique([Entry("/k/a b"), Entry("/k/a_b")])
    check_unique([Entry("debian:7.3.4"), Entry("debian:7.3.4", flavour="amd64")])


def test_a_matrix_output_folder_in_use_is_refused(otns, tmp_path, cached_image):
    out = tmp_path / "out"
    p = _holder(out)
    try:
        r = otns("matrix", str(cached_image), "--out", str(out), "-k", "test_recursive_alone_is_einval",
                 results=False)
        assert_one_line_error(r, 2, "in use by another otns run", f"pid {p.pid}")
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("state, shown", [
    (None, "NOT RUN"),
    ({"state": "booting"}, "INTERRUPTED (stopped while booting; no summary.json)"),
    ({"state": "interrupted", "detail": "stopped while running"}, "INTERRUPTED (stopped while running)"),
])
def test_report_shows_a_matrix_kernel_that_never_finished(otns, tmp_path, state, shown):
    out = shutil.copytree(RECORDED_MATRIX, tmp_path / "m")
    k = out / "debian_7.0.4-cloud"
    shutil.rmtree(k)
    if state is not None:
        k.mkdir()
        (k / "state.json").write_text(json.dumps({"format": 2, **state}))
    kernels = report.load_matrix(out)
    assert [x.name for x in kernels] == ["debian:6.19.14", "debian:7.0.4", "debian:7.2.13"]
    assert kernels[1].verdict.startswith(shown), kernels[1].verdict
    r = otns("report", str(out), "--out", str(tmp_path / "rep"), "--kcidb", str(tmp_path / "k.json"), results=False)
    assert r.code == 0 and shown in " ".join(r.stdout.split()), r.stdout + r.stderr
    assert shown.split(" (")[0] in (tmp_path / "rep" / "report.html").read_text()
    boots = [t["status"] for t in json.loads((tmp_path / "k.json").read_text())["tests"] if t["path"] == "boot"]
    assert boots[1] == "MISS"


def test_interrupted_matrix_kernel_says_so(tmp_path, monkeypatch):
    """SIGTERM reaches a matrix worker as KeyboardInterrupt in the middle of its run: its
    state.json then says interrupted (it said "booting" for ever)."""
    from otns.matrix import entry_test as matrix_test
    from otns.results.plan import Plan

    def execute(opts, notice, stream):
        opts.on_state("booting")
        time.sleep(0.01)
        raise KeyboardInterrupt
    monkeypatch.setattr(matrix_test, "execute", execute)
    plan = Plan(entries=[Entry("debian:7.3.4")], out=tmp_path, cache_dir=tmp_path / "cache")
    with pytest.raises(KeyboardInterrupt):
        matrix_test.test_kernel(plan.entries[0], plan)
    state = json.loads((tmp_path / "debian_7.3.4-cloud" / "state.json").read_text())
    assert state["state"] == "interrupted" and state["detail"] == "stopped while booting", state
    assert os.listdir(tmp_path / "debian_7.3.4-cloud") != []
