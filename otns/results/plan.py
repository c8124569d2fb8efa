"""The plan of a matrix: which kernels, what each must show, and the VM each boots in. Pure data:
`otns matrix` writes it as OUT/plan.json (results.files.write_plan) and everything that reads a
matrix output folder reads it back (results.files.read_plan)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from kernels.spec import label

from ..options import VmSettings
from .absence import ALLOW_ALL, Policy

# conform: every feature must be there; may-lack: any may be absent; version: those the
# kernel's version has must be there (otns run's rule).
EXPECTATIONS = ("conform", "may-lack", "version")


@dataclass(frozen=True)
class Entry:
    kernel: str  # a kernel spec, as for otns run --kernel
    expect: str = "version"  # one of EXPECTATIONS
    flavour: str = "cloud"

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in ".-_" else "_" for c in f"{self.kernel}-{self.flavour}")

    @property
    def label(self) -> str:
        return label(self.kernel, self.flavour)


@dataclass
class Plan:
    entries: list[Entry]
    out: Path
    cache_dir: Path
    vm: VmSettings = field(default_factory=VmSettings)  # each kernel's VM
    pytest_args: list[str] = field(default_factory=list)
    # The order the runs start in (indices into entries; otns.matrix.order): the table keeps entries' order.
    order: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        d = asdict(self)
        d["out"], d["cache_dir"] = str(self.out), str(self.cache_dir)
        d.update(d.pop("vm"))  # the VM's settings at the top of plan.json, beside the entries
        return d

    @classmethod
    def from_json(cls, d: dict) -> Plan:
        return cls(entries=[Entry(**e) for e in d["entries"]], out=Path(d["out"]), cache_dir=Path(d["cache_dir"]),
                   vm=VmSettings(timeout=d["timeout"], cpus=d["cpus"], memory=d["memory"], accel=d["accel"]),
                   pytest_args=list(d["pytest_args"]), order=list(d.get("order", [])))

    def started_first(self) -> list[Entry]:
        return [self.entries[i] for i in self.order] if self.order else list(self.entries)


def policy(expect: str) -> Policy:
    """Which absent features a kernel with this expectation may have."""
    return {"conform": Policy(require_all=True), "may-lack": ALLOW_ALL}.get(expect, Policy())
