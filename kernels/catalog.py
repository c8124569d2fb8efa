"""The list of Debian kernels available now, resolved live from the archive's index."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from base import cachedir
from base.safefs import BadFile, read_json_object, write_atomic

from .apt import INDEX_MAX_AGE, PrivateApt
from .debian import PARSER_VERSION, DebianKernel, parse_index


def load(cache_dir: Path, max_age: float = INDEX_MAX_AGE,
         notice: Callable[[str], object] = print) -> tuple[PrivateApt, list[DebianKernel]]:
    """Refresh the index when stale, then parse it (the parse is cached per index version)."""
    apt = PrivateApt(cache_dir / cachedir.APT)
    apt.update(max_age=max_age, notice=notice)
    signature = apt.index_signature()
    parsed = cache_dir / cachedir.APT / cachedir.INDEX
    try:
        data = read_json_object(parsed)
        if data.get("signature") == signature and data.get("parser") == PARSER_VERSION:
            return apt, [DebianKernel.from_json(k) for k in data["kernels"]]
    except (OSError, BadFile, KeyError, TypeError, ValueError, AttributeError):
        pass  # absent or damaged: parsed again below
    kernels = parse_index(apt.indexes())
    write_atomic(parsed, json.dumps({"signature": signature, "parser": PARSER_VERSION,
                                     "kernels": [k.to_json() for k in kernels]}))
    return apt, kernels
