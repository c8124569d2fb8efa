"""How long a boot takes to reach user space on this machine, remembered from earlier boots.

A timeout that runs out before user space is then told apart from a hung kernel: the user
sees the timeout beside the time a boot usually takes here. Kept in the cache, per
acceleration (TCG boots are several times slower than KVM ones).
"""
from __future__ import annotations

import statistics
from pathlib import Path

from base import cachedir, samples

FILE = cachedir.BOOT_TIMES
KEEP = 20  # the most recent boots per acceleration
# Said when no boot was recorded yet: measured on a 2-core machine under TCG with Debian's
# 7.2.13 cloud kernel, start of vng to the guest's first line, idle to busy.
STATED = {"tcg": 13.0, "kvm": 3.0}


def remember(cache_dir: Path, accel: str, seconds: float) -> None:
    """Add one boot."""
    samples.add(cache_dir / FILE, accel, seconds, KEEP, 2)


def typical(cache_dir: Path, accel: str) -> tuple[float, int] | None:
    """(median seconds to user space, number of boots it is the median of), if any recorded."""
    times = samples.load(cache_dir / FILE).get(accel, [])
    return (statistics.median(times), len(times)) if times else None


def describe(cache_dir: Path, accel: str) -> str:
    known = typical(cache_dir, accel)
    if known:
        return f"a boot here ({accel}) reaches user space in {known[0]:.1f} s (median of the last {known[1]})"
    stated = STATED.get(accel, STATED["tcg"])
    return f"no boot recorded here yet; under {accel.upper()} a boot usually takes about {stated:.0f} s"
