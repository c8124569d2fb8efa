"""Absence as a checked claim: the probe's states, the version rule, --allow-absent and the
verdict, on features.json files recorded from real guests (Debian 7.0.4 and 7.1.13)."""
from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from base.errors import EXIT_CONFORMS, EXIT_NONCONFORMING, EXIT_USAGE, BadInput
from conformance import probe
from conformance.features import BY_NAME, BY_PROBE, FEATURES, kernel_version
from otns.matrix.entries import parse_entry
from otns.results.absence import ALLOW_ALL, Policy, State, judge
from otns.results.model import Outcome, RunSummary, Verdict, decide
from otns.results.model import TestResult as Result
from otns.results.plan import policy

DATA = Path(__file__).parent / "data"
PASSING = [Result("conformance/test_core.py::test_a", Outcome.PASS),
           Result("conformance/test_siblings.py::test_b", Outcome.SKIP, message="the kernel lacks it")]


def recorded(version: str) -> dict:
    return json.loads((DATA / f"features-{version}.json").read_text())


DEFAULT_POLICY = Policy()


def verdict(groups: dict | None, release: str, policy: Policy = DEFAULT_POLICY,
            tests: list[Result] = PASSING) -> RunSummary:
    states = judge(groups, release, policy)
    return RunSummary(kernel="k", release=release, source="s", accel="tcg", verdict=decide(tests, states, "exited"),
                      counts={"pass": 1, "fail": sum(t.outcome is Outcome.FAIL for t in tests), "skip": 1, "error": 0},
                      durations={}, feature_present=None, features=states)


def states_of(s: RunSummary) -> dict[str, State]:
    return {f.name: f.state for f in s.features}


@pytest.mark.parametrize("release, version", [
    ("7.2.13+deb14-cloud-amd64", (7, 2)), ("7.3.0-rc7", (7, 3)), ("7.3.0-rc7-00042-gdeadbeef-dirty", (7, 3)),
    ("6.19.14-cloud-amd64", (6, 19)), ("7.10.1", (7, 10)), ("17.0.0+", (17, 0)), ("6.18.44-fc-v669", (6, 18)),
    ("", None), ("vmlinuz", None), ("7", None), ("v7.2", None), ("-7.2", None)])
def test_kernel_version(release, version):
    assert kernel_version(release) == version


def test_recorded_7_0_4_lacks_the_7_1_features_by_version():
    # What Debian's 7.0.4 really has (booted): open_tree_ns, not the 7.1 features.
    data = recorded("7.0.4")
    assert data["release"].startswith("7.0.4")
    s = verdict(data["groups"], data["release"])
    assert states_of(s) == {"open_tree_ns": State.PRESENT, "fsmount_ns": State.ABSENT_EXPECTED,
                            "empty_mntns": State.ABSENT_EXPECTED}
    assert s.verdict is Verdict.FEATURE_ABSENT and s.exit_code() == EXIT_CONFORMS
    assert s.verdict_line() == ("FEATURE ABSENT (open_tree_ns present; "
                                "fsmount_ns absent: Linux 7.0 predates it (mainline since 7.1); "
                                "empty_mntns absent: Linux 7.0 predates it (mainline since 7.1))")


@pytest.mark.parametrize("version", ["7.1.13", "7.3.4"])
def test_recorded_7_1_and_later_have_everything(version):
    data = recorded(version)
    assert data["release"].startswith(version)
    s = verdict(data["groups"], data["release"])
    assert set(states_of(s).values()) == {State.PRESENT}
    assert s.verdict_line() == "CONFORMS (open_tree_ns, fsmount_ns, empty_mntns)"
    assert s.to_json()["features"]["fsmount_ns"]["state"] == "present"


def test_absent_where_the_version_requires_it_does_not_conform():
    # 7.0.4's probes on a kernel that says it is 7.2: a build that lost the 7.1 features.
    s = verdict(recorded("7.0.4")["groups"], "7.2.13+deb14-cloud-amd64")
    assert s.verdict is Verdict.NONCONFORMING and s.exit_code() == EXIT_NONCONFORMING
    assert s.verdict_line() == ("DOES NOT CONFORM (fsmount_ns absent, but Linux 7.2 must have it (mainline since 7.1); "
                                "empty_mntns absent, but Linux 7.2 must have it (mainline since 7.1))")
    assert s.to_json()["features"]["fsmount_ns"]["state"] == "absent-but-required"


