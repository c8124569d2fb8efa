"""`otns matrix`: the suite on many kernels at once, one VM per pytest-xdist worker.

The plan (kernels, expectations, options) is written to OUT/plan.json; a pytest session
over otns/matrix/plugin.py makes one test item per kernel and pytest-xdist spreads them
over workers. Each run reports its state in OUT/KERNEL/state.json, which the live table
here reads. When all are done, the grid and reports are built from the result folders.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from base import safefs
from base.safefs import printable
from base.errors import BadInput
from kernels.debian import FLAVOURS
from kernels.spec import label

from ..results.absence import ALLOW_ALL, Policy
from .order import XDIST_ARGS, estimates, start_order
from ..options import VmSettings
from ..paths import REPO_ROOT
from ..results.files import MATRIX_LOG, MATRIX_RUNS, PLAN, read_state

# conform: every feature must be there; may-lack: any may be absent; version: those the
# kernel's version has must be there (otns run's rule).
EXPECTATIONS = ("conform", "may-lack", "version")
CI_MAX_BYTES = 1 << 20  # a workflow file is a few KiB
CI_MAX_DEPTH = 32  # CI.yml nests 7 deep
CI_MAX_ALIASES = 100
# Measured on a 2-core machine under TCG (see the closing note of issue 4): 2 VMs at once.
DEFAULT_WORKERS = 2


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
    def from_json(cls, d: dict) -> "Plan":
        return cls(entries=[Entry(**e) for e in d["entries"]], out=Path(d["out"]), cache_dir=Path(d["cache_dir"]),
                   vm=VmSettings(timeout=d["timeout"], cpus=d["cpus"], memory=d["memory"], accel=d["accel"]),
                   pytest_args=list(d["pytest_args"]), order=list(d.get("order", [])))

    def started_first(self) -> list[Entry]:
        return [self.entries[i] for i in self.order] if self.order else list(self.entries)


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


def policy(expect: str) -> Policy:
    """Which absent features a kernel with this expectation may have."""
    return {"conform": Policy(require_all=True), "may-lack": ALLOW_ALL}.get(expect, Policy())


def parse_entry(text: str) -> Entry:
    """SPEC or SPEC=conform / SPEC=may-lack / SPEC=version on the command line."""
    spec, _, expect = text.partition("=")
    expect = expect or "version"
    if expect not in EXPECTATIONS:
        raise BadInput(f"unknown expectation {expect!r} for {spec!r}: use {' or '.join(EXPECTATIONS)}")
    return Entry(kernel=spec, expect=expect)


def _states(plan: Plan) -> dict[str, dict]:
    out = {}
    for e in plan.entries:
        out[e.slug] = read_state(plan.out / e.slug)
    return out


def speedup(wall: float, own: list[float]) -> str:
    """The final table's last row: the kernels' own times against the wall time, which is
    what running them side by side saved over running them one by one."""
    if not own or wall <= 0:
        return "no kernel finished"
    return f"the kernels' own times sum to {sum(own):.0f} s: speed-up x{sum(own) / wall:.2f}"


def _live_table(plan: Plan, started: float, workers: int, final: bool = False) -> Table:
    wall = time.monotonic() - started
    t = Table(title=f"otns matrix: {len(plan.entries)} kernels, {wall:.0f} s")
    for col in ("kernel", "expect", "state", "pass", "fail", "skip", "error", "time", "verdict"):
        t.add_column(col)
    states = _states(plan)
    for e in plan.entries:
        s = states[e.slug]
        c = s.get("counts", {})
        took = s.get("seconds")
        t.add_row(Text(e.label), e.expect,
                  Text(str(s.get("state", "?"))), *(str(c.get(k, "")) for k in ("pass", "fail", "skip", "error")),
                  f"{took:.0f} s" if took else "", Text(str(s.get("verdict", ""))),
                  end_section=final and e is plan.entries[-1])
    if final:
        own = [s["seconds"] for s in states.values() if s.get("seconds")]
        t.add_row(f"wall, {workers} worker(s)", "", "", "", "", "", "", f"{wall:.0f} s", speedup(wall, own))
    return t


def run(plan: Plan, workers: int, console: Console) -> int:
    """Run the plan through pytest-xdist; returns pytest's exit code. The output folder is this
    matrix's alone while it runs (base.safefs.owned)."""
    with safefs.owned(plan.out):
        return _run(plan, workers, console)


def _run(plan: Plan, workers: int, console: Console) -> int:
    seconds = estimates([(e.kernel, e.flavour) for e in plan.entries], plan.cache_dir, not plan.pytest_args)
    plan.order = start_order(seconds, workers)
    (plan.out / PLAN).write_text(json.dumps(plan.to_json(), indent=1))
    # pytest expands $NAME in --rootdir and --junitxml: both are given relative to the output
    # folder, which pytest runs in, so a path with "$" in it means what it says.
    cmd = [sys.executable, "-m", "pytest", str(Path(__file__).with_name("entry_test.py")),
           "-p", "otns.matrix.plugin", "-p", "no:cacheprovider", "-p", "no:randomly", "-q", "--rootdir=.",
           "--otns-plan", str(plan.out / PLAN), f"--junitxml={MATRIX_RUNS}"]
    if workers > 1:
        cmd += ["-n", str(workers), *XDIST_ARGS]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.monotonic()
    with open(plan.out / MATRIX_LOG, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=plan.out,
                                start_new_session=True)
        try:
            with Live(_live_table(plan, started, workers), console=console, refresh_per_second=2,
                      transient=not console.is_terminal) as live:
                while proc.poll() is None:
                    time.sleep(0.5)
                    live.update(_live_table(plan, started, workers))
                live.update(_live_table(plan, started, workers, final=True))
        except BaseException:
            os.killpg(proc.pid, 15)  # each run stops its own VM on SIGTERM
            proc.wait(60)
            raise
    if not console.is_terminal:
        console.print(_live_table(plan, started, workers, final=True))
    return proc.returncode
