"""`otns bisect-run`: for `git bisect run` in a kernel tree (otns.bisect.tree judges, this prints)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .bisect import OUTCOMES
from .common import add_vm_opts, err, notice, vm_settings

NAME = "bisect-run"


def add_parser(sub) -> None:
    br = sub.add_parser("bisect-run", help="for `git bisect run` in a kernel tree: build, boot, run one test",
                        description="Exit 0 good (old behaviour), 1 bad (new behaviour), 125 skip (build or "
                                    "boot failed, or the test could not run); never 126-255 except 130 on Ctrl-C.")
    br.add_argument("test_id", help="conformance/test_file.py::test_name[param]")
    br.add_argument("--tree", type=Path, default=Path("."),
                    help="the kernel tree git bisect checked out (default: the current folder)")
    br.add_argument("--find", choices=("regression", "fix"), default="regression",
                    help="regression: good is pass, bad is fail (default); fix: good is fail, bad is pass")
    br.add_argument("--bad-outcome", choices=OUTCOMES, default=None,
                    help="the outcome that counts as bad (the new behaviour), instead of --find's")
    br.add_argument("--no-build", action="store_true", help="boot the tree's existing bzImage")
    add_vm_opts(br, machine=False)


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    from ..bisect import hunt
    from ..bisect.tree import judge_tree

    test = hunt.normalise_test_id(args.test_id)
    vm = vm_settings(args)  # bad usage: exit 2, as for argparse's own errors, not a skip
    good, bad = hunt.outcome_sets(args.find, args.bad_outcome)
    step = judge_tree(args.tree, cache_dir, test, good, bad, vm, not args.no_build, notice, sys.stderr.write)
    if step.error:
        err.print(f"otns bisect-run: skip: {step.error}", markup=False)
    else:
        err.print(f"otns bisect-run: {step.release}: {test} -> {step.seen} -> {step.judged}", markup=False)
    return step.exit_code