def test_allow_absent_is_per_feature():
    groups = recorded("7.0.4")["groups"]
    one = verdict(groups, "7.2.13", Policy.from_names(["fsmount_ns"]))
    assert states_of(one)["fsmount_ns"] is State.ABSENT_ALLOWED
    assert one.verdict is Verdict.NONCONFORMING and "empty_mntns absent, but Linux 7.2" in one.verdict_line()
    both = verdict(groups, "7.2.13", Policy.from_names(["fsmount_ns", "empty_mntns"]))
    assert both.verdict is Verdict.FEATURE_ABSENT and both.exit_code() == EXIT_CONFORMS
    assert "fsmount_ns absent: allowed (mainline since 7.1)" in both.verdict_line()
    # matrix SPEC=may-lack allows every feature
    assert verdict(groups, "7.2.13", ALLOW_ALL).verdict is Verdict.FEATURE_ABSENT
    with pytest.raises(BadInput, match="unknown feature fsmount"):
        Policy.from_names(["fsmount"])


def test_require_feature_allows_no_absence():
    s = verdict(recorded("7.0.4")["groups"], "7.0.4+deb13-cloud-amd64", Policy(require_all=True))
    assert s.verdict is Verdict.NONCONFORMING and s.exit_code() == EXIT_NONCONFORMING
    assert "fsmount_ns absent, but every feature is required (Linux 7.0 predates it)" in s.verdict_line()
    assert verdict(recorded("7.1.13")["groups"], "7.1.13", Policy(require_all=True)).verdict is Verdict.CONFORMS


def test_before_every_feature_absent_is_fine():
    data = recorded("6.19.14")
    groups = data["groups"]
    assert {f["state"] for f in data["features"].values()} == {"absent"}
    s = verdict(groups, data["release"])
    assert s.verdict is Verdict.FEATURE_ABSENT and s.exit_code() == EXIT_CONFORMS
    assert s.verdict_line().startswith("FEATURE ABSENT (open_tree_ns absent: Linux 6.19 predates it (mainline since 7.0);")
    # OPEN_TREE_NAMESPACE missing from a 7.0 kernel is not absence but a failure
    on70 = verdict(groups, "7.0.4+deb13-cloud-amd64")
    assert on70.verdict is Verdict.NONCONFORMING
    assert on70.verdict_line().startswith("DOES NOT CONFORM (open_tree_ns absent, but Linux 7.0 must have it")


def test_unknown_version_cannot_excuse_absence():
    s = verdict({n: {"state": "absent"} for n in BY_NAME}, "mykernel")
    assert s.verdict is Verdict.NONCONFORMING
    assert "cannot tell from release 'mykernel' whether it must have it" in s.verdict_line()


def test_broken_feature_does_not_conform_even_if_its_tests_were_not_selected():
    groups = {**recorded("7.1.13")["groups"], "fsmount_ns": {"state": "broken", "detail": "EPERM for root"}}
    s = verdict(groups, "7.2.13")
    assert s.verdict is Verdict.NONCONFORMING
    assert s.verdict_line() == "DOES NOT CONFORM (fsmount_ns broken: the kernel knows it but it fails)"
    failed = verdict(groups, "7.2.13", tests=[*PASSING, Result("x", Outcome.FAIL)])
    assert failed.verdict_line() == "DOES NOT CONFORM (1 failed; fsmount_ns broken: the kernel knows it but it fails)"
    # --allow-absent does not excuse a broken feature
    assert verdict(groups, "7.2.13", ALLOW_ALL).verdict is Verdict.NONCONFORMING


def test_no_probe_is_a_harness_error():
    s = verdict(None, "7.2.13")
    assert s.verdict is Verdict.HARNESS_ERROR
    assert s.verdict_line() == "HARNESS ERROR (no feature probe for open_tree_ns, fsmount_ns, empty_mntns)"
    garbage = verdict({"open_tree_ns": "present", "fsmount_ns": {"state": 3}}, "7.2.13")
    assert set(states_of(garbage).values()) == {State.UNPROBED}


