"""`otns diff`: the tests whose outcome differs between two results folders, grouped by kind."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from base.errors import EXIT_NOT_AS_EXPECTED, EXIT_OK

from ..results.files import load_folder
from ..results.jsonout import kernel_json
from .common import print_lines, writer

NAME = "diff"


def add_parser(sub) -> None:
    d = sub.add_parser("diff", help="tests whose outcome differs between two result folders",
                       description="The tests whose outcome differs between two results folders, grouped by kind "
                                   "(fail -> pass, ...): real differences first, then those that are only an "
                                   "expected skip (a feature one kernel may lack). Exit 0 when no test differs, "
                                   "1 when some do (the starting point of otns bisect --changed A B).")
    d.add_argument("a", type=Path, metavar="RESULTS_A", help="the first result folder (e.g. the older kernel's)")
    d.add_argument("b", type=Path, metavar="RESULTS_B", help="the second result folder")
    d.add_argument("--all", action="store_true", help="list the tests of the expected kinds too (else counted)")
    d.add_argument("--json", action="store_true",
                   help="a JSON object on stdout: both kernels' verdicts and each kind with its tests")


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    from ..report.diff import groups, summary_line
    a, b = load_folder(args.a), load_folder(args.b)
    found = groups(a, b)
    if args.json:
        doc = {"a": kernel_json(a, with_tests=False), "b": kernel_json(b, with_tests=False),
               "groups": [{"before": g.before.value, "after": g.after.value, "kind": g.kind, "expected": g.expected,
                           "tests": [r.test for r in g.rows]} for g in found]}
        writer(sys.stdout)(json.dumps(doc, indent=1) + "\n")
    else:
        lines = []
        for g in found:
            lines.append(f"{g.kind}: {len(g.rows)}{' (expected)' if g.expected else ''}")
            if not g.expected or args.all:
                lines += [f"  {r.test}" + (f"  [{r.marks}]" if r.marks else "") for r in g.rows]
        print_lines(sys.stdout, lines + [summary_line(a, b, found)], bold_last=True)
    return EXIT_NOT_AS_EXPECTED if found else EXIT_OK
