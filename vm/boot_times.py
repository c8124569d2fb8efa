"""How long a boot takes to reach user space on this machine, remembered from earlier boots.

A timeout that runs out before user space is then told apart from a hung kernel: the user
sees the timeout beside the time a boot usually takes here. Kept in the cache, per
acceleration (TCG boots are several times slower than KVM ones).
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from base.safefs import write_atomic

FILE = "boot-times.json"
KEEP = 20  # the most recent boots per acceleration
# Said when no boot was recorded yet: measured on a 2-core machine under TCG with Debian's
# 7.2.13 cloud kernel, start of vng to the guest's first line, idle to busy.
STATED = {"tcg": 13.0, "kvm": 3.0}


def _load(cache_dir: Path) -> dict[str, list[float]]:
    try:
        data = json.loads((cache_dir / FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: [float(x) for x in v if isinstance(x, (int, float))] for k, v in data.items() if isinstance(v, list)}


def remember(cache_dir: Path, accel: str, seconds: float) -> None:
    """Add one boot; a lost race between two runs only loses a sample."""
    data = _load(cache_dir)
    data[accel] = (data.get(accel, []) + [round(seconds, 2)])[-KEEP:]
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(cache_dir / FILE, json.dumps(data))


def typical(cache_dir: Path, accel: str) -> tuple[float, int] | None:
    """(median seconds to user space, number of boots it is the median of), if any recorded."""
    times = _load(cache_dir).get(accel, [])
    return (statistics.median(times), len(times)) if times else None


def describe(cache_dir: Path, accel: str) -> str:
    known = typical(cache_dir, accel)
    if known:
        return f"a boot here ({accel}) reaches user space in {known[0]:.1f} s (median of the last {known[1]})"
    stated = STATED.get(accel, STATED["tcg"])
    return f"no boot recorded here yet; under {accel.upper()} a boot usually takes about {stated:.0f} s"
