"""The fields of a JSON object from elsewhere (a guest, another machine), each checked for its
type as it is read: a wrong one is a BadFile (exit 2) naming the file and the key, never a
traceback; a missing one is its default. Text comes back printable: it is shown on terminals
and put in KCIDB, so no escape sequence and no NUL gets through."""
from __future__ import annotations

import enum
from typing import TypeVar

from base.safefs import BadFile, printable

# A count or a number of seconds is at most this (a billion seconds is 31 years); 10**400 or
# NaN there is someone's attack or a broken file, not a result.
NUMBER_MAX = 10 ** 9
STRING_MAX = 10_000

E = TypeVar("E", bound=enum.Enum)


class Fields:
    """One JSON object's fields; `where` names its file (and `prefix` the object inside it)."""

    def __init__(self, doc: object, where: str, prefix: str = "") -> None:
        if not isinstance(doc, dict):
            raise BadFile(f"{where}: {prefix.rstrip('.') or 'the file'} is not a JSON object")
        self.doc, self.where, self.prefix = doc, where, prefix

    def bad(self, key: str, why: str) -> BadFile:
        return BadFile(f"{self.where}: {self.prefix}{printable(key, 40)} {why}")

    def text(self, key: str) -> str:
        value = self.doc.get(key, "")
        if not isinstance(value, str):
            raise self.bad(key, "is not a string")
        return printable(value, STRING_MAX)

    def flag(self, key: str) -> bool | None:
        value = self.doc.get(key)
        if value is not None and not isinstance(value, bool):
            raise self.bad(key, "is not true, false or null")
        return value

    def count(self, key: str, default: int) -> int:
        value = self.doc.get(key, default)
        if type(value) is not int or not 0 <= value <= NUMBER_MAX:
            raise self.bad(key, f"is not a whole number from 0 to {NUMBER_MAX:g}")
        return value

    def numbers(self, key: str, whole: bool = False) -> dict[str, float]:
        """An object of numbers from 0 to NUMBER_MAX (whole ones only, if asked); a number stays
        as it was written (1 stays an int)."""
        values = self.doc.get(key, {})
        types = (int,) if whole else (int, float)
        if not isinstance(values, dict) or not all(type(v) in types for v in values.values()):
            raise self.bad(key, f"is not an object of {'whole ' if whole else ''}numbers")
        wrong = next((k for k, v in values.items() if not 0 <= v <= NUMBER_MAX), None)  # NaN fails too
        if wrong is not None:
            raise self.bad(f"{key}.{printable(wrong, 40)}", f"is {printable(str(values[wrong]), 40)}, "
                                                         f"not a number from 0 to {NUMBER_MAX:g}")
        return dict(values)

    def counts(self, key: str) -> dict[str, int]:
        return {k: int(v) for k, v in self.numbers(key, whole=True).items()}

    def texts(self, key: str, keep_lines: bool = False) -> list[str]:
        """A list of strings; each made printable unless keep_lines (text no terminal is shown,
        such as a crash report)."""
        values = self.doc.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self.bad(key, "is not a list of strings")
        return list(values) if keep_lines else [printable(v, STRING_MAX) for v in values]

    def record(self, key: str) -> dict[str, str] | None:
        """An object whose values are strings, or None when absent (or null)."""
        value = self.doc.get(key)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.bad(key, "is not an object of strings")
        return {printable(k, 100): printable(v, STRING_MAX) for k, v in value.items()}

    def objects(self, key: str) -> dict[str, Fields]:
        """An object of objects, each read as Fields of its own (an empty one when absent)."""
        value = self.doc.get(key, {})
        if not isinstance(value, dict):
            raise self.bad(key, "is not an object")
        return {printable(name, 100): Fields(inner, self.where, f"{self.prefix}{key}.{printable(name, 40)}.")
                for name, inner in value.items()}

    def member(self, key: str, kind: type[E], by_name: bool = True) -> E | None:
        """The member of an enum a string names (its name, or its value), None when absent."""
        if key not in self.doc or self.doc[key] is None:
            return None
        value = self.doc[key]
        known = kind.__members__ if by_name else {m.value: m for m in kind}
        if not isinstance(value, str):
            raise self.bad(key, "is not a string")
        if value not in known:
            raise BadFile(f"{self.where}: unknown {self.prefix}{printable(key, 40)} {printable(value, 40)!r}")
        return known[value]
