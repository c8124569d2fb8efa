"""The rule and fix markers every conformance test carries (`@pytest.mark.rule("OT-DIR")`,
`@pytest.mark.fix("ENOTDIR_TARGET")`): read from a collected test, checked against the tables
(rules.py, references.py), and put where a failure is read: the start of its message (so the
short summary line, junit.xml's failure message and KTAP carry it), its long report, a line per
failure at the end of the terminal output (whole, where the short summary line is cut at the
terminal's width), and junit.xml's properties (one "rule" and one "fix" property each, on every
test; the host reads them: otns.resultfiles).

A pytest plugin: conftest.py takes its hooks, and `-p conformance.marks` puts them on any run.
"""
from __future__ import annotations

import json
import platform
import re
from pathlib import Path

import pytest

from .references import FIXES
from .rules import BY_ID

RULE, FIX = "rule", "fix"
HELP = {RULE: "rule(*ids): the rules of conformance/rules.py whose behaviour the test asserts",
        FIX: "fix(*names): the known fixes of conformance/references.py the test guards"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def of(item: pytest.Item, name: str) -> list[str]:
    """The arguments of every `name` marker on the test (its parameter's, then its own, its
    class's and its module's), each once."""
    return list(dict.fromkeys(arg for mark in item.iter_markers(name) for arg in mark.args))


def registered(config: pytest.Config) -> set[str]:
    """Marker names pytest and its plugins registered (the `markers` ini lines)."""
    return {m.group() for line in config.getini("markers") if (m := _NAME.match(line))}


def problems(item: pytest.Item, known_markers: set[str]) -> list[str]:
    """What is wrong with the test's markers: an unregistered marker (a typo), a rule or fix the
    tables do not know, a marker without arguments. (A test that names no rule is left to the
    project's own tests, tests/test_rules.py: a new test must not stop the whole suite.)"""
    out = []
    for mark in item.iter_markers():
        if mark.name not in known_markers:
            out.append(f"unknown marker {mark.name!r}")
        elif mark.name in HELP and not mark.args:
            out.append(f"a {mark.name} marker names nothing")
    out += [f"unknown rule {r!r} (conformance/rules.py)" for r in of(item, RULE) if r not in BY_ID]
    out += [f"unknown fix {f!r} (conformance/references.py)" for f in of(item, FIX) if f not in FIXES]
    return [f"{item.nodeid}: {p}" for p in out]


def _named(pairs: list[tuple[str, object]], name: str) -> list[str]:
    return [str(value) for key, value in pairs if key == name]


def properties(item: pytest.Item) -> list[tuple[str, str]]:
    """junit.xml's <properties> of the test: one ("rule", ID) and one ("fix", NAME) each."""
    return [(RULE, r) for r in of(item, RULE)] + [(FIX, f) for f in of(item, FIX)]


def tag(rules: list[str], fixes: list[str], release: str) -> str:
    """What a failure's message starts with: its rules, and each known fix where this kernel's line
    of releases has it ("" for a test that names neither)."""
    parts = [("rules " if len(rules) > 1 else "rule ") + ", ".join(rules)] if rules else []
    parts += [f"known fix {f}: {FIXES[f].where_fixed(release)}" for f in fixes if f in FIXES]
    return f"[{'; '.join(parts)}]" if parts else ""


def explain(rules: list[str], fixes: list[str], release: str) -> str:
    """The same in words, a line each, for the failure's long report: each rule's text, each
    fix's subject and where it is."""
    return "\n".join([f"{r}: {BY_ID[r].text}" for r in rules if r in BY_ID]
                     + [f"known fix {f}: {FIXES[f].describe(release)}" for f in fixes if f in FIXES])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--otns-list", default=None, metavar="FILE",
                     help="write each selected test's id, rules and known fixes to FILE as JSON (otns tests)")


def listing(items: list[pytest.Item]) -> list[dict]:
    """What `otns tests` shows of each test: its id, rules and known fixes."""
    return [{"id": item.nodeid, "rules": of(item, RULE), "fixes": of(item, FIX)} for item in items]


def pytest_configure(config: pytest.Config) -> None:
    for text in HELP.values():
        config.addinivalue_line("markers", text)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # As --strict-markers, and more: a typo in a marker's name or in a rule id or fix name stops
    # the run at collection (on the host, before anything boots), naming the test.
    known = registered(config)
    wrong = [p for item in items for p in problems(item, known)]
    if wrong:
        # The first on the error's own line: otns shows that line alone (preflight.usage_message).
        more = f" (and {len(wrong) - 1} more:)\n" + "\n".join(wrong[1:]) if len(wrong) > 1 else ""
        raise pytest.UsageError(f"wrong marker in conformance/: {wrong[0]}{more}")
    for item in items:
        item.user_properties += properties(item)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    # After -k and deselection: the tests that would run.
    out = session.config.getoption("otns_list", None)
    if out:
        Path(out).write_text(json.dumps(listing(session.items), indent=1) + "\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    crash = getattr(report.longrepr, "reprcrash", None)
    rules, fixes = of(item, RULE), of(item, FIX)
    if report.failed and crash is not None and (rules or fixes):
        # First on the line: the short summary (-rfE) cuts a long message at the terminal's width.
        crash.message = f"{tag(rules, fixes, platform.release())} {crash.message}"
        report.sections.append(("rules and known fixes", explain(rules, fixes, platform.release())))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    failed = {r.nodeid: r.user_properties for key in ("failed", "error") for r in terminalreporter.stats.get(key, [])
              if _named(r.user_properties, RULE) or _named(r.user_properties, FIX)}
    if not failed:
        return
    terminalreporter.write_sep("=", "rules and known fixes of the failures")
    for nodeid, props in failed.items():
        terminalreporter.write_line(f"{nodeid} {tag(_named(props, RULE), _named(props, FIX), platform.release())}")
