"""What scripts and pipes get: --json documents, the test list, KTAP's totals, and a reader
that closes the pipe early (`| head`), which must not change the exit code."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from otns.paths import REPO_ROOT
from otns.results.files import load_folder
from otns.results.jsonout import kernel_json

from .conftest import otns_command

DATA = Path(__file__).parent / "data"


def test_kernel_json_has_every_test_with_its_rules_and_fixes() -> None:
    k = load_folder(DATA / "results-7.0.4")
    doc = json.loads(json.dumps(kernel_json(k)))
    assert doc["verdict"] == "NONCONFORMING" and doc["verdict_line"] == "DOES NOT CONFORM (11 failed)"
    assert len(doc["tests"]) == sum(doc["counts"].values())
    failed = [t for t in doc["tests"] if t["outcome"] == "fail"]
    assert len(failed) == doc["counts"]["fail"] and all(t["rules"] for t in failed)
    assert {"OT-DIR"} <= {r for t in failed for r in t["rules"]} and any("ENOTDIR_TARGET" in t["fixes"] for t in failed)


def test_tests_lists_ids_rules_and_fixes(otns) -> None:
    r = otns("tests", "--rule", "OT-DIR", "--json", results=False)
    assert r.code == 0, r.stderr
    tests = json.loads(r.stdout)
    assert tests and all("OT-DIR" in t["rules"] for t in tests)
    assert "conformance/test_core.py::test_target_must_be_directory" in {t["id"] for t in tests}
    plain = otns("tests", "-k", "test_target_must_be_directory", results=False)
    assert plain.stdout.split() == ["conformance/test_core.py::test_target_must_be_directory", "OT-DIR", "fix",
                                    "ENOTDIR_TARGET"]


def test_a_reader_that_stops_early_is_no_failure() -> None:
    # `otns tests | head -1`: the rest of the list goes nowhere and otns exits 0, not rich's 1.
    p = subprocess.run(f"{' '.join(otns_command('tests'))} | head -1; echo \"rc=${{PIPESTATUS[0]}}\"",
                       shell=True, executable="/bin/bash", cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    lines = p.stdout.splitlines()
    assert lines[0].startswith("conformance/") and lines[-1] == "rc=0", p.stdout[-500:] + p.stderr[-2000:]
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr


def test_boot_phases_are_lines_when_piped_and_one_live_line_on_a_terminal() -> None:
    import io

    from otns.commands.run import BootProgress
    from vm.boot import PHASE_KERNEL, PHASE_QEMU, PHASE_USERSPACE

    piped = io.StringIO()
    b = BootProgress(piped)
    for what, s in ((PHASE_QEMU, 0.0), (PHASE_KERNEL, 3.1), (PHASE_USERSPACE, 16.7)):
        b(what, s)
    b.close()
    assert piped.getvalue().splitlines() == ["otns: boot: QEMU started (0.0 s)", "otns: boot: kernel started (3.1 s)",
                                             "otns: boot: user space reached, the suite starts (16.7 s)"]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True
    tty = Terminal()
    b = BootProgress(tty)
    b(PHASE_QEMU, 0.0)
    b(PHASE_KERNEL, 3.1)
    b(PHASE_USERSPACE, 16.7)
    b.close()
    # The live line is gone; what stays is the time user space came.
    assert tty.getvalue().endswith("otns: boot: user space reached, the suite starts (16.7 s)\n")
    assert "kernel started (3.1 s)" in tty.getvalue()
