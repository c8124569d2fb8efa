"""The start order of `otns matrix` (otns.matrix.order): longest runs first, checked against the
pytest-xdist that is installed, with items that sleep instead of booting."""
from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

from rich.console import Console

from otns.matrix import order as matrix_order
from otns.matrix.order import XDIST_ARGS, by_version, estimates, remember, start_order
from otns.matrix.runner import _live_table, run
from otns.paths import REPO_ROOT
from otns.results.files import PLAN as PLAN_FILE
from otns.results.plan import Entry, Plan


def test_longest_first_and_paired_as_lpt_would() -> None:
    # Four runs on two workers: the two longest start, the shortest follows the longest.
    assert start_order([50.0, 80.0, 60.0, 70.0], 2) == [1, 0, 3, 2]
    # Ties keep the user's order.
    assert start_order([70.0, 70.0, 70.0, 60.0], 2) == [0, 3, 1, 2]
    # Beyond two per worker the rest follow longest first, as workers free up.
    assert start_order([10.0, 20.0, 30.0, 40.0, 50.0, 60.0], 2) == [5, 2, 4, 3, 1, 0]


def test_fewer_runs_than_two_per_worker() -> None:
    # xdist deals these round robin: the second run goes to the worker with the shorter first one.
    order = start_order([80.0, 70.0, 60.0], 2)
    assert order == [1, 0, 2]
    assert start_order([5.0, 9.0], 2) == [1, 0]
    assert start_order([30.0, 10.0, 20.0], 1) == [0, 2, 1]
    assert start_order([], 2) == []


def test_version_model_follows_the_features() -> None:
    assert by_version("debian:7.3.4") == by_version("debian:7.1") >= by_version("debian:7.0.4") >= by_version(
        "debian:6.19.14")
    assert by_version("debian:7.3.4") > by_version("debian:6.19.14")
    # A spec without a version may be the newest kernel: it is taken as the longest.
    assert by_version("debian:latest") == by_version("/some/bzImage") == by_version("debian:7.3.4")


def test_estimates_prefer_records_and_scale_the_rest(tmp_path: Path) -> None:
    kernels = [("debian:7.3.4", "cloud"), ("debian:7.0.4", "cloud"), ("debian:6.19.14", "cloud")]
    assert estimates(kernels, tmp_path, True) == [by_version(k) for k, _ in kernels]
    # This machine: 6.19.14 took longest of all, 7.3.4 was quick; 7.0.4 has no record.
    remember(tmp_path, "debian:6.19.14", "cloud", 200.0)
    remember(tmp_path, "debian:6.19.14", "cloud", 300.0)
    remember(tmp_path, "debian:7.3.4", "cloud", 50.0)
    est = estimates(kernels, tmp_path, True)
    assert est[0] == 50.0 and est[2] == 250.0
    scale = statistics.median([50.0 / by_version("debian:7.3.4"), 250.0 / by_version("debian:6.19.14")])
    assert est[1] == by_version("debian:7.0.4") * scale
    assert start_order(est, 2) == [1, 2, 0]  # 6.19.14 and 7.0.4 start, 7.3.4 follows 7.0.4
    # Records are of the whole suite: a plan that selects tests goes by version.
    assert estimates(kernels, tmp_path, False) == [by_version(k) for k, _ in kernels]
    # Another flavour is another kernel.
    assert estimates([("debian:6.19.14", "rt")], tmp_path, True) == [by_version("debian:6.19.14")]


def test_records_keep_the_last_few_and_survive_garbage(tmp_path: Path) -> None:
    for s in range(1, 10):
        remember(tmp_path, "debian:7.2.13", "cloud", float(s))
    data = json.loads((tmp_path / matrix_order.FILE).read_text())
    assert data == {"debian:7.2.13 (cloud)": [5.0, 6.0, 7.0, 8.0, 9.0]}
    for junk in ("{not json", "[1, 2]", '{"debian:7.2.13 (cloud)": "x", "k": [1, "2", -3, true]}'):
        (tmp_path / matrix_order.FILE).write_text(junk)
        assert estimates([("debian:7.2.13", "cloud")], tmp_path, True) == [by_version("debian:7.2.13")]
        remember(tmp_path, "debian:7.2.13", "cloud", 42.0)
        assert estimates([("debian:7.2.13", "cloud")], tmp_path, True) == [42.0]


