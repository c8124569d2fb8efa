"""`otns matrix`, `otns report` and `otns diff` on real kernels: one matrix of three kernels
(module-scoped), its verdicts, reports, diff and KCIDB."""
from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from otns.paths import REPO_ROOT

from .conftest import ABSENT_SPEC, DEFAULT_SPEC, chromium, otns_command

pytestmark = pytest.mark.boot

# A kernel from before "namespace: keep covered mounts covered" (it fails two foreign-caller tests).
OLD_SPEC = "debian:7.2.9"
SUBSET = "test_foreign or test_core"


@pytest.fixture(scope="module")
def matrix_out(cache_dir: Path, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("matrix") / "out"
    cmd = otns_command("matrix", f"{DEFAULT_SPEC}=conform", ABSENT_SPEC, f"{OLD_SPEC}=conform", "-k", SUBSET,
                       "--out", str(out), cache=cache_dir)
    p = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    return out, p


def test_matrix_over_three_kernels(matrix_out) -> None:
    out, p = matrix_out
    # The old kernel was marked "conform" and does not: the matrix says so with exit 1.
    assert p.returncode == 1, p.stderr + p.stdout
    # On stdout, last, under each failure of the kernel with its rules and fix (a CI log shows why).
    last = p.stdout.strip().splitlines()
    assert last[-1] == f"1 of 3 KERNELS NOT AS EXPECTED: {OLD_SPEC}", p.stdout[-3000:]
    failing = [ln.strip() for ln in last if ln.startswith("  FAILED ")]
    assert failing and all(" [rule" in ln and "known fix" in ln for ln in failing), last[-20:]
    assert any(ln.startswith(f"{OLD_SPEC} (expect conform): DOES NOT CONFORM (") for ln in last)
    states = {d.name: json.loads((d / "state.json").read_text()) for d in out.iterdir() if (d / "state.json").exists()}
    assert len(states) == 3
    by_kernel = {s["kernel"]: s for s in states.values()}
    assert by_kernel[DEFAULT_SPEC]["verdict"] == "CONFORMS (open_tree_ns, fsmount_ns, empty_mntns)"
    assert by_kernel[DEFAULT_SPEC]["ok"]
    assert by_kernel[ABSENT_SPEC]["verdict"].startswith("FEATURE ABSENT (open_tree_ns absent: Linux 6.19 predates it")
    assert by_kernel[ABSENT_SPEC]["ok"]
    # 7.2.9 predates the covered-mounts change (7.2.11): its tests, and those of the rules it brought, fail.
    assert by_kernel[OLD_SPEC]["verdict"].startswith("DOES NOT CONFORM ("), by_kernel[OLD_SPEC]["verdict"]
    assert by_kernel[OLD_SPEC]["counts"]["fail"] >= 2, by_kernel[OLD_SPEC]["counts"]
    for d in out.iterdir():
        if d.is_dir():
            for name in ("junit.xml", "ktap.txt", "summary.json", "console.log"):
                assert (d / name).is_file(), f"{d.name}/{name}"
    # the terminal grid shows the rows that differ
    assert "test_foreign_non_recursive_copy_over_children_is_einval" in p.stdout
    combined = ET.parse(out / "combined-junit.xml").getroot()
    assert [s.get("name") for s in combined.iter("testsuite")] == [DEFAULT_SPEC, ABSENT_SPEC, OLD_SPEC]
    md = (out / "grid.md").read_text()
    assert md.count("\n") > 10 and "❌" in md
    # The final table weighs the wall time against the kernels' own times, read from their states.
    m = re.search(r"wall, 2 workers.*?(\d+) s.*?the kernels' own times sum to (\d+) s: speed-up x([\d.]+)", p.stdout)
    assert m, p.stdout[-2000:]
    own = sum(s["seconds"] for s in states.values())
    assert abs(int(m[2]) - own) <= 1 and float(m[3]) == pytest.approx(own / int(m[1]), rel=0.05)


def test_html_report_in_chromium(matrix_out, tmp_path) -> None:
    out, _ = matrix_out
    page = out / "report.html"
    dom = chromium(tmp_path / "profile", "--dump-dom", page.as_uri())
    # one row per test: the union of the tests the three kernels ran
    from otns.report.grid import load_matrix, test_names
    assert dom.count('<tr class="row') == len(test_names(load_matrix(out)))
    header = dom.split("<thead>")[1].split("</thead>")[0]
    assert header.count("<th>") == 1 + 3, "one column per kernel, plus the test names"
    for kernel in (DEFAULT_SPEC, ABSENT_SPEC, OLD_SPEC):
        assert kernel in header
    assert 'class="cell fail"' in dom and 'class="cell pass"' in dom and 'class="cell skip-absent"' in dom
    # a head per kernel, then the failing rows first (7.2.9's)
    assert dom.count('<div class="head ') == 3
    first = dom.split('<tr class="row"', 1)[1].split("</tr>", 1)[0]
    assert 'data-section="failures"' in first and 'class="cell fail"' in first, first
    shot = out / "report.png"
    chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,900", page.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000, "no screenshot"


def test_diff_between_two_result_folders(matrix_out, otns) -> None:
    out, _ = matrix_out
    folders = {json.loads((d / "state.json").read_text())["kernel"]: d
               for d in out.iterdir() if (d / "state.json").exists()}
    p = otns("diff", str(folders[OLD_SPEC]), str(folders[DEFAULT_SPEC]), results=False)
    assert p.code == 1, p.stderr
    differ = int(re.search(r"(\d+) tests differ", p.stdout).group(1))
    assert differ >= 2, p.stdout
    assert "test_foreign_non_recursive_copy_over_children_is_einval" in p.stdout
    same = otns("diff", str(folders[DEFAULT_SPEC]), str(folders[DEFAULT_SPEC]), results=False)
    assert same.code == 0 and same.stdout.startswith("no test differs: ") and same.stdout.count("\n") == 1


def test_kcidb_from_the_three_kernel_matrix(matrix_out, tmp_path) -> None:
    """The matrix's folders as KCIDB JSON: valid for kcidb-io, one checkout per release, one build
    per kernel, and each kernel's conformance tests under its build with the outcome it had."""
    import kcidb_io
    out, _ = matrix_out
    folders = sorted(d for d in out.iterdir() if (d / "state.json").exists())
    kcidb_file = tmp_path / "kcidb.json"
    p = subprocess.run(otns_command("report", *map(str, folders), "--out", str(tmp_path / "r"), "--kcidb", str(kcidb_file)),
                       cwd=REPO_ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    data = json.loads(kcidb_file.read_text())
    kcidb_io.schema.V5_3.validate(data)
    assert len(data["checkouts"]) == 3 and len(data["builds"]) == 3
    statuses = {t["status"] for t in data["tests"] if t["path"] != "boot"}
    assert {"PASS", "FAIL", "SKIP"} <= statuses  # 7.2.13 passes, 7.2.9 fails, 6.19.14 skips
