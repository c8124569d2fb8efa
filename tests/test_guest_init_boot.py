"""otns's guest init (vm/guest_init.sh) in a real guest: under either init, vng relays the
command's output, errors and exit status, and the suite's outcomes are the same."""
from __future__ import annotations

import pytest

from otns.results.files import parse_junit
from vm.boot import BootStatus, boot

from .test_guest_init import _request

pytestmark = pytest.mark.boot


@pytest.mark.parametrize("which", ["otns", "virtme-ng"])
def test_either_init_relays_output_errors_and_status(cache_dir, tmp_path, which):
    results = tmp_path / "r"
    results.mkdir()
    # Orphans that exit must be reaped by PID 1 (the suite forks thousands of children).
    command = ("echo out-$(cat /proc/sys/kernel/hostname); echo err-line >&2; "
               "for i in 1 2 3; do (sleep 0.1 &); done; sleep 1; "
               "echo zombies=$(ps -eo stat= | grep -c Z); "
               "echo written > /run/otns-results/from-guest; "
               "grep -qs ' /run ' /proc/mounts && echo run-ok; exit 7")
    res = boot(_request(cache_dir, results, which, command), lambda _: None)
    assert res.status is BootStatus.EXITED and res.exit_code == 7, (res.status, res.console[-2000:])
    assert "out-virtme-ng" in res.guest_output and "err-line" in res.console
    assert "zombies=0" in res.guest_output and "run-ok" in res.guest_output
    assert (results / "from-guest").read_text() == "written\n"
    assert not res.reports, res.reports


def test_the_suite_gives_the_same_outcomes_under_either_init(otns):
    runs = {which: otns("run", "--guest-init", which, "--", "conformance/test_core.py") for which in ("otns", "virtme-ng")}
    outcomes = {}
    for which, r in runs.items():
        assert r.code == 0, r.stderr
        outcomes[which] = {c.name: c.outcome for c in parse_junit(r.results / "junit.xml")}
    assert len(outcomes["otns"]) >= 30 and outcomes["otns"] == outcomes["virtme-ng"]
