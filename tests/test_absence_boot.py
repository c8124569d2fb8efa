"""Absence as a checked claim, on real kernels: what Debian's 7.0.4 and 7.3.4 really answer.

(6.19.14, where every feature is absent, is test_run_boot.py::test_feature_absent_kernel.)
"""
from __future__ import annotations

import json

import pytest

from otns.results.files import parse_junit
from otns.results.model import Outcome

pytestmark = pytest.mark.boot

SPEC_70 = "debian:7.0.4"  # OPEN_TREE_NAMESPACE (7.0), not FSMOUNT_NAMESPACE nor the empty namespace (7.1)
SPEC_73 = "debian:7.3.4"
# The checks that hold on 7.0.4; the whole suite also fails there six rules fixed after it
# (test_core/test_paths ENOTDIR, test_foreign covered mounts: each names its fix).
SUBSET = "test_features or fsmount_ns or empty_mntns or test_flags"


def probes(results) -> dict[str, tuple[str, str, str]]:
    data = json.loads((results / "features.json").read_text())
    return {n: (f["state"], f["root"], f["cross_check"]) for n, f in data["features"].items()}


def test_7_0_has_open_tree_ns_and_lacks_the_7_1_features_by_version(otns):
    r = otns("run", "--kernel", SPEC_70, "-k", SUBSET)
    assert r.code == 0, r.stderr
    assert r.last_line.startswith("FEATURE ABSENT (open_tree_ns present; "
                                  "fsmount_ns absent: Linux 7.0 predates it (mainline since 7.1); "
                                  "empty_mntns absent: Linux 7.0 predates it (mainline since 7.1))")
    s = r.summary
    assert s["release"].startswith("7.0.4")
    assert {n: f["state"] for n, f in s["features"].items()} == {
        "open_tree_ns": "present", "fsmount_ns": "absent-expected", "empty_mntns": "absent-expected"}
    # The cross-checks really ran: the known flag gives the unprivileged caller EPERM; the unknown
    # ones give EINVAL to every caller (fsmount's fd check comes after its flags: EINVAL too).
    assert probes(r.results) == {
        "open_tree_namespace": ("present", "success", "EPERM"),
        "fsmount_namespace": ("absent", "EINVAL", "EINVAL"),
        "unshare_empty_mntns": ("absent", "EINVAL", "EINVAL"),
        "clone_empty_mntns": ("absent", "EINVAL", "EINVAL")}
    tests = parse_junit(r.results / "junit.xml")
    # The 7.1 features' tests skip with the probe's reason; only their checks that hold on any
    # kernel (unknown flag bits) run, and pass.
    siblings = [t for t in tests if "fsmount_ns.py" in t.name or "empty_mntns.py" in t.name]
    skipped = [t for t in siblings if t.outcome is Outcome.SKIP]
    assert len(skipped) > 50 and all("(new in Linux 7.1)" in t.message for t in skipped)
    assert all(t.outcome is Outcome.PASS for t in siblings if t.outcome is not Outcome.SKIP)
    checks = [t for t in tests if "test_features.py" in t.name]
    assert len(checks) == 3 and all(t.outcome is Outcome.PASS for t in checks)


def test_7_0_with_require_feature_does_not_conform(otns):
    r = otns("run", "--kernel", SPEC_70, "--require-feature", "-k", "test_features")
    assert r.code == 1, r.stderr
    assert r.last_line.startswith(
        "DOES NOT CONFORM (fsmount_ns absent, but every feature is required (Linux 7.0 predates it); "
        "empty_mntns absent, but every feature is required (Linux 7.0 predates it))")
    assert r.summary["features"]["fsmount_ns"]["state"] == "absent-but-required"


def test_7_3_knows_every_flag(otns):
    r = otns("run", "--kernel", SPEC_73, "-k", "test_features")
    assert r.code == 0, r.stderr
    assert r.last_line.startswith("CONFORMS (open_tree_ns, fsmount_ns, empty_mntns)")
    # a kernel that knows each flag: root succeeds; the cross-check fails the check after the flags
    assert probes(r.results) == {
        "open_tree_namespace": ("present", "success", "EPERM"),
        "fsmount_namespace": ("present", "success", "EBADF"),
        "unshare_empty_mntns": ("present", "success", "EPERM"),
        "clone_empty_mntns": ("present", "success", "EPERM")}
