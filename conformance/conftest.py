"""Fixtures shared by the conformance suite: feature probes, isolation, leak checks."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

from . import probe


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--otns-features", default=None,
                     help="write the run-time feature probes to this JSON file")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_feature(name): skip unless the kernel has the feature")


_PROBES = {"open_tree_namespace": probe.open_tree_namespace, "fsmount_namespace": probe.fsmount_namespace,
           "unshare_empty_mntns": probe.unshare_empty_mntns, "clone_empty_mntns": probe.clone_empty_mntns}


@pytest.fixture(scope="session")
def features() -> dict[str, probe.Feature]:
    return {name: fn() for name, fn in _PROBES.items()}


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError("the conformance suite must run as root (it is run inside a VM by otns)")
    out = session.config.getoption("--otns-features")
    if out and not hasattr(session.config, "workerinput"):
        found = {name: fn() for name, fn in _PROBES.items()}
        data = {"release": platform.release(),
                "features": {n: {"present": f.present, "detail": f.detail} for n, f in found.items()}}
        Path(out).write_text(json.dumps(data, indent=1))


@pytest.fixture(autouse=True)
def _needs_feature(request: pytest.FixtureRequest, features) -> None:
    for mark in request.node.iter_markers("needs_feature"):
        f = features[mark.args[0]]
        if not f.present:
            pytest.skip(f.detail)


def _open_fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


@pytest.fixture(autouse=True)
def _no_leaks():
    """Every test leaves the fd table and the mount table as it found them."""
    fds = _open_fds()
    mounts = Path("/proc/self/mountinfo").read_text()
    yield
    leaked = _open_fds() - fds
    assert Path("/proc/self/mountinfo").read_text() == mounts, "the test changed the mount table"
    assert not leaked, f"the test leaked file descriptors {sorted(leaked)}"
