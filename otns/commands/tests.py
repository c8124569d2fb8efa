"""`otns tests`: the conformance tests' ids, with the rules each checks and the known fixes it
guards, collected on the host as the guest would (nothing boots). An id is what `otns bisect`,
`otns run -- ID` and `-k` take."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from base.errors import EXIT_OK, BadInput, InfraError

from ..run.preflight import PYTEST_NO_TESTS, PYTEST_OK, collect, usage_message
from .common import print_lines, writer

NAME = "tests"


def add_parser(sub) -> None:
    t = sub.add_parser("tests", help="list the conformance tests' ids, rules and known fixes (no boot)",
                       description="List the tests `otns run` would run, one per line: the id (what otns bisect "
                                   "and -k take), then the rules it checks and the known fixes it guards.")
    t.add_argument("-k", dest="keyword", default=None, help="only tests matching this pytest -k expression")
    t.add_argument("--rule", default=None, metavar="ID", help="only tests that check this rule (e.g. OT-DIR)")
    t.add_argument("--json", action="store_true", help="a JSON list of {id, rules, fixes} on stdout")


def listed(keyword: str | None) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="otns-tests-") as tmp:
        out = Path(tmp) / "tests.json"
        code, output = collect([*(["-k", keyword] if keyword else []), f"--otns-list={out}"])
        if code == PYTEST_NO_TESTS:
            return []
        if code != PYTEST_OK:
            raise BadInput(f"pytest refuses the selection: {usage_message(output)}")
        try:
            return json.loads(out.read_text())
        except (OSError, ValueError) as e:
            raise InfraError(f"collecting the tests left no list: {e}") from None


def handle(args: argparse.Namespace, cache_dir: Path) -> int:
    tests = listed(args.keyword)
    if args.rule:
        tests = [t for t in tests if args.rule in t["rules"]]
    if not tests:
        raise BadInput("no test matches" + (f" -k {args.keyword!r}" if args.keyword else "")
                       + (f" --rule {args.rule}" if args.rule else ""))
    if args.json:
        writer(sys.stdout)(json.dumps(tests, indent=1) + "\n")
        return EXIT_OK
    width = max(len(t["id"]) for t in tests)
    print_lines(sys.stdout, [f"{t['id']:<{width}}  {', '.join(t['rules']) or '-'}"
                             + (f"  fix {', '.join(t['fixes'])}" if t["fixes"] else "") for t in tests])
    print_lines(sys.stderr, [f"{len(tests)} tests"])
    return EXIT_OK
