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
    assert len(data["checkouts"]) == 1 and len(data["builds"]) == 2  # same release, two runs
    good = [t for t in data["tests"] if t["build_id"] == data["builds"][0]["id"]]
    statuses = {t["misc"]["node_id"]: t["status"] for t in good if t["path"] != "boot"}
    assert len(statuses) == sum(kernels[0].summary["counts"].values())
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
