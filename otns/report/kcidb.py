"""Result folders -> KCIDB JSON (KernelCI's common report format, schema 5.3).

One checkout and one build per kernel (otns tests released or locally built kernels, so the
"checkout" is the kernel release and the "build" is the image that booted), a `boot` test
for the boot's fate and one test per conformance test (its rules and known fixes in `misc`).
Validated in the tests with kcidb-io, KernelCI's own I/O library.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from base.safefs import printable, write_atomic
from kernels.arch import host

from ..results.files import KernelResults, summary_verdict
from ..results.model import Outcome, Verdict

ORIGIN = "otns"
SCHEMA = {"major": 5, "minor": 3}
STATUS = {Outcome.PASS: "PASS", Outcome.FAIL: "FAIL", Outcome.SKIP: "SKIP", Outcome.ERROR: "ERROR"}
# The boot test: a kernel that crashed or hung failed; one that could not be booted at all
# (or whose harness broke) is an error of the run, not of the kernel.
BOOT_STATUS = {Verdict.CRASHED: "FAIL", Verdict.HUNG: "FAIL", Verdict.NO_BOOT: "ERROR", Verdict.HARNESS_ERROR: "ERROR"}
_SEGMENT = re.compile(r"[^a-zA-Z0-9_-]+")


def test_path(node_id: str) -> str:
    """conformance/test_paths.py::TestX::test_y[a.b c] -> otns.test_paths.TestX.test_y.a_b_c
    (KCIDB paths are dot-separated [a-zA-Z0-9_-] segments)."""
    file, _, rest = node_id.partition("::")
    parts = [Path(file).stem]
    name, _, param = rest.partition("[")
    parts += [p for p in name.split("::") if p]
    if param:
        parts.append(param.rstrip("]"))
    return ".".join([ORIGIN, *(_SEGMENT.sub("_", p).strip("_") or "_" for p in parts)])


def _boot_status(summary: dict) -> str:
    """A verdict names the boot's fate; a kernel a matrix never finished has none: MISS."""
    verdict = summary_verdict(summary)
    return "MISS" if verdict is None else BOOT_STATUS.get(verdict, "PASS")


def _ids(k: KernelResults) -> tuple[str, str]:
    release = k.summary.get("release") or k.folder.name
    return f"{ORIGIN}:{release}", f"{ORIGIN}:{release}:{k.folder.name}"


def kernel_objects(k: KernelResults) -> tuple[dict, dict, list[dict]]:
    checkout_id, build_id = _ids(k)
    release = k.summary.get("release") or k.folder.name
    checkout = {"id": checkout_id, "origin": ORIGIN, "tree_name": release,
                "misc": {"source": str(k.summary.get("source", "")), "spec": str(k.summary.get("kernel", ""))}}
    build = {"id": build_id, "checkout_id": checkout_id, "origin": ORIGIN, "architecture": host().kcidb,
             "config_name": release, "status": "PASS",
             "misc": {"results_folder": k.folder.name}}
    durations = k.summary.get("durations") or {}
    env = {"comment": f"QEMU ({k.summary.get('accel', '?')}) under virtme-ng"}
    boot: dict[str, object] = {"id": f"{build_id}:boot", "build_id": build_id, "origin": ORIGIN, "path": "boot",
            "status": _boot_status(k.summary), "environment": env,
            "misc": {"verdict": k.verdict}}
    if isinstance(durations.get("boot"), (int, float)):
        boot["duration"] = float(durations["boot"])
    tests = [boot]
    for name, t in k.tests.items():
        test: dict[str, object] = {"id": f"{build_id}:{name}", "build_id": build_id, "origin": ORIGIN, "path": test_path(name),
                "status": STATUS[t.outcome], "duration": float(t.seconds), "environment": env,
                "misc": {"node_id": name, **({"rules": t.rules} if t.rules else {}),
                         **({"fixes": t.fixes} if t.fixes else {})}}
        if t.message.strip():
            test["comment"] = printable(t.message.strip().splitlines()[0], 1000)
        tests.append(test)
    return checkout, build, tests


def report(kernels: list[KernelResults]) -> dict:
    data: dict = {"version": dict(SCHEMA), "checkouts": [], "builds": [], "tests": []}
    seen: set[str] = set()
    for k in kernels:
        checkout, build, tests = kernel_objects(k)
        if checkout["id"] not in seen:  # one checkout per release, however often it was run
            seen.add(checkout["id"])
            data["checkouts"].append(checkout)
        data["builds"].append(build)
        data["tests"] += tests
    return data


def write(kernels: list[KernelResults], path: Path) -> None:
    # allow_nan=False: every number was checked where it was read (bare NaN is not JSON).
    write_atomic(path, json.dumps(report(kernels), indent=1, allow_nan=False) + "\n")
