"""`otns mutate --sample/--shard/--merge` (no boot): a seeded sample is the same everywhere, shards
split it without overlap, and merging their tables restores the one table, refusing what a
shard from elsewhere may hold wrongly."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from base.errors import BadInput
from kernels import faults
from otns.mutate.mutator import CAUGHT, SURVIVED, FaultResult, Report, load_report, merge, resumable, sample, write_report
from otns.options import shard

from .conftest import run_in_process

TABLE = faults.load()


def test_a_seeded_sample_is_reproducible_and_keeps_the_table_order():
    a, b = sample(TABLE, 10, seed=7), sample(TABLE, 10, seed=7)
    assert a == b and len(a) == 10
    assert [TABLE.index(f) for f in a] == sorted(TABLE.index(f) for f in a)
    assert sample(TABLE, 10, seed=8) != a
    assert sample(TABLE, len(TABLE) + 5, seed=1) == TABLE


def test_shards_split_without_overlap_and_cover_everything():
    parts = [shard(TABLE, f"{i}/3") for i in (1, 2, 3)]
    ids = [f.id for p in parts for f in p]
    assert sorted(ids) == sorted(f.id for f in TABLE) and len(set(ids)) == len(ids)


def test_the_choice_is_the_table_selected_sampled_then_sharded(tmp_path):
    from otns.mutate import selection

    chosen = selection.choose(None, False, None, None, 10, 7, "2/3")
    assert chosen == shard(sample(TABLE, 10, seed=7), "2/3") and chosen
    assert {f.rule for f in selection.choose(None, False, None, "OT-DIR", None, 0, None)} == {"OT-DIR"}
    with pytest.raises(BadInput, match="shard 3/3 of the selected faults is empty"):
        selection.choose(None, False, None, TABLE[0].id, None, 0, "3/3")
    (tmp_path / "bad.toml").write_text("[[fault]\n")
    with pytest.raises(BadInput, match="bad.toml"):
        selection.table(tmp_path / "bad.toml")


def _shard_report(tmp_path: Path, i: int, n: int, rows: list, version: str = "7.2.13") -> Path:
    out = tmp_path / f"shard-{i}"
    out.mkdir()
    report = Report(Path("/trees/linux"), out, version, f"2026-12-07 1{i}:00 UTC", rows,
                    "CONFORMS (open_tree_ns, fsmount_ns, empty_mntns)", 100.0 * i, True, f"{i}/{n}")
    write_report(report)
    return out


def test_merge_restores_the_unsplit_order_and_the_longest_wall_time(tmp_path):
    chosen = TABLE[:7]
    rows = [FaultResult(f, CAUGHT if k % 3 else SURVIVED, ["conformance/test_core.py::test_x"] if k % 3 else [])
            for k, f in enumerate(chosen)]
    folders = [_shard_report(tmp_path, i, 3, shard(rows, f"{i}/3")) for i in (1, 2, 3)]
    merged = merge(list(reversed(folders)), tmp_path / "all")  # the order given does not matter
    assert [r.fault.id for r in merged.rows] == [f.id for f in chosen]
    assert merged.seconds == 300.0 and merged.finished and merged.shard == "merged from 3 shards"
    again = load_report(tmp_path / "all")
    assert [(r.fault.id, r.status, r.caught_by) for r in again.rows] == \
        [(r.fault.id, r.status, r.caught_by) for r in merged.rows]
    assert "caught 4 of 7" in merged.score_line()


def test_merge_through_the_command_line(tmp_path, capfd):
    rows = [FaultResult(f, CAUGHT, ["conformance/test_core.py::test_x"]) for f in TABLE[:4]]
    folders = [_shard_report(tmp_path, i, 2, shard(rows, f"{i}/2")) for i in (1, 2)]
    code, out, err = run_in_process(["mutate", "--merge", *map(str, folders), "--out", str(tmp_path / "m")], capfd)
    assert code == 0, err
    assert "caught 4 of 4" in err and (tmp_path / "m" / "mutate.md").is_file()


@pytest.mark.parametrize("damage, message", [
    (lambda d: d.update(faults=[{"id": "x"}]), "is not a str"),
    (lambda d: d["faults"][0].update(status="pwned"), "unknown status"),
    (lambda d: d["faults"][0].update(caught_by=[1, 2]), "test ids"),
    (lambda d: d["faults"][0].update(build_seconds=True), "is not a number"),
    (lambda d: d.update(seconds="NaN"), "is not a number"),
    (lambda d: d.update(faults="everything"), "is not a list"),
])
def test_merge_refuses_a_damaged_table_naming_it(tmp_path, damage, message):
    folder = _shard_report(tmp_path, 1, 1, [FaultResult(TABLE[0], CAUGHT, ["conformance/test_core.py::test_x"])])
    data = json.loads((folder / "mutate.json").read_text())
    damage(data)
    (folder / "mutate.json").write_text(json.dumps(data))
    with pytest.raises(BadInput, match=message):
        merge([folder], tmp_path / "all")


def test_merge_refuses_other_kernels_a_shared_fault_and_a_folder_without_a_table(tmp_path):
    a = _shard_report(tmp_path, 1, 2, [FaultResult(TABLE[0], CAUGHT)])
    b = _shard_report(tmp_path, 2, 2, [FaultResult(TABLE[1], CAUGHT)], version="7.3.4")
    with pytest.raises(BadInput, match="different kernels"):
        merge([a, b], tmp_path / "all")
    c = _shard_report(tmp_path, 3, 3, [FaultResult(TABLE[0], SURVIVED)])
    with pytest.raises(BadInput, match="in both"):
        merge([a, c], tmp_path / "all")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="holds no mutate.json"):
        merge([tmp_path / "empty"], tmp_path / "all")
    (a / "mutate.json").unlink()
    (a / "mutate.json").symlink_to("/etc/passwd")
    with pytest.raises(BadInput, match="symbolic link"):
        merge([a], tmp_path / "all")


def test_debian_source_specs(tmp_path):
    from kernels import source
    index = {"sid": "Package: linux-source-7.2\nVersion: 7.2.13-1\nFilename: pool/l/linux-source-7.2_7.2.13-1_all.deb\n"
                    "Size: 164108840\n\nPackage: linux-source-7.2\nVersion: 7.2.9-1\nFilename: pool/x.deb\nSize: 1\n",
             "experimental": "Package: linux-source-7.3\nVersion: 7.3~rc7-1~exp1\nFilename: pool/y.deb\nSize: 2\n"}
    assert source.newest(index, "7.2").version == "7.2.13-1"
    assert source.newest(index, "7.3").version == "7.3~rc7-1~exp1"
    assert source.newest(index, "6.1") is None
    for bad in ("debian-source:", "debian-source:7", "debian-source:7.2; rm -rf /", "debian-source:../7.2"):
        with pytest.raises(BadInput, match="takes a kernel series"):
            source.fetch(bad, tmp_path)


def _interrupted(tmp_path: Path, rows: list, version: str = "7.2.13", finished: bool = False) -> Path:
    out = tmp_path / "interrupted"
    out.mkdir()
    write_report(Report(Path("/trees/linux"), out, version, "2026-12-07 19:00 UTC", rows, "CONFORMS", 1200.0,
                        finished))
    return out


def test_resume_keeps_the_judged_rows_and_runs_the_rest_in_the_selection_order(tmp_path):
    chosen = sample(TABLE, 10, seed=3)
    judged = [FaultResult(chosen[i], CAUGHT, ["conformance/test_core.py::test_x"]) for i in (2, 0, 1)]
    kept, left, spent = resumable(_interrupted(tmp_path, judged), chosen, "7.2.13")
    assert [r.fault.id for r in kept] == [f.id for f in chosen[:3]]
    assert left == chosen[3:] and spent == 1200.0


def test_resume_refuses_another_kernel_another_selection_and_a_finished_run(tmp_path):
    chosen = sample(TABLE, 5, seed=3)
    folder = _interrupted(tmp_path, [FaultResult(chosen[0], CAUGHT)])
    with pytest.raises(BadInput, match="not 7.3.4"):
        resumable(folder, chosen, "7.3.4")
    other = [f for f in TABLE if f not in chosen]
    with pytest.raises(BadInput, match="does not hold"):
        resumable(folder, other, "7.2.13")
    done = tmp_path / "done"
    done.mkdir()
    write_report(Report(Path("/t"), done, "7.2.13", "x", [FaultResult(chosen[0], CAUGHT)], "CONFORMS", 1.0, True))
    with pytest.raises(BadInput, match="finished run"):
        resumable(done, chosen, "7.2.13")


def test_resume_takes_no_other_output_folder(tmp_path, capfd):
    code, _, err = run_in_process(["mutate", "--resume", str(tmp_path), "--out", str(tmp_path / "x")], capfd)
    assert code != 0 and "takes no --out" in err and "Traceback" not in err


def test_a_detail_of_several_lines_stays_one_row_of_the_table(tmp_path):
    """A guest that died prints its init's lines, and the detail quotes them: the row must not
    break the markdown table (seen: a generated fault that did not boot split mutate.md)."""
    from otns.mutate.mutator import NO_BOOT, markdown

    detail = "the guest died before running the command: init: 110: cannot open /dev/vport2p1\n" \
             "init: 117: cannot create a|b\n\nreboot: Restarting system"
    rows = [FaultResult(TABLE[0], NO_BOOT, [], detail), FaultResult(TABLE[1], CAUGHT, ["conformance/test_core.py::test_x"])]
    report = Report(Path("/trees/linux"), tmp_path, "7.2.13", "2026-12-08 03:00 UTC", rows, "CONFORMS", 60.0, True, "")
    table = [line for line in markdown(report).splitlines() if line.startswith("| `")]
    assert len(table) == 2, markdown(report)
    assert "/dev/vport2p1 / init: 117: cannot create a\\|b / reboot: Restarting system |" in table[0]
