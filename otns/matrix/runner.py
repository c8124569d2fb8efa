"""`otns matrix`: the suite on many kernels at once, one VM per pytest-xdist worker.

The plan (kernels, expectations, options) is written to OUT/plan.json; a pytest session
over otns/matrix/plugin.py makes one test item per kernel and pytest-xdist spreads them
over workers. Each run reports its state in OUT/KERNEL/state.json, which the live table
here reads. When all are done, the grid and reports are built from the result folders.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from base import safefs
from vm import progress, share

from ..paths import REPO_ROOT
from ..results.files import MATRIX_RUNS, PROGRESS, open_matrix_log, read_state, write_plan
from ..results.plan import Plan
from .order import XDIST_ARGS, estimates, start_order

# 2 VMs at once: the fastest on a 2-core machine under TCG (README.md, "Many kernels"; the speed-ups measured there).
DEFAULT_WORKERS = 2


def _states(plan: Plan) -> dict[str, dict]:
    out = {}
    for e in plan.entries:
        out[e.slug] = read_state(plan.out / e.slug)
    return out


def speedup(wall: float, own: list[float]) -> str:
    """The final table's last row: the kernels' own times against the wall time, which is
    what running them side by side saved over running them one by one (nothing to say of one)."""
    if not own or wall <= 0:
        return "no kernel finished"
    if len(own) == 1:
        return f"the kernel's own time: {own[0]:.0f} s"
    return f"the kernels' own times sum to {sum(own):.0f} s: speed-up x{sum(own) / wall:.2f}"


def live_counts(folder: Path) -> tuple[dict[str, int], str]:
    """A running kernel's counts so far and "done/total", from what its guest streams
    (vm.progress) into its share: the live table's row moves with the suite."""
    got = progress.read(share.folder(folder) / PROGRESS)
    if got is None:
        return {}, ""
    c = {o: 0 for o in progress.OUTCOMES}
    for f in got.finished:
        c[f.outcome] += 1
    total = f"/{got.collected}" if got.collected is not None else ""
    return c, f"{len(got.finished)}{total} tests"


def _live_table(plan: Plan, started: float, workers: int, final: bool = False,
                since: dict[str, float] | None = None) -> Table:
    now = time.monotonic()
    wall = now - started
    since = {} if since is None else since  # when each kernel left the queue, as seen here
    n = len(plan.entries)
    t = Table(title=f"otns matrix: {n} kernel{'' if n == 1 else 's'}, {wall:.0f} s")
    for col in ("kernel", "expect", "state", "pass", "fail", "skip", "error", "time", "verdict"):
        t.add_column(col)
    states = _states(plan)
    for e in plan.entries:
        s = states[e.slug]
        c = s.get("counts", {})
        took = s.get("seconds")
        state = str(s.get("state", "?"))
        if state not in ("queued", "?"):
            since.setdefault(e.slug, now)
        if state == "running" and not c:
            c, done = live_counts(plan.out / e.slug)
            state = f"running {done}" if done else state
        elapsed = f"{took:.0f} s" if took else f"{now - since[e.slug]:.0f} s" if e.slug in since else ""
        t.add_row(Text(e.label), e.expect,
                  Text(state), *(str(c.get(k, "")) for k in ("pass", "fail", "skip", "error")),
                  elapsed, Text(str(s.get("verdict", ""))),
                  end_section=final and e is plan.entries[-1])
    if final:
        own = [s["seconds"] for s in states.values() if s.get("seconds")]
        used = min(workers, n)  # one kernel keeps one worker busy, whatever -n says
        t.add_row(f"wall, {used} worker{'' if used == 1 else 's'}", "", "", "", "", "", "", f"{wall:.0f} s",
                  speedup(wall, own))
    return t


def run(plan: Plan, workers: int, console: Console) -> int:
    """Run the plan through pytest-xdist; returns pytest's exit code. The output folder is this
    matrix's alone while it runs (base.safefs.owned)."""
    with safefs.owned(plan.out):
        return _run(plan, workers, console)


def _run(plan: Plan, workers: int, console: Console) -> int:
    seconds = estimates([(e.kernel, e.flavour) for e in plan.entries], plan.cache_dir, not plan.pytest_args)
    plan.order = start_order(seconds, workers)
    plan_file = write_plan(plan)
    # pytest expands $NAME in --rootdir and --junitxml: both are given relative to the output
    # folder, which pytest runs in, so a path with "$" in it means what it says.
    cmd = [sys.executable, "-m", "pytest", str(Path(__file__).with_name("entry_test.py")),
           "-p", "otns.matrix.plugin", "-p", "no:cacheprovider", "-p", "no:randomly", "-q", "--rootdir=.",
           "--otns-plan", str(plan_file), f"--junitxml={MATRIX_RUNS}"]
    if workers > 1:
        cmd += ["-n", str(workers), *XDIST_ARGS]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.monotonic()
    since: dict[str, float] = {}
    with open_matrix_log(plan.out) as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=plan.out,
                                start_new_session=True)
        try:
            with Live(_live_table(plan, started, workers, since=since), console=console, refresh_per_second=2,
                      transient=not console.is_terminal) as live:
                while proc.poll() is None:
                    time.sleep(0.5)
                    live.update(_live_table(plan, started, workers, since=since))
                live.update(_live_table(plan, started, workers, final=True, since=since))
        except BaseException:
            os.killpg(proc.pid, 15)  # each run stops its own VM on SIGTERM
            proc.wait(60)
            raise
    if not console.is_terminal:
        console.print(_live_table(plan, started, workers, final=True, since=since))
    return proc.returncode
