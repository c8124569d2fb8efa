"""`otns matrix`'s pieces without a boot: CI.yml (valid, and the kernels it lists), --shard, the
speed-up caption and a running row (the matrix on real kernels: test_matrix_boot.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otns.matrix.entries import entries_from_ci
from otns.matrix.runner import speedup
from otns.options import shard
from otns.paths import REPO_ROOT
from otns.results.plan import Entry


def test_speedup_caption() -> None:
    assert speedup(100.0, [60.0, 70.0, 40.0]) == "the kernels' own times sum to 170 s: speed-up x1.70"
    assert speedup(5.0, []) == "no kernel finished"
    # One kernel has nothing to be sped up against: its own time, no "speed-up x0.78".
    assert speedup(50.0, [39.0]) == "the kernel's own time: 39 s"


def test_ci_yml_is_valid_for_actionlint() -> None:
    actionlint = Path(sys.executable).parent / "actionlint"
    p = subprocess.run([str(actionlint), str(REPO_ROOT / "CI.yml")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_matrix_reads_the_ci_list() -> None:
    entries = entries_from_ci(REPO_ROOT / "CI.yml")
    kernels = [e.kernel for e in entries]
    assert "debian:6.19.14" in kernels and "debian:7.3-rc7" in kernels and len(kernels) >= 8
    assert {e.expect for e in entries} == {"conform", "may-lack", "version"}
    # the shards of a list are disjoint and cover it
    parts = [shard(entries, f"{i}/3") for i in (1, 2, 3)]
    assert sorted(sum(([e.kernel for e in p] for p in parts), [])) == sorted(kernels)
    assert all(parts)


def test_shard_rejects_nonsense() -> None:
    from base.errors import BadInput
    for bad in ("0/3", "4/3", "x", "1-3"):
        with pytest.raises(BadInput):
            shard([Entry("debian:7.2")], bad)


def test_a_running_row_counts_what_its_guest_streamed(tmp_path: Path) -> None:
    # The guest's progress.jsonl, in its share while it runs: the row moves with the suite.
    import json as _json

    from otns.matrix.runner import live_counts
    from vm import share
    rw = share.folder(tmp_path)
    rw.mkdir(parents=True)
    events = [{"event": "collected", "count": 457}, {"event": "start", "test": "a"},
              {"event": "end", "test": "a", "outcome": "pass", "seconds": 0.1}, {"event": "start", "test": "b"},
              {"event": "end", "test": "b", "outcome": "fail", "seconds": 0.2}, {"event": "start", "test": "c"}]
    (rw / "progress.jsonl").write_text("".join(_json.dumps(e) + "\n" for e in events))
    counts, done = live_counts(tmp_path)
    assert done == "2/457 tests" and counts["pass"] == 1 and counts["fail"] == 1
    assert live_counts(tmp_path / "absent") == ({}, "")
