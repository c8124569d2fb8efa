"""A small JSON file in the cache of the most recent measurements per key (boot times per
accelerator, whole-suite times per kernel). Its content is not trusted: anything but a list
of positive numbers under a key reads as nothing. Written atomically; two writers racing
only lose a sample."""
from __future__ import annotations

import json
from pathlib import Path

from .safefs import write_atomic


def load(path: Path) -> dict[str, list[float]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: [float(x) for x in v if isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < 1e9]
            for k, v in data.items() if isinstance(v, list)}


def add(path: Path, key: str, value: float, keep: int, digits: int) -> None:
    """Append `value` (rounded) to `key`'s samples, keeping the last `keep`."""
    data = load(path)
    data[key] = (data.get(key, []) + [round(value, digits)])[-keep:]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data))
