"""Which changelog line most likely changed a test's outcome: ranked by what the test is about.

A test is described by its words, weighted by how much they say: the known fixes it guards
and the rules it checks (its fix and rule markers, as the guest recorded them in junit.xml's
properties: the subjects of conformance/references.py and the texts of conformance/rules.py;
a test with no rule recorded gets the rules whose text is nearest its name and docstring), its
name and parameters, its docstring and the features of its rules. A changelog line scores the
sum, over the words it shares with the test, of the word's weight times its rarity among the
candidate lines (a word on every line, like "namespace", tells nothing).
"""
from __future__ import annotations

import ast
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from conformance.references import FIXES
from conformance.rules import BY_ID

from ..paths import REPO_ROOT
from . import rules

# How much each source of words counts: the upstream change a test guards says the most.
W_REFERENCE, W_RULE, W_NAME, W_DOC, W_FEATURE = 4.0, 2.0, 2.0, 1.0, 1.0
FEATURE_WORDS = {"open_tree_ns": "open_tree_namespace open_tree",
                 "fsmount_ns": "fsmount_namespace fsmount",
                 "empty_mntns": "unshare_empty_mntns clone_empty_mntns empty_mntns empty mount namespace"}
_STOP = set("""a an and are as at be been but by can cannot do does for from gave give gives has have if in into is
it its may must no not of on one or out over same so such than that the their them then this those to was
when where which while will with without test tests kernel conforming caller copy returns gives""".split())


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def tokens(text: str) -> list[str]:
    """Lower-case words, stemmed; an identifier with underscores counts whole and in parts."""
    out = []
    for raw in re.findall(r"[A-Za-z][A-Za-z0-9_]*", text):
        word = raw.lower().strip("_")
        parts = [p for p in word.split("_") if p]
        for w in ([word] if len(parts) > 1 else []) + parts:
            if len(w) > 1 and w not in _STOP:
                out.append(_stem(w))
    return out


@dataclass
class Profile:
    test: str
    weights: dict[str, float]
    rule_ids: list[str]
    references: list[str]


def _function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    return next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name), None)


def profile(test_id: str, rule_ids: Sequence[str] = (), fixes: Sequence[str] = (), root: Path = REPO_ROOT,
            rule_texts: dict[str, str] | None = None) -> Profile:
    """What a test is about (conformance/test_x.py::test_name[param]): its rule and fix markers
    as recorded, its name, and its docstrings (read from its source, where this checkout has it)."""
    rule_texts = rules.load() if rule_texts is None else rule_texts
    path, _, rest = test_id.partition("::")
    name, _, param = rest.partition("[")
    weights: dict[str, float] = defaultdict(float)

    def add(text: str, weight: float) -> None:
        for t in tokens(text):
            weights[t] = max(weights[t], weight)

    source = (root / path).read_text() if (root / path).is_file() else ""
    module = ast.parse(source) if source else None
    func = _function(module, name.split("::")[-1]) if module else None
    doc = ast.get_docstring(func) or "" if func else ""
    used = [FIXES[f].subject for f in fixes if f in FIXES]
    cited = [r for r in dict.fromkeys(rule_ids) if r in rule_texts]
    if not cited:  # no rule recorded: take the rules nearest its name and docstring
        own = Counter(tokens(f"{name} {param} {doc}"))
        near = sorted(rule_texts, key=lambda r: -sum(own[t] for t in set(tokens(rule_texts[r]))))
        cited = [r for r in near[:2] if any(own[t] for t in tokens(rule_texts[r]))]
    add(module and ast.get_docstring(module) or "", W_DOC)
    add(doc, W_DOC)
    for feature in dict.fromkeys(BY_ID[r].feature for r in cited if r in BY_ID):
        add(FEATURE_WORDS.get(feature, ""), W_FEATURE)
    for r in cited:
        add(rule_texts[r], W_RULE)
    add(f"{name.removeprefix('test_')} {param.rstrip(']')}", W_NAME)
    for text in used:
        add(text, W_REFERENCE)
    return Profile(test_id, dict(weights), cited, used)


def rank(lines: list[str], prof: Profile) -> list[tuple[float, str]]:
    """(score, line), best first; lines that share no word with the test keep changelog order."""
    toks = [set(tokens(line)) for line in lines]
    df = Counter(t for ts in toks for t in ts)
    n = len(lines)
    scored = []
    for i, (line, ts) in enumerate(zip(lines, toks, strict=True)):
        score = sum(prof.weights.get(t, 0.0) * math.log((n + 1) / df[t]) for t in ts)
        scored.append((round(score, 3), i, line))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [(score, line) for score, _, line in scored]


def likely_causes(test_id: str, lines: list[str], rule_ids: Sequence[str] = (), fixes: Sequence[str] = (),
                  runners_up: int = 2) -> list[str]:
    """What `otns bisect` prints above the full list: the best match, then the next ones."""
    ranked = [line for score, line in rank(lines, profile(test_id, rule_ids, fixes)) if score > 0]
    if not ranked:
        return []
    return [f"likely cause (best match for the test's rule and words): {ranked[0]}",
            *(f"  then: {line}" for line in ranked[1:1 + runners_up])]
