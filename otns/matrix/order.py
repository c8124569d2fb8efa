"""Which kernel of a matrix starts when: the longest runs first, so no worker is left with a
long run at the end while the others idle (longest-processing-time-first scheduling).

A run's length is estimated from an earlier whole-suite run of the same kernel on this machine
(recorded in the cache), else from the features its version has (conformance/features.py): a
kernel without a feature skips that feature's tests.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from base import cachedir, samples
from conformance.features import FEATURES, kernel_version

FILE = cachedir.MATRIX_TIMES
KEEP = 5  # the most recent whole-suite runs per kernel
# Seconds of a whole-suite run by how many of the features its version has (0 to 3; no release has
# exactly 2): Debian's 6.19.14, 7.0.4 and 7.1-7.3 cloud kernels under TCG on a 2-core machine, 2 VMs
# at once, load about 3 (2026-11-28). Only their ratios matter: records rescale them.
BY_FEATURES = (36.0, 50.0, 52.0, 55.0)
# pytest-xdist's `load` scheduler hands every worker two items at first (a worker starts an item
# only once it holds the next one), then one more each time a worker finishes one.
XDIST_ARGS = ("--dist", "load", "--maxschedchunk", "1")


def key(kernel: str, flavour: str) -> str:
    return f"{kernel} ({flavour})"


def remember(cache_dir: Path, kernel: str, flavour: str, seconds: float) -> None:
    """Add one whole-suite run."""
    samples.add(cache_dir / FILE, key(kernel, flavour), seconds, KEEP, 1)


def by_version(kernel: str) -> float:
    """A whole-suite run's seconds from the features a debian:X.Y spec's version has; a spec
    that names no version (debian:latest, a path, host) counts as having them all."""
    version = kernel_version(kernel.removeprefix("debian:")) if kernel.startswith("debian:") else None
    has = len(FEATURES) if version is None else sum(f.mainline <= version for f in FEATURES)
    return BY_FEATURES[has]


def estimates(kernels: list[tuple[str, str]], cache_dir: Path, whole_suite: bool) -> list[float]:
    """Seconds each (kernel, flavour) is expected to take. Recorded runs are of the whole suite,
    so a plan that selects tests (-k) is estimated by version only; version estimates are scaled
    to this machine by the kernels that have a record."""
    recorded = samples.load(cache_dir / FILE) if whole_suite else {}
    known = {i: statistics.median(recorded[key(*kf)]) for i, kf in enumerate(kernels) if recorded.get(key(*kf))}
    model = [by_version(k) for k, _ in kernels]
    scale = statistics.median(known[i] / model[i] for i in known) if known else 1.0
    return [known.get(i, model[i] * scale) for i in range(len(kernels))]


def start_order(seconds: list[float], workers: int) -> list[int]:
    """The order to hand the runs to pytest-xdist (indices into `seconds`) so that the longest
    start first and each worker's second run is the one longest-first scheduling would give it:
    the worker with the shortest first run takes the longest of the second wave."""
    longest = sorted(range(len(seconds)), key=lambda i: -seconds[i])  # stable: ties keep the user's order
    n = workers
    if n <= 1 or len(longest) <= n:
        return longest
    queues = [[i] for i in longest[:n]]
    for j, i in enumerate(longest[n:2 * n]):
        queues[n - 1 - j].append(i)
    if len(longest) >= 2 * n:  # two consecutive items per worker, then the rest as workers free up
        return [i for q in queues for i in q] + longest[2 * n:]
    # Fewer than two per worker: xdist deals them round robin, so the workers with a second
    # run come first, their second runs after every first one.
    pairs = [q for q in queues if len(q) == 2]
    singles = [q for q in queues if len(q) == 1]
    return [q[0] for q in pairs + singles] + [q[1] for q in pairs]
