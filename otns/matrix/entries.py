"""The kernels of a matrix as the user names them: SPEC[=EXPECT] on the command line, or the kernel
list of the workflow's conformance job (--from CI.yml), read as untrusted input."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from base.errors import BadInput
from base.safefs import printable
from kernels.debian import FLAVOURS

from ..results.plan import EXPECTATIONS, Entry

CI_MAX_BYTES = 1 << 20  # a workflow file is a few KiB
CI_MAX_DEPTH = 32  # CI.yml nests 7 deep
CI_MAX_ALIASES = 100


def _read_ci(path: Path) -> bytes:
    """The workflow file's bytes: a regular file (a fifo would block) of at most CI_MAX_BYTES."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput(f"{path} is not a regular file")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(CI_MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > CI_MAX_BYTES:
        raise BadInput(f"{path} is over {CI_MAX_BYTES >> 20} MiB: not a workflow file")
    return data


def _check_shape(path: Path, text: str) -> None:
    """Bounds a workflow file must keep before it is built into objects: nesting (PyYAML builds
    recursively), aliases (a few lines of them stand for billions of values) and merge keys
    (which copy, so they multiply); GitHub's workflows need none of it at this scale."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > CI_MAX_DEPTH:
                raise BadInput(f"{path} nests deeper than {CI_MAX_DEPTH} levels: not a workflow file")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > CI_MAX_ALIASES:
                raise BadInput(f"{path} has more than {CI_MAX_ALIASES} aliases: not a workflow file")
        elif isinstance(event, yaml.ScalarEvent) and event.value == "<<" and event.implicit[0]:
            raise BadInput(f"{path} uses a YAML merge key (<<), which otns does not read")


def _word(value: object) -> str:
    """A value from the file, for a message: a short string as itself, anything else by its type
    (printing a structure built from aliases could take gigabytes)."""
    return repr(printable(value, 80)) if isinstance(value, str) else f"a {type(value).__name__}"


def entries_from_ci(path: Path) -> list[Entry]:
    """The kernel list of the workflow's conformance job: CI and a laptop run the same thing."""
    try:
        text = _read_ci(path).decode()
        _check_shape(path, text)
        doc = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise BadInput(f"cannot read {path}: {printable(' '.join(str(e).split()), 300)}") from None
    try:
        include = doc["jobs"]["conformance"]["strategy"]["matrix"]["include"]
    except (KeyError, TypeError, IndexError):
        include = None
    if not isinstance(include, list):
        raise BadInput(f"{path} has no jobs.conformance.strategy.matrix.include list")
    entries = []
    for item in include:
        kernel = item.get("kernel") if isinstance(item, dict) else None
        if not isinstance(kernel, str) or not kernel.strip():
            raise BadInput(f"{path}: an include entry has no kernel (it is {_word(item)})")
        expect, flavour = item.get("expect", "version"), item.get("flavour", "cloud")
        if not isinstance(expect, str) or expect not in EXPECTATIONS:
            raise BadInput(f"{path}: kernel {_word(kernel)} has unknown expect {_word(expect)}")
        if not isinstance(flavour, str) or flavour not in FLAVOURS:
            raise BadInput(f"{path}: kernel {_word(kernel)} has unknown flavour {_word(flavour)}")
        entries.append(Entry(kernel=kernel, expect=expect, flavour=flavour))
    return entries


def check_unique(entries: list[Entry]) -> list[Entry]:
    """Each kernel once: its results folder is named after it (Entry.slug), and two runs in one
    folder would lose one's results. BadInput names the kernel listed twice."""
    seen: dict[str, Entry] = {}
    for e in entries:
        if e.slug in seen:
            first = seen[e.slug]
            raise BadInput(f"kernel {e.kernel!r} ({e.flavour}) is listed twice (as {first.kernel}={first.expect} and "
                           f"{e.kernel}={e.expect}; results folder {e.slug}): list each kernel once")
        seen[e.slug] = e
    return entries


def parse_entry(text: str) -> Entry:
    """SPEC or SPEC=conform / SPEC=may-lack / SPEC=version on the command line."""
    spec, _, expect = text.partition("=")
    expect = expect or "version"
    if expect not in EXPECTATIONS:
        raise BadInput(f"unknown expectation {expect!r} for {spec!r}: use {' or '.join(EXPECTATIONS)}")
    return Entry(kernel=spec, expect=expect)
