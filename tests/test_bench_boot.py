"""`otns bench` in a real guest: every method builds the namespace it should, and the command
writes its CSV, table, plot and verdict. Nothing here asserts how fast a kernel is."""
from __future__ import annotations

import json

import pytest

from otns.bench import report as br

from .conftest import DEFAULT_SPEC

pytestmark = pytest.mark.boot


def test_every_method_builds_the_right_namespace_in_a_real_guest(otns, tmp_path):
    r = otns("bench", "--kernel", DEFAULT_SPEC, "--mounts", "40,200", "--check", "10",
             "--results", str(tmp_path / "b"))
    assert r.code == 0, r.stderr
    assert "ALL METHODS OK" in r.stderr
    checks = [json.loads(ln) for ln in (tmp_path / "b" / "checks.jsonl").read_text().splitlines()]
    assert {(c["method"], c["mounts"]) for c in checks} == {(m, n) for m in br.METHODS for n in (40, 200)}
    for c in checks:
        # Said outright, not only through check_problems: what each namespace looked like inside.
        assert c["iterations"] == 10 and c["other_ns"] and c["back_home"], c
        assert c["root_source"] == ("none" if c["method"] == "fsmount" else "otns-bench-rootfs"), c
        assert c["mounts_inside"] == {"classic": 2, "open_tree": 1, "open_tree_recursive": 2,
                                      "fsmount": 1, "empty_move": 1}[c["method"]], c
        assert c["caller_mounts_unchanged"] and c["fds_before"] == c["fds_after"], c
        assert c["ns_alive_after"] == 0 and c["ns_unknown"] == 0, c


def test_bench_command_writes_csv_table_plot_and_verdict(otns, tmp_path):
    out = tmp_path / "b"
    r = otns("bench", "--kernel", DEFAULT_SPEC, "--mounts", "30,200", "--workers", "1,2", "--seconds", "0.1",
             "--min-iter", "3", "--max-iter", "10", "--results", str(out))
    assert r.code in (0, 1), r.stderr  # 1 would be the kernel's answer, not a harness failure
    assert "verdict: " in r.stderr and "(a)/(b)" in r.stdout
    rows = (out / "bench.csv").read_text().splitlines()
    assert rows[0] == "method,mounts,workers,worker,iteration,ns"
    raw = br.parse_raw((out / "raw.txt").read_text())
    assert not raw.skipped, "the newest Debian kernel has every method"
    for c in br.cells(raw):
        assert 3 * c.workers <= c.n <= 10 * c.workers, c
    assert {(c.method, c.workers) for c in br.cells(raw)} == {(m, p) for m in br.METHODS for p in (1, 2)}
    assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert "Verdict: " in (out / "bench.md").read_text()
