"""One `otns matrix`: the plan made and checked before the first boot, and what the kernels' runs
came to once the runner is done. The command prints what these return."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from base.errors import BadInput

from ..options import VmSettings, shard
from ..results.files import STATE, SUMMARY, read_state, read_summary, state_verdict
from ..results.model import Verdict
from ..results.plan import Entry, Plan
from ..run.preflight import PYTEST_OK, PYTEST_TESTS_FAILED, check_kernels, check_pytest_args, narrowed
from .entries import check_unique, entries_from_ci, parse_entry


def prepare(specs: list[str], from_ci: Path | None, shard_spec: str | None, keyword: str | None, out: Path,
            cache_dir: Path, vm: VmSettings, notice: Callable[[str], object]) -> Plan:
    """Every kernel and option checked now, so a bad one fails before the first boot, not in a worker."""
    entries = entries_from_ci(from_ci) if from_ci else []
    entries += [parse_entry(s) for s in specs]
    if not entries:
        raise BadInput("no kernels: name some specs or use --from CI.yml")
    check_unique(entries)
    total = len(entries)
    entries = shard(entries, shard_spec)
    if not entries:
        raise BadInput(f"shard {shard_spec} of {total} kernels is empty")
    pytest_args = ["-k", keyword] if keyword else []
    # Collected on the host once, with or without -k: that checks -k and leaves every guest the
    # bytecode it would otherwise read file by file (vm.pycache, vm.bytecode).
    selected = check_pytest_args(pytest_args, "-k" if keyword else "no arguments", cache_dir=cache_dir)
    if keyword:  # each guest gets only the files that hold the selected tests
        pytest_args = narrowed(pytest_args, selected)
    to_fetch = check_kernels(entries, cache_dir, notice)
    if to_fetch:
        notice(f"otns: {len(to_fetch)} kernel(s) to fetch first: {', '.join(to_fetch)}")
    return Plan(entries=entries, out=out, cache_dir=cache_dir, vm=vm, pytest_args=pytest_args)


def runner_broke(rc: int, plan: Plan) -> bool:
    """A failed test is "some kernel not as expected"; any other pytest exit, or no kernel that
    even started, means the runner itself broke."""
    return rc not in (PYTEST_OK, PYTEST_TESTS_FAILED) or not any((plan.out / e.slug / STATE).exists()
                                                                 for e in plan.entries)


@dataclass
class Ended:
    """What the kernels' runs came to: those not as expected, each with why, and whether one crashed or hung."""

    not_as_expected: list[tuple[Entry, str]]
    crashed: bool


def ended(plan: Plan) -> Ended:
    states = [(e, read_state(plan.out / e.slug)) for e in plan.entries]
    return Ended([(e, why_not(s, plan.out / e.slug)) for e, s in states if not s.get("ok")],
                 any(state_verdict(s) in (Verdict.CRASHED, Verdict.HUNG) for _, s in states))


def why_not(state: dict, folder: Path) -> str:
    """One line on why a matrix kernel did not go as expected, from its state.json and summary.json."""
    if not state:
        return "it never ran"
    verdict = state.get("verdict") or state.get("state", "?")
    try:
        detail = read_summary(folder / SUMMARY).detail
    except (OSError, BadInput):
        detail = ""
    detail = state.get("detail") or detail
    if state_verdict(state) is Verdict.FEATURE_ABSENT and state.get("expect") == "conform":
        detail = f"marked conform, but {detail or 'the kernel lacks the feature'}"
    return f"{verdict}: {detail}" if detail else verdict
