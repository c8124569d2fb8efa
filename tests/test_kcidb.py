"""KCIDB output over a recorded result folder (a real `otns run` on Debian 7.3.4), validated
with kcidb-io, KernelCI's own schema library."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import kcidb_io
import pytest

from otns.report import grid as report
from otns.report import kcidb

RECORDED = Path(__file__).parent / "data" / "results-7.3.4"


@pytest.fixture
def folders(tmp_path: Path) -> list[Path]:
    good = shutil.copytree(RECORDED, tmp_path / "7.3.4")
    hung = shutil.copytree(RECORDED, tmp_path / "7.3.4-hung")
    s = json.loads((hung / "summary.json").read_text())
    s.update(verdict="HUNG", verdict_line="HUNG")
    (hung / "summary.json").write_text(json.dumps(s))
    (hung / "junit.xml").unlink()
    return [good, hung]


def test_report_validates_and_keeps_every_outcome(folders):
    kernels = [report.load_folder(f) for f in folders]
    data = kcidb.report(kernels)
    kcidb_io.schema.V5_3.validate(data)
    assert len(data["checkouts"]) == 2 and len(data["builds"]) == 2  # same release, two runs: each its own
    good = [t for t in data["tests"] if t["build_id"] == data["builds"][0]["id"]]
    statuses = {t["misc"]["node_id"]: t["status"] for t in good if t["path"] != "boot"}
    assert len(statuses) == sum(kernels[0].finished().counts.values())
    assert set(statuses.values()) == {"PASS", "SKIP"}
    boots = {t["build_id"]: t["status"] for t in data["tests"] if t["path"] == "boot"}
    assert list(boots.values()) == ["PASS", "FAIL"]  # the hung kernel's boot failed
    assert len({t["id"] for t in data["tests"]}) == len(data["tests"])


@pytest.mark.parametrize("node, path", [
    ("conformance/test_paths.py::test_path_kind[regular-file]", "otns.test_paths.test_path_kind.regular-file"),
    ("conformance/test_upstream_open_tree_ns.py::TestOpenTreeNs::test_create_namespace[basic_root]",
     "otns.test_upstream_open_tree_ns.TestOpenTreeNs.test_create_namespace.basic_root"),
    ("conformance/test_x.py::test_y[a.b c/$]", "otns.test_x.test_y.a_b_c"),
])
def test_paths_are_kcidb_paths(node, path):
    assert kcidb.test_path(node) == path
    assert kcidb_io.schema.V5_3.path_re.match(path)


def test_report_command_writes_kcidb(otns, folders, tmp_path):
    out = tmp_path / "report"
    r = otns("report", *map(str, folders), "--out", str(out), "--kcidb", str(out / "kcidb.json"), results=False)
    assert r.code == 0, r.stderr
    kcidb_io.schema.V5_3.validate(json.loads((out / "kcidb.json").read_text()))


RUN = Path(__file__).parent / "data" / "run-7.3.4"  # a run that recorded its run_id and start time


def test_ids_are_unique_per_run_and_carry_times_and_links(tmp_path, monkeypatch):
    # Two runs of the same kernel, as two nightly matrices would leave them: no id in common.
    first = shutil.copytree(RUN, tmp_path / "night1" / "debian_7.3.4-cloud")
    second = shutil.copytree(RUN, tmp_path / "night2" / "debian_7.3.4-cloud")
    s = json.loads((second / "summary.json").read_text())
    s.update(run_id="0f6c3a52-5d7e-4d1b-9d8e-2b9f0c1a7e11", started="2026-12-08T03:17:00+00:00")
    (second / "summary.json").write_text(json.dumps(s))
    monkeypatch.chdir(tmp_path)  # where `otns report` runs: the folders' paths below it make the links
    one, two = (kcidb.report([report.load_folder(f)], url="https://ci.example/artifacts") for f in (first, second))
    for data in (one, two):
        kcidb_io.schema.V5_3.validate(data)
    ids = [{o["id"] for kind in ("checkouts", "builds", "tests") for o in d[kind]} for d in (one, two)]
    assert ids[0] and not ids[0] & ids[1]
    checkout, build, boot = one["checkouts"][0], one["builds"][0], one["tests"][0]
    recorded = json.loads((RUN / "summary.json").read_text())
    assert checkout["id"] == f"otns:{recorded['run_id']}" and checkout["start_time"] == recorded["started"]
    # Debian built the kernel: its tree is Debian's, and otns reports no build status it never had.
    assert checkout["tree_name"] == "debian" and "status" not in build and build["config_name"] == "cloud"
    assert boot["path"] == "boot" and boot["log_url"].startswith("https://ci.example/artifacts/")
    assert boot["log_url"] == "https://ci.example/artifacts/night1/debian_7.3.4-cloud/console.log"
    assert {f["name"] for f in boot["output_files"]} >= {"junit.xml", "summary.json"}


def test_a_folder_without_run_id_gets_a_stable_id_of_its_own(folders):
    a, b = (report.load_folder(f) for f in folders)
    assert kcidb.run_key(a) == kcidb.run_key(report.load_folder(folders[0])) != kcidb.run_key(b)


def test_a_built_trees_git_facts_reach_the_checkout(tmp_path):
    f = shutil.copytree(RUN, tmp_path / "tree-run")
    s = json.loads((f / "summary.json").read_text())
    del s["debian"]
    s["tree"] = {"name": "linux", "git_commit_hash": "a" * 40, "git_repository_url": "https://git.example/linux.git",
                 "git_repository_branch": "master"}
    (f / "summary.json").write_text(json.dumps(s))
    data = kcidb.report([report.load_folder(f)])
    kcidb_io.schema.V5_3.validate(data)
    c = data["checkouts"][0]
    assert (c["tree_name"], c["git_commit_hash"], c["git_repository_branch"]) == ("linux", "a" * 40, "master")
    assert data["builds"][0]["status"] == "PASS"
