"""What the guest left in the results folder, read as untrusted data for the run's verdict.

The guest (and the kernel under test) may write anything there: links, fifos, huge or
malformed files. Each file is read with base.safefs's limits and checked field by field;
a junit.xml that cannot be read is moved aside and named as the reason of a harness error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from base import safefs

from .files import FEATURES, GUEST, JUNIT, parse_junit, read_object
from .model import TestResult

REJECTED_SUFFIX = ".rejected"


@dataclass
class GuestFiles:
    guest: dict  # guest.json; release (str), pytest_exit (int), suite_seconds (float) only when well-formed
    features: dict  # features.json as the guest left it (an object; otns.results.absence.judge checks its fields)
    tests: list[TestResult] | None  # None: no junit.xml
    problem: str = ""  # why junit.xml was refused


def _clean_guest(raw: dict) -> dict:
    guest = dict(raw)
    checks = {"release": lambda v: isinstance(v, str) and len(v) < 256,
              "pytest_exit": lambda v: type(v) is int,
              "suite_seconds": lambda v: type(v) in (int, float) and math.isfinite(v) and v >= 0}
    for key, ok in checks.items():
        if key in guest and not ok(guest[key]):
            del guest[key]
    return guest


def load(results: Path) -> GuestFiles:
    guest = _clean_guest(read_object(results / GUEST) or {})
    feat = read_object(results / FEATURES) or {}
    junit = results / JUNIT
    try:
        tests = parse_junit(junit)
    except FileNotFoundError:
        return GuestFiles(guest, feat, None)
    except safefs.BadFile as e:
        # Moved aside (a rename never follows a link), so the folder's readers see no junit.xml.
        safefs.set_aside(junit, REJECTED_SUFFIX)
        return GuestFiles(guest, feat, None, f"the guest's {e}")
    return GuestFiles(guest, feat, tests)