def test_the_plugin_collects_in_start_order_and_the_table_keeps_the_users(tmp_path: Path) -> None:
    entries = [Entry("debian:6.19.14", "may-lack"), Entry("debian:7.3.4"), Entry("debian:7.0.4"), Entry("debian:7.1")]
    plan = Plan(entries=entries, out=tmp_path / "out", cache_dir=tmp_path / "cache")
    plan.order = start_order(estimates([(e.kernel, e.flavour) for e in entries], plan.cache_dir, True), 2)
    plan.out.mkdir()
    (plan.out / PLAN_FILE).write_text(json.dumps(plan.to_json()))
    p = subprocess.run([sys.executable, "-m", "pytest", str(REPO_ROOT / "otns" / "matrix" / "entry_test.py"), "-p",
                        "otns.matrix.plugin", "-p", "no:cacheprovider", "-p", "no:randomly", "--collect-only", "-q",
                        "--rootdir", str(plan.out), "--otns-plan", str(plan.out / PLAN_FILE)],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    ids = [ln.split("[", 1)[1].rstrip("]") for ln in p.stdout.splitlines() if "::test_kernel[" in ln]
    # 7.3.4 and 7.1 start; 6.19.14 follows 7.3.4, 7.0.4 follows 7.1.
    assert ids == ["debian_7.3.4-cloud", "debian_6.19.14-cloud", "debian_7.1-cloud", "debian_7.0.4-cloud"]
    console = Console(record=True, width=200)
    console.print(_live_table(plan, 0.0, 2))
    rows = [ln for ln in console.export_text().splitlines() if "debian:" in ln]
    assert [re.search(r"debian:[\d.]+", r)[0] for r in rows] == [e.kernel for e in entries]


XDIST_TEST = """
import json, os, time, pytest
PLAN = json.loads(os.environ["ORDER_PLAN"])

@pytest.mark.parametrize("name", [n for n, _ in PLAN])
def test_run(name):
    with open(os.environ["ORDER_LOG"], "a") as f:
        f.write(json.dumps([name, os.environ["PYTEST_XDIST_WORKER"], time.monotonic()]) + "\\n")
    time.sleep(dict(PLAN)[name])
"""


def _xdist_starts(tmp_path: Path, seconds: dict[str, float], workers: int) -> list[tuple[str, str]]:
    """(name, worker) of each item in the order the installed pytest-xdist started them, with the
    arguments otns matrix passes and the items in start_order's order."""
    names = list(seconds)
    order = start_order([seconds[n] for n in names], workers)
    (tmp_path / "test_sleep.py").write_text(textwrap.dedent(XDIST_TEST))
    log = tmp_path / "starts.jsonl"
    env = {"ORDER_PLAN": json.dumps([[names[i], seconds[names[i]]] for i in order]), "ORDER_LOG": str(log),
           "PATH": "/usr/bin:/bin"}  # nothing of the caller's pytest settings (PYTEST_ADDOPTS)
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                        "--rootdir", str(tmp_path), "-n", str(workers), *XDIST_ARGS, str(tmp_path / "test_sleep.py")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    starts = sorted(json.loads(ln) for ln in log.read_text().splitlines())
    return [(n, w) for n, w, _ in sorted(starts, key=lambda s: s[2])]


def test_xdist_starts_the_longest_first(tmp_path: Path) -> None:
    # The user's order puts the shortest first and two long runs last (xdist alone would start
    # "short" and "long1", then leave "long2" and "mid" on one worker).
    seconds = {"short": 0.3, "mid": 0.6, "long1": 0.9, "long2": 1.0}
    starts = _xdist_starts(tmp_path, seconds, 2)
    assert {n for n, _ in starts[:2]} == {"long1", "long2"}
    worker = dict(starts)
    assert worker["short"] == worker["long2"] and worker["mid"] == worker["long1"] != worker["long2"]


def test_xdist_hands_out_the_rest_as_workers_free_up(tmp_path: Path) -> None:
    seconds = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4, "e": 0.5, "f": 1.6}
    starts = _xdist_starts(tmp_path, seconds, 2)
    assert {n for n, _ in starts[:2]} == {"f", "e"}
    worker = dict(starts)
    # f and c on one worker (1.9 s); e, d, then b and a as that worker frees up, on the other
    # (1.2 s). As the user gave them, one worker would hold e and f: 2.1 s.
    assert worker["c"] == worker["f"] != worker["e"] == worker["d"] == worker["b"] == worker["a"]
    assert [n for n, _ in starts if worker[n] == worker["e"]] == ["e", "d", "b", "a"]


def test_run_writes_the_start_order_into_the_plan(tmp_path: Path, monkeypatch) -> None:
    # run() decides the order before pytest starts; the plan file carries it to the plugin.
    monkeypatch.setattr("otns.matrix.runner.subprocess.Popen", _NoRun)
    plan = Plan(entries=[Entry("debian:6.19.14"), Entry("debian:7.3.4")], out=tmp_path / "out",
                cache_dir=tmp_path / "cache")
    run(plan, 2, Console(file=open("/dev/null", "w")))
    written = json.loads((plan.out / PLAN_FILE).read_text())
    assert written["order"] == [1, 0] and [e["kernel"] for e in written["entries"]] == ["debian:6.19.14",
                                                                                          "debian:7.3.4"]
    assert list(_NoRun.argv[_NoRun.argv.index("-n"):][:6]) == ["-n", "2", *XDIST_ARGS]


class _NoRun:
    """Stands in for the pytest process: nothing here may boot."""
    argv: list[str] = []
    pid = 0
    returncode = 0

    def __init__(self, argv, **kw) -> None:
        _NoRun.argv = list(argv)

    def poll(self) -> int:
        return 0
