"""The test item of `otns matrix`: the whole suite on one kernel, judged against its expectation.

Each run writes its progress to OUT/KERNEL/state.json (otns.results.files) for the live table of otns.matrix.runner.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from base import safefs
from base.errors import OtnsError
from kernels.spec import parse_spec
from otns.matrix import order as matrix_order
from otns.results.files import LIVE_LOG, STATE, write_state
from otns.results.model import Verdict
from otns.results.plan import Entry, Plan, policy
from otns.run.execute import RunOptions, execute


def meets(verdict: Verdict) -> bool:
    # The expectation already decided which absences are acceptable (otns.results.plan.policy).
    return verdict in (Verdict.CONFORMS, Verdict.FEATURE_ABSENT)


def test_kernel(entry: Entry, plan: Plan) -> None:
    # Held from before it is emptied until the verdict is in state.json; the run nests in it.
    with safefs.owned(plan.out / entry.slug) as folder:
        _run_kernel(entry, plan, safefs.prepare_results(folder))


def _run_kernel(entry: Entry, plan: Plan, folder: Path) -> None:
    started = time.monotonic()
    state: dict[str, object] = {"state": "queued", "kernel": entry.kernel, "expect": entry.expect}

    def set_state(s: str, **extra) -> None:
        state.update(state=s, seconds=time.monotonic() - started, **extra)
        write_state(folder, state)

    opts = RunOptions(spec=parse_spec(entry.kernel, entry.flavour), cache_dir=plan.cache_dir, results=folder,
                      vm=plan.vm, pytest_args=["--color=no", *plan.pytest_args], show_progress=False, on_state=set_state,
                      absence=policy(entry.expect), keep=(STATE, LIVE_LOG))
    with safefs.open_new(folder / LIVE_LOG) as live:
        def stream(line: str) -> None:
            live.write(line)
            live.flush()
        try:
            summary, _ = execute(opts, lambda m: stream(m + "\n"), stream)
        except OtnsError as e:
            set_state("error", verdict="ERROR", detail=str(e))
            pytest.fail(f"{entry.kernel}: {e}")
        except KeyboardInterrupt:  # SIGTERM or Ctrl-C: the VM is stopped; say so rather than "booting"
            set_state("interrupted", verdict="INTERRUPTED", detail=f"stopped while {state['state']}")
            raise
    v = summary.verdict
    if not plan.pytest_args:  # the next matrix starts the longest runs first (otns.matrix.order)
        matrix_order.remember(plan.cache_dir, entry.kernel, entry.flavour, time.monotonic() - started)
    set_state("done", verdict=summary.verdict_line(), verdict_name=v.name, counts=summary.counts, ok=meets(v))
    assert meets(v), f"{entry.kernel} (expect {entry.expect}): {summary.verdict_line()}"
