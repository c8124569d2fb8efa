"""kernels/unreached.toml against what it explains: it parses, every entry names a function of
kernels/feature_code.toml, gives a reason that starts with a known cause, and matches a gap of a
recorded `otns coverage` report (Debian 7.2.13's functions.json), so no entry is stale or mistyped."""
from __future__ import annotations

import json
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

from kernels.coverage import feature_code
from otns.coverage.gcov import UNREACHED, explanations

RECORDED = Path(__file__).parent / "data" / "coverage-functions-7.2.13.json"

# The causes a reason may give, as the file's header lists them.
CAUSES = ("invariant", "macro", "race", "allocation", "deprecated", "other-namespace", "other-api", "todo")
KEYS = {"file", "function", "kind", "text", "texts", "reason"}


def entries() -> list[dict]:
    return tomllib.loads(UNREACHED.read_text()).get("unreached", [])


def recorded_gaps() -> set[tuple[str, str, str, str]]:
    return {(f["file"], f["function"], g["kind"], g["text"])
            for f in json.loads(RECORDED.read_text()) for g in f["gaps"]}


def test_the_file_parses_and_every_entry_is_well_formed():
    assert explanations(), "kernels/unreached.toml explains nothing"
    for e in entries():
        where = f"{e.get('function')}: {e.get('text') or e.get('texts')}"
        assert set(e) <= KEYS, f"{where}: unknown keys {sorted(set(e) - KEYS)}"
        assert ("text" in e) != ("texts" in e), f"{where}: give text or texts, not both or neither"
        assert e.get("kind", "line") in ("line", "branch"), f"{where}: kind {e['kind']!r}"


def test_every_entry_names_a_feature_function():
    known = {(f.path, name) for f in feature_code() for name in f.functions}
    for x in explanations():
        assert (x.file, x.function) in known, f"{x.file}: {x.function} is not in kernels/feature_code.toml"


@pytest.mark.parametrize("x", explanations(), ids=lambda x: f"{x.function}:{x.text[:40]}")
def test_every_reason_gives_a_known_cause_and_says_more(x):
    cause, _, rest = x.reason.partition(":")
    assert cause in CAUSES, f"{x.function}: reason starts with {cause!r}, not one of {CAUSES}"
    assert len(rest.strip()) > 20, f"{x.function}: the reason says only {x.reason!r}"


def test_every_entry_matches_a_recorded_gap():
    gaps = recorded_gaps()
    stale = [f"{x.function} ({x.kind}): {x.text}" for x in explanations()
             if (x.file, x.function, x.kind, x.text) not in gaps]
    assert not stale, "entries that match no gap of the recorded report:\n" + "\n".join(stale)


def test_no_gap_gets_two_reasons():
    # A gap is matched by its text, first entry first: two reasons for one text would hide one.
    reasons = defaultdict(set)
    for x in explanations():
        reasons[(x.file, x.function, x.kind, x.text)].add(x.reason)
    twice = [key for key, r in reasons.items() if len(r) > 1]
    assert not twice, f"one line, several reasons: {twice}"