# The probe's classification, from what root and the cross-check got.
OT = BY_NAME["open_tree_ns"]
UNPRIV = probe.CrossCheck("open_tree without CAP_SYS_ADMIN", errno.EPERM, "OT-CAP, checked after the flags")
BADFD = probe.CrossCheck("fsmount(-1, FSMOUNT_NAMESPACE)", errno.EBADF, "the fd is looked up after the flags")


@pytest.mark.parametrize("root, cross, check, state, words", [
    (0, errno.EPERM, UNPRIV, probe.PRESENT, "works"),
    (errno.EINVAL, errno.EINVAL, UNPRIV, probe.ABSENT, "the kernel lacks OPEN_TREE_NAMESPACE (new in Linux 7.0)"),
    (errno.EINVAL, errno.EPERM, UNPRIV, probe.BROKEN, "present and broken, not absent"),
    (errno.EPERM, errno.EPERM, UNPRIV, probe.BROKEN, "EPERM for root is a bug, not absence"),
    (errno.ENOENT, errno.EPERM, UNPRIV, probe.BROKEN, "present and broken"),
    (errno.EINVAL, 0, UNPRIV, probe.BROKEN, "neither present nor cleanly absent"),
    (errno.EINVAL, errno.EBADF, BADFD, probe.BROKEN, "the fd is looked up after the flags"),
    (errno.EINVAL, errno.EINVAL, BADFD, probe.ABSENT, "lacks"),
    (0, 0, UNPRIV, probe.BROKEN, "open_tree without CAP_SYS_ADMIN succeeded too; it must fail (OT-CAP"),
])
def test_probe_classification(root, cross, check, state, words):
    f = probe.classify(OT, "open_tree(scratch tmpfs)", "no rule refuses it", check, root, cross)
    assert f.state == state and words in f.detail
    assert f.present == (state != probe.ABSENT), "only an absent feature's tests skip"
    if state == probe.BROKEN:
        assert "OT-CAP" in f.detail or check.rule in f.detail, "the message names the rule"


def test_empty_mntns_needs_both_probes_to_agree():
    spec = BY_NAME["empty_mntns"]
    here, gone = probe.Feature(True, "ok"), probe.Feature(False, probe.lacks(spec) + ": x gave EINVAL", probe.ABSENT)
    assert probe.combine("empty_mntns", [here, here]).state == probe.PRESENT
    assert probe.combine("empty_mntns", [gone, gone]).state == probe.ABSENT
    mixed = probe.combine("empty_mntns", [here, gone])
    assert mixed.state == probe.BROKEN and "has one and lacks the other" in mixed.detail
    assert [BY_PROBE[p].name for p in spec.probes] == ["empty_mntns", "empty_mntns"]
    assert [f.name for f in FEATURES] == ["open_tree_ns", "fsmount_ns", "empty_mntns"]


def test_cli_refuses_unknown_or_contradictory_absence_options(otns):
    p = otns("run", "--allow-absent", "fsmount", "--dry-run", results=False)
    assert p.code == EXIT_USAGE and "invalid choice: 'fsmount'" in p.stderr
    p = otns("run", "--allow-absent", "fsmount_ns", "--require-feature", "--dry-run", results=False)
    assert p.code == EXIT_USAGE and "contradict" in p.stderr and "Traceback" not in p.stderr


def test_matrix_expectations_are_policies():
    assert parse_entry("debian:7.0.4").expect == "version" and policy("version") == Policy()
    assert policy(parse_entry("debian:7.2=conform").expect) == Policy(require_all=True)
    assert policy(parse_entry("debian:7.2=may-lack").expect) == ALLOW_ALL
    groups = recorded("7.0.4")["groups"]
    assert verdict(groups, "7.0.4", policy("version")).verdict is Verdict.FEATURE_ABSENT
    assert verdict(groups, "7.0.4", policy("conform")).verdict is Verdict.NONCONFORMING
