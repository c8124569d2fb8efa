"""Is a feature's absence acceptable? The guest's probe, the kernel's version and the user's word.

The probe (conformance/probe.py) says present, absent or broken. An absent feature is fine
on a kernel older than the mainline release that added it (conformance/features.py); on a
kernel at or past that release it is a failure unless the user allowed it (--allow-absent,
SPEC=may-lack); --require-feature (SPEC=conform) allows no absence at all.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from base.errors import BadInput
from conformance.features import BY_NAME, FEATURES, FeatureSpec, kernel_version


class State(str, enum.Enum):
    PRESENT = "present"
    BROKEN = "broken"  # the kernel knows the flag but the probe failed: its tests fail too
    ABSENT_EXPECTED = "absent-expected"  # the kernel's version predates the feature
    ABSENT_ALLOWED = "absent-allowed"  # the version says it should be there; the user allowed it
    ABSENT_REQUIRED = "absent-but-required"  # absent where it must be there: does not conform
    UNPROBED = "unprobed"  # the guest reported no probe for it


ABSENT_OK = (State.ABSENT_EXPECTED, State.ABSENT_ALLOWED)
FAILING = (State.BROKEN, State.ABSENT_REQUIRED)


@dataclass(frozen=True)
class Policy:
    allow_absent: frozenset[str] = frozenset()  # feature names whose absence is accepted
    require_all: bool = False  # no feature may be absent, whatever the version

    @classmethod
    def from_names(cls, names: list[str] | None, require_all: bool = False) -> Policy:
        unknown = sorted(set(names or []) - set(BY_NAME))
        if unknown:
            raise BadInput(f"unknown feature {', '.join(unknown)}: choose from {', '.join(BY_NAME)}")
        return cls(frozenset(names or []), require_all)


ALLOW_ALL = Policy(frozenset(BY_NAME))


@dataclass(frozen=True)
class FeatureState:
    name: str
    state: State
    reason: str  # a phrase for the verdict line: "Linux 6.19 predates it (mainline since 7.0)"
    detail: str = ""  # the probe's own words

    def to_json(self) -> dict:
        return {"state": self.state.value, "reason": self.reason, "detail": self.detail}


def _absent(spec: FeatureSpec, version: tuple[int, int] | None, release: str, policy: Policy,
            detail: str) -> FeatureState:
    since = f"mainline since {spec.since}"
    if version is None:
        must = f"cannot tell from release {release[:64]!r} whether it must have it ({since})"
    elif version < spec.mainline:
        if not policy.require_all:
            return FeatureState(spec.name, State.ABSENT_EXPECTED,
                                f"Linux {version[0]}.{version[1]} predates it ({since})", detail)
        must = f"every feature is required (Linux {version[0]}.{version[1]} predates it)"
    else:
        must = f"Linux {version[0]}.{version[1]} must have it ({since})"
    if spec.name in policy.allow_absent and not policy.require_all:
        return FeatureState(spec.name, State.ABSENT_ALLOWED, f"allowed (mainline since {spec.since})", detail)
    return FeatureState(spec.name, State.ABSENT_REQUIRED, must, detail)


def judge(groups: dict | None, release: str, policy: Policy) -> list[FeatureState]:
    """Each feature's state, from features.json's "groups" (the guest's probe) and the release."""
    version = kernel_version(release)
    out = []
    for spec in FEATURES:
        # features.json comes from the guest: any shape, any size.
        probed = groups.get(spec.name) if isinstance(groups, dict) else None
        state = probed.get("state") if isinstance(probed, dict) else None
        detail = str(probed.get("detail", ""))[:500] if isinstance(probed, dict) else ""
        if state == "present":
            out.append(FeatureState(spec.name, State.PRESENT, "", detail))
        elif state == "broken":
            out.append(FeatureState(spec.name, State.BROKEN, "the kernel knows it but it fails", detail))
        elif state == "absent":
            out.append(_absent(spec, version, release, policy, detail))
        else:
            out.append(FeatureState(spec.name, State.UNPROBED, "the guest reported no probe", detail))
    return out


def describe(states: list[FeatureState]) -> str:
    """The verdict line's parenthesis: the features present, then each other one and why."""
    present = [s.name for s in states if s.state is State.PRESENT]
    parts = [", ".join(present) + (" present" if len(present) < len(states) else "")] if present else []
    for s in states:
        if s.state is State.ABSENT_REQUIRED:
            parts.append(f"{s.name} absent, but {s.reason}")
        elif s.state is not State.PRESENT:
            word = "absent" if s.state in ABSENT_OK else s.state.value
            parts.append(f"{s.name} {word}: {s.reason}")
    return "; ".join(parts)
