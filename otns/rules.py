"""The rules of docs/semantics.md by id: what faults, tests and the bisect's ranking cite."""
from __future__ import annotations

import re
from pathlib import Path

from .paths import REPO_ROOT

SEMANTICS = REPO_ROOT / "docs" / "semantics.md"
_ROW = re.compile(r"^\| `([A-Z]{2}-[A-Z0-9-]+)` \| (.*) \|\s*$")


def load(path: Path = SEMANTICS) -> dict[str, str]:
    """{rule id: the rule's text}, in the document's order; empty where the document is not
    installed (a non-editable install ships no docs/: the bisect ranks by the other words)."""
    rules: dict[str, str] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return rules
    for line in text.splitlines():
        m = _ROW.match(line)
        if m:
            rules[m.group(1)] = m.group(2)
    return rules
