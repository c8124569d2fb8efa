"""Result folders -> KCIDB JSON (KernelCI's common report format, schema 5.3).

One checkout, one build and their tests per run, with ids made of the origin and the run's own
id (summary.json's run_id), so runs of one kernel on different nights stay apart: the checkout
is the kernel's source (tree_name "debian" for Debian's packages; a built tree's git facts where
otns recorded them), the build is the image that booted (a Debian package is not a build otns
ran: it has no status), a `boot` test for the boot's fate with the run's start time and, given
the URL where the results are published, links to the console log and the result files; one
test per conformance test (its rules and known fixes in `misc`).
Validated in the tests with kcidb-io, KernelCI's own I/O library.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from urllib.parse import quote

from base.safefs import printable, write_atomic
from kernels.arch import host

from ..results.files import CONSOLE, JUNIT, KTAP, SUMMARY, KernelResults
from ..results.model import Outcome, Verdict

ORIGIN = "otns"
SCHEMA = {"major": 5, "minor": 3}
STATUS = {Outcome.PASS: "PASS", Outcome.FAIL: "FAIL", Outcome.SKIP: "SKIP", Outcome.ERROR: "ERROR"}
# The boot test: a kernel that crashed or hung failed; one that could not be booted at all
# (or whose harness broke) is an error of the run, not of the kernel.
BOOT_STATUS = {Verdict.CRASHED: "FAIL", Verdict.HUNG: "FAIL", Verdict.NO_BOOT: "ERROR", Verdict.HARNESS_ERROR: "ERROR"}
_SEGMENT = re.compile(r"[^a-zA-Z0-9_-]+")
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")


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


def _boot_status(k: KernelResults) -> str:
    """A verdict names the boot's fate; a kernel a matrix never finished has none: MISS."""
    return "MISS" if k.summary is None else BOOT_STATUS.get(k.summary.verdict, "PASS")


def run_key(k: KernelResults) -> str:
    """What makes this run's ids its own: the run id otns recorded, or for a folder from before
    that record, a digest of its summary (two runs never write the same durations and times)."""
    run_id = k.summary.run_id if k.summary else ""
    if re.fullmatch(r"[0-9a-f-]{8,64}", run_id):
        return run_id
    # A KernelResults made by hand, not loaded, has no fingerprint: its name and folder stand in.
    return k.fingerprint or hashlib.sha256(f"{k.name}\0{k.folder}".encode()).hexdigest()[:32]


def _url(base: str | None, k: KernelResults, name: str) -> str | None:
    """Where a file of the results folder is published: base + the folder's path as given
    (relative to the current folder when it is below it) + the file's name."""
    if not base:
        return None
    try:
        rel = k.folder.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        rel = Path(k.folder.name)
    return f"{base.rstrip('/')}/{quote(rel.as_posix())}/{quote(name)}"


def _tree(k: KernelResults) -> dict:
    """The checkout's tree: Debian's packages, or the git facts otns recorded of a built tree."""
    if k.summary and k.summary.debian is not None:
        return {"tree_name": "debian"}
    tree = (k.summary.tree if k.summary else None) or {}
    keys = ("git_repository_url", "git_commit_hash", "git_repository_branch")
    out = {key: printable(tree[key], 300) for key in keys if key in tree}
    if "git_commit_hash" in out and not re.fullmatch(r"[0-9a-f]{40}", out["git_commit_hash"]):
        del out["git_commit_hash"]
    out["tree_name"] = printable(str(tree.get("name") or "local"), 100)
    return out


def kernel_objects(k: KernelResults, origin: str = ORIGIN, url: str | None = None) -> tuple[dict, dict, list[dict]]:
    run = run_key(k)
    checkout_id, build_id = f"{origin}:{run}", f"{origin}:{run}:build"
    s = k.summary
    release = (s.release if s else "") or k.folder.name
    started = s.started if s else ""
    when = {"start_time": started} if started and _ISO.fullmatch(started) else {}
    checkout = {"id": checkout_id, "origin": origin, **_tree(k), **when,
                "misc": {"release": release, "source": s.source if s else "", "spec": s.kernel if s else k.name}}
    debian = s.debian if s else None
    build = {"id": build_id, "checkout_id": checkout_id, "origin": origin, "architecture": host().kcidb, **when,
             "misc": {"results_folder": k.folder.name, "release": release}}
    if debian:
        # Debian built it, not otns: no status of a build otns did not run.
        build["config_name"] = debian.get("flavour", "")
        build["comment"] = f"Debian's binary package {printable(debian.get('debian_version', ''), 100)}"
    else:
        build["config_name"] = release
        build["status"] = "PASS"  # the image booted is the one its tree built (otns.run's provenance check)
    log = _url(url, k, CONSOLE)
    durations = s.durations if s else {}
    env = {"comment": f"QEMU ({(s.accel if s else '') or '?'}) under virtme-ng"}
    boot: dict[str, object] = {"id": f"{build_id}:boot", "build_id": build_id, "origin": origin, "path": "boot",
            "status": _boot_status(k), "environment": env, **when,
            "misc": {"verdict": k.verdict}}
    if log:
        boot["log_url"] = log
        boot["output_files"] = [{"name": n, "url": _url(url, k, n)} for n in (CONSOLE, JUNIT, KTAP, SUMMARY)
                                if (k.folder / n).is_file()]
    if "boot" in durations:
        boot["duration"] = float(durations["boot"])
    tests = [boot]
    for name, t in k.tests.items():
        test: dict[str, object] = {
                "id": f"{build_id}:{name}", "build_id": build_id, "origin": origin, "path": test_path(name),
                "status": STATUS[t.outcome], "duration": float(t.seconds), "environment": env,
                "misc": {"node_id": name, **({"rules": t.rules} if t.rules else {}),
                         **({"fixes": t.fixes} if t.fixes else {})}}
        if log:
            test["log_url"] = log
        if t.message.strip():
            test["comment"] = printable(t.message.strip().splitlines()[0], 1000)
        tests.append(test)
    return checkout, build, tests


def report(kernels: list[KernelResults], origin: str = ORIGIN, url: str | None = None) -> dict:
    """Each run a checkout, a build and its tests, with ids of its own: a nightly matrix of the
    same kernels adds runs to KernelCI's database, it does not overwrite the last night's."""
    data: dict = {"version": dict(SCHEMA), "checkouts": [], "builds": [], "tests": []}
    seen: set[str] = set()
    for k in kernels:
        checkout, build, tests = kernel_objects(k, origin, url)
        if checkout["id"] in seen:  # the same run given twice (a folder and the matrix holding it)
            continue
        seen.add(checkout["id"])
        data["checkouts"].append(checkout)
        data["builds"].append(build)
        data["tests"] += tests
    return data


def write(kernels: list[KernelResults], path: Path, origin: str = ORIGIN, url: str | None = None) -> None:
    # allow_nan=False: every number was checked where it was read (bare NaN is not JSON).
    write_atomic(path, json.dumps(report(kernels, origin, url), indent=1, allow_nan=False) + "\n")
