"""On real boots: a too-short timeout is not called a hang, pytest in the guest refusing its
arguments is bad usage, and a matrix says why each kernel missed its expectation."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from base.errors import BadInput
from kernels.spec import parse_spec
from otns.options import VmSettings
from otns.paths import REPO_ROOT
from otns.run.execute import RunOptions, execute
from vm import boot_times

from .conftest import otns_command
from .test_bad_input import assert_one_line_error

pytestmark = pytest.mark.boot

KERNEL = "debian:7.2.13"


def test_a_timeout_shorter_than_a_boot_is_not_a_hang(otns, cache_dir):
    start = time.monotonic()
    r = otns("run", "--kernel", KERNEL, "--timeout", "3")
    took = time.monotonic() - start
    out = r.stdout + r.stderr  # the verdict is on stdout, the notices on stderr
    assert r.code == 3, out  # not 4: nothing says the kernel hung
    assert "HUNG" not in out and "COULD NOT BOOT" in out, out
    assert "the 3 s timeout ran out before the kernel reached user space" in out, out
    assert "not judged as a hang" in out
    known = boot_times.typical(cache_dir, r.summary["accel"])
    if known:
        assert f"reaches user space in {known[0]:.1f} s" in out, out
    else:
        assert "no boot recorded here yet" in out
    assert r.summary["boot_attempts"] == 1, "a boot cut short by the user's timeout was retried"
    assert took < 60, took
    # summary.json records the exact Debian kernel, for a later bisect --changed
    assert r.summary["debian"] == {"upstream": "7.2.13", "debian_version": "7.2.13-1", "flavour": "cloud",
                                   "release": "7.2.13+deb14-cloud-amd64"}


def test_pytest_refusing_its_arguments_in_the_guest_is_bad_usage(cache_dir, tmp_path):
    # Past the host's own check (otns run would refuse these before booting): the guest's answer.
    before = boot_times.typical(cache_dir, "tcg")
    opts = RunOptions(spec=parse_spec(KERNEL), cache_dir=cache_dir, results=tmp_path / "r",
                      pytest_args=["--no-such-option"], show_progress=False, vm=VmSettings(accel="tcg"))
    with pytest.raises(BadInput) as e:
        execute(opts, lambda m: None, lambda line: None)
    assert "unrecognized arguments: --no-such-option" in str(e.value)
    assert "\n" not in str(e.value)
    after = boot_times.typical(cache_dir, "tcg")
    assert after is not None and (before is None or after != before or after[1] == boot_times.KEEP), \
        "the boot's time to user space was not remembered"


def test_matrix_says_why_a_kernel_missed(cache_dir, tmp_path):
    out = tmp_path / "out"
    p = subprocess.run(otns_command("matrix", "debian:6.19.14=conform", "-k", "test_core", "--out", str(out),
                                    cache=cache_dir),
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 1, p.stderr + p.stdout
    line = next(ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip().startswith("debian:6.19.14 (expect conform):"))
    # =conform requires every feature: 6.19 lacks all three, and the line says which and why.
    assert "DOES NOT CONFORM" in line and "open_tree_ns absent, but every feature is required" in line, line
    state = json.loads(next(out.glob("*/state.json")).read_text())
    assert state["verdict"].startswith("DOES NOT CONFORM (open_tree_ns absent") and not state["ok"], state


def test_matrix_bad_kernel_among_good_boots_nothing(otns, tmp_path):
    # Not a boot, but beside the matrix test: debian:9.99.99 is refused before 7.2.13 boots.
    out = tmp_path / "out"
    r = otns("matrix", KERNEL, "debian:9.99.99", "--out", str(out), results=False)
    assert_one_line_error(r, 2, "debian:9.99.99")
    assert not Path(out).exists()
