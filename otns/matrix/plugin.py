"""pytest plugin for `otns matrix`: the plan, and one test item per kernel of it
(the item itself is otns/matrix/entry_test.py). pytest-xdist spreads the items over workers, so
each worker boots one VM at a time."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest

from otns.results.files import read_plan
from otns.results.plan import Plan


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--otns-plan", required=True, help="plan.json written by otns matrix")


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM (Ctrl-C of otns matrix) must unwind through vm.boot so the VM is stopped.
    def _raise(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _raise)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "entry" in metafunc.fixturenames:
        plan = read_plan(Path(metafunc.config.getoption("--otns-plan")))
        entries = plan.started_first()
        metafunc.parametrize("entry", entries, ids=[e.slug for e in entries])


@pytest.fixture(scope="session")
def plan(request: pytest.FixtureRequest) -> Plan:
    return read_plan(Path(request.config.getoption("--otns-plan")))
