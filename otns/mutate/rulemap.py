"""Which conformance tests name which rule (their `rule` markers, conformance/marks.py), and which
rules a kernel function implements (conformance/rules.py's sources): what `otns mutate` runs
first on a fault. Read by collecting the suite on the host, as the guest would collect it.

Also a pytest plugin (`-p otns.mutate.rulemap`): at the end of the collection it writes
{test id: [rule ids]} to the file $OTNS_RULEMAP_OUT names.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from base.errors import InfraError
from conformance.rules import RULES
from vm.guest import pytest_args as guest_pytest_args

from ..paths import REPO_ROOT

ENV = "OTNS_RULEMAP_OUT"
COLLECT_TIMEOUT = 300.0


def pytest_collection_finish(session) -> None:
    out = os.environ.get(ENV)
    if out:
        rules = {item.nodeid: list(dict.fromkeys(a for m in item.iter_markers("rule") for a in m.args))
                 for item in session.items}
        Path(out).write_text(json.dumps(rules))


def tests_by_rule() -> dict[str, list[str]]:
    """{rule id: the tests that name it, in collection order}."""
    with tempfile.TemporaryDirectory(prefix="otns-rulemap-") as tmp:
        out = Path(tmp) / "rules.json"
        cmd = [sys.executable, "-m", "pytest", *guest_pytest_args(Path(tmp), []), "--collect-only", "-q",
               "-p", "otns.mutate.rulemap"]
        env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1", ENV: str(out)}
        try:
            p = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, errors="replace",
                               timeout=COLLECT_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise InfraError(f"collecting the suite's rules on the host took over {COLLECT_TIMEOUT:.0f} s") from None
        if p.returncode != 0 or not out.is_file():
            tail = " | ".join((p.stdout + p.stderr).strip().splitlines()[-2:])
            raise InfraError(f"collecting the suite's rules on the host failed (pytest exit {p.returncode}): {tail}")
        by_test: dict[str, list[str]] = json.loads(out.read_text())
    by_rule: dict[str, list[str]] = {}
    for test, rules in by_test.items():
        for rule in rules:
            by_rule.setdefault(rule, []).append(test)
    return by_rule


def rules_of_function(file: str, function: str) -> list[str]:
    """The rules whose implementation (conformance/rules.py) names this kernel function.

    A generated fault's function: `sys_open_tree` is the SYSCALL_DEFINE of open_tree, which the
    table names by its syscall."""
    names = {f"{file}: {function}()"}
    if function.startswith("sys_"):
        names.add(f"{file}: {function.removeprefix('sys_')}()")
    return [r.id for r in RULES if names & set(r.source)]
