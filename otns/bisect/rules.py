"""The rules by id, from the table the suite ships (conformance/rules.py): what faults, tests and
the bisect's ranking cite. Installed or not, the table is there: it is a module of the package."""
from __future__ import annotations

from conformance.rules import RULES


def load() -> dict[str, str]:
    """{rule id: the rule's text}, in the table's order (docs/semantics.md's)."""
    return {r.id: r.text for r in RULES}
