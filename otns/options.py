"""The options every command shares, checked in one place: the machine a kernel boots in
(VmSettings: --cpus, --memory, --timeout, --accel) and the numbers beside it (-n, --shard).

Each check raises BadInput (exit 2, one line) before anything is fetched or booted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

from base.errors import BadInput
from vm.vngsafe import memory_mib

T = TypeVar("T")

ACCELS = ("auto", "kvm", "tcg")  # auto: KVM if a test boot works on this machine, else TCG

# The suite needs few CPUs. Under TCG (one host thread for all vCPUs) each vCPU only adds
# boot time, and under KVM more vCPUs than host CPUs only overcommit; QEMU's pc machine itself
# stops at 255. A fixed bound, not the host's count, keeps a command line valid on every machine.
MAX_CPUS = 64
# VMs at once in `otns matrix`: each holds --memory of RAM; beyond this the host only thrashes.
MAX_WORKERS = 64
# --timeout: a week is already no timeout at all; above it a number is a typo.
MAX_TIMEOUT = 7 * 24 * 3600.0


def check_timeout(value: float, flag: str = "--timeout") -> float:
    """A finite, positive number of seconds (nan and inf would switch the timeout off)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
            or not 0 < value <= MAX_TIMEOUT:
        raise BadInput(f"{flag} takes a number of seconds above 0 and at most {MAX_TIMEOUT:.0f}, not {value!r}")
    return float(value)


def check_count(value: int, flag: str, lowest: int, highest: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lowest <= value <= highest:
        raise BadInput(f"{flag} takes a whole number from {lowest} to {highest}, not {value!r}")
    return value


def check_cpus(value: int | None, flag: str = "--cpus") -> int | None:
    """None: the accelerator's default (default_cpus), decided once the accelerator is."""
    return None if value is None else check_count(value, flag, 1, MAX_CPUS)


def default_cpus(accel: str) -> int:
    """vCPUs when --cpus is not given. TCG runs every vCPU on one host thread (thread=single,
    docs/environment.md): a second vCPU runs nothing in parallel and only adds its bring-up
    and the interrupts between CPUs, and one vCPU was faster for one test and for the whole
    suite (docs/environment.md, "Where a guest's time goes"). Under KVM each vCPU is a host
    thread of its own."""
    return 1 if accel == "tcg" else 2


def check_workers(value: int, flag: str = "-n/--workers") -> int:
    return check_count(value, flag, 1, MAX_WORKERS)


def shard(items: list[T], spec: str | None) -> list[T]:
    """--shard i/n: the i-th of n interleaved slices (1-based), stable for a given list; all with none."""
    if not spec:
        return items
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise BadInput(f"--shard wants i/n, e.g. 1/3; got {spec!r}") from None
    if not 1 <= i <= n:
        raise BadInput(f"--shard {spec}: i must be between 1 and n")
    return items[i - 1::n]


@dataclass(frozen=True)
class VmSettings:
    """The machine a kernel boots in. Checked when made: a VmSettings that exists is one QEMU
    can start, so each command builds one from its options before anything is fetched."""

    cpus: int | None = None  # None: default_cpus(accel), once the accelerator is known
    memory: str = "1G"  # as for QEMU's -m
    timeout: float = 300.0  # seconds before a guest counts as hung
    accel: str = "auto"  # one of ACCELS

    def __post_init__(self) -> None:
        if self.accel not in ACCELS:
            raise BadInput(f"unknown --accel {self.accel!r}: choose {', '.join(ACCELS[:-1])} or {ACCELS[-1]}")
        check_cpus(self.cpus)
        object.__setattr__(self, "timeout", check_timeout(self.timeout))
        memory_mib(self.memory)
