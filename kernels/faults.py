"""One-rule faults for a kernel source tree (`otns mutate`): the table, applying one, undoing it.

The faults are data (faults.toml beside this file). Applying one keeps the pristine file
beside it (`NAME.otns-pristine`) until it is put back, so a run that was killed (SIGKILL,
power loss) leaves a mark that the next `otns mutate` or `otns build` of the tree finds and
undoes before anything is built.
"""
from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from base.errors import BadInput
from base.safefs import write_atomic

TABLE = Path(__file__).with_name("faults.toml")
PRISTINE_SUFFIX = ".otns-pristine"
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
KEYS = ("id", "rule", "file", "find", "replace", "why")
_RULE = re.compile(r"[A-Z]{2}-[A-Z0-9-]+")


@dataclass(frozen=True)
class Fault:
    id: str
    rule: str  # a rule id of docs/semantics.md; AUTO for a fault generated from the code
    file: str  # relative to the tree
    find: str
    replace: str
    why: str
    # A generated fault (kernels/mutants.py) also says where and how it was made.
    function: str = ""
    line: int = 0
    operator: str = ""


class NotApplicable(Exception):
    """The fault's text is not in the tree's file exactly once (another kernel version)."""


def load(path: Path = TABLE) -> list[Fault]:
    data = tomllib.loads(path.read_text())
    faults = []
    for entry in data.get("fault", []):
        missing = [k for k in KEYS if not isinstance(entry.get(k), str)]
        if missing:
            raise ValueError(f"{path}: fault {entry.get('id', '?')!r} lacks {', '.join(missing)} (strings)")
        f = Fault(**{k: entry[k] for k in KEYS})
        if not _ID.fullmatch(f.id) or not _RULE.fullmatch(f.rule) or f.find == f.replace or not f.find:
            raise ValueError(f"{path}: malformed fault {f.id!r}")
        if Path(f.file).is_absolute() or ".." in Path(f.file).parts:
            raise ValueError(f"{path}: fault {f.id} names a file outside the tree: {f.file}")
        faults.append(f)
    if not faults:
        raise ValueError(f"{path}: no [[fault]] entries")
    ids = [f.id for f in faults]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate fault ids")
    return faults


def without_fault(path: Path = TABLE) -> dict[str, str]:
    """{rule id: why no small edit breaks it alone} for the rules that have no fault."""
    return dict(tomllib.loads(path.read_text()).get("no_fault", {}))


def select(faults: list[Fault], wanted: str | None) -> list[Fault]:
    """The faults named in a comma-separated list of ids or rule ids, in the list's order (a
    rule id stands for its faults in the table's order); all of them when none is named."""
    if not wanted:
        return faults
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    unknown = [n for n in names if not any(n in (f.id, f.rule) for f in faults)]
    if unknown:
        raise BadInput(f"no such fault or rule: {', '.join(unknown)} (see otns mutate --list)")
    chosen = [f for n in names for f in faults if n in (f.id, f.rule)]
    return list(dict.fromkeys(chosen))


def mutated_text(fault: Fault, text: str) -> str:
    n = text.count(fault.find)
    if n != 1:
        raise NotApplicable(f"the text to replace occurs {n} times in {fault.file}, not once")
    return text.replace(fault.find, fault.replace)


def _put_back(saved: Path, target: Path) -> None:
    saved.replace(target)
    os.utime(target)  # newer than the fault's objects: the next build recompiles it
    if target.suffix == ".c":  # and in case a killed compiler wrote one after that
        target.with_suffix(".o").unlink(missing_ok=True)


def restore(tree: Path, faults: list[Fault]) -> list[str]:
    """Put back every file a killed run left mutated; return their paths (relative to the tree).

    The restored file gets a fresh mtime so that make rebuilds what the fault's build left.
    """
    restored = []
    for rel in sorted({f.file for f in faults}):
        target = tree / rel
        saved = target.with_name(target.name + PRISTINE_SUFFIX)
        if saved.is_file():
            _put_back(saved, target)
            restored.append(rel)
    return restored


def pristine_text(tree: Path, rel: str) -> str:
    """A file as it is without any fault (the kept copy while a fault is applied)."""
    target = tree / rel
    saved = target.with_name(target.name + PRISTINE_SUFFIX)
    return (saved if saved.is_file() else target).read_text(errors="surrogateescape")


@contextmanager
def applied(tree: Path, fault: Fault) -> Iterator[None]:
    """The fault is in the tree inside the block; the pristine file is back after it, always.

    NotApplicable (before anything is changed) when the text is not there exactly once.
    """
    target = tree / fault.file
    if not target.is_file():
        raise NotApplicable(f"{fault.file} is not in the tree")
    pristine, mode = target.read_bytes(), target.stat().st_mode & 0o7777
    mutant = mutated_text(fault, pristine.decode("utf-8", errors="surrogateescape"))
    saved = target.with_name(target.name + PRISTINE_SUFFIX)
    write_atomic(saved, pristine, mode)
    try:
        write_atomic(target, mutant.encode("utf-8", errors="surrogateescape"), mode)
        yield
    finally:
        _put_back(saved, target)
