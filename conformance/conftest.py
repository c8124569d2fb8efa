"""Fixtures shared by the conformance suite: feature probes, isolation, leak checks; each test's
rule and fix markers, checked and carried to its failure's message and junit.xml (marks.py)."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

from . import marks, probe
from .features import BY_NAME, FEATURES
from .marks import pytest_collection_finish, pytest_collection_modifyitems, pytest_runtest_makereport, pytest_terminal_summary  # noqa: F401 (marks.py's hooks)
from .oracle_profile import DEPTH_VARIABLE


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--otns-features", default=None,
                     help="write the run-time feature probes to this JSON file")
    marks.pytest_addoption(parser)
    parser.addoption("--otns-profile", choices=("default", "deep"), default="default",
                     help="how many generated examples the oracle tries (deep: CI's)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_feature(name): skip only if the probe found the feature (or probe) absent")
    # pytest-timeout's marker, known also where the plugin is not loaded (the host's collection)
    config.addinivalue_line("markers", "timeout(seconds): this test's own time limit (pytest-timeout)")
    marks.pytest_configure(config)
    # Read by oracle_profile when the oracle's tests are collected (after this hook).
    os.environ[DEPTH_VARIABLE] = config.getoption("--otns-profile")


class Features(dict):
    """Probes by name (probe.PROBES) or whole features by name (features.FEATURES), run on first use."""

    def __missing__(self, name: str) -> probe.Feature:
        if name in BY_NAME:
            self[name] = probe.combine(name, [self[p] for p in BY_NAME[name].probes])
        else:
            self[name] = probe.PROBES[name]()
        return self[name]


_FEATURES = Features()


@pytest.fixture(scope="session")
def features() -> Features:
    return _FEATURES


def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return  # otns checks arguments on the host this way: no root, no probes needed
    if os.geteuid() != 0:
        raise pytest.UsageError("the conformance suite must run as root (it is run inside a VM by otns)")
    for f in FEATURES:  # the verdict needs every feature's state, whatever tests are selected
        _FEATURES[f.name]
    # Written now, so that a run that hangs or crashes later still tells what the kernel has.
    out = session.config.getoption("--otns-features")
    if out and not hasattr(session.config, "workerinput"):
        data = {"release": platform.release(),
                "features": {n: f.to_json() for n, f in _FEATURES.items() if n in probe.PROBES},
                "groups": {n: f.to_json() for n, f in _FEATURES.items() if n in BY_NAME}}
        Path(out).write_text(json.dumps(data, indent=1))


@pytest.fixture(autouse=True)
def _needs_feature(request: pytest.FixtureRequest, features) -> None:
    # The one way a test skips for a missing feature: the probe's checked claim of absence.
    for mark in request.node.iter_markers("needs_feature"):
        f = features[mark.args[0]]
        if f.state == probe.ABSENT:
            pytest.skip(f.detail)


def _namespaces() -> dict[str, str]:
    # The link's text names the namespace: "mnt:[4026531841]", its type and inode number.
    return {n: os.readlink(f"/proc/self/ns/{n}") for n in sorted(os.listdir("/proc/self/ns"))}


def _mounts() -> bytes:
    """/proc/self/mountinfo as bytes. Read with os.read: pathlib's text layers cost about a
    millisecond under TCG, and every test reads the file twice (_no_leaks)."""
    fd = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@pytest.fixture(scope="session", autouse=True)
def _session_leaves_no_trace():
    """The whole session leaves the mount table, fds and namespaces as it found them."""
    before = (_mounts(), _open_fds(), _namespaces())
    yield
    after = (_mounts(), _open_fds(), _namespaces())
    assert after[0] == before[0], "the session changed the mount table"
    assert after[1] <= before[1], f"the session leaked fds {sorted(after[1] - before[1])}"
    assert after[2] == before[2], "the session left the test process in other namespaces"


def _open_fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


@pytest.fixture(autouse=True)
def _no_leaks():
    """Every test leaves the fd table and the mount table as it found them."""
    fds = _open_fds()
    mounts = _mounts()
    namespaces = _namespaces()
    yield
    leaked = _open_fds() - fds
    assert _mounts() == mounts, "the test changed the mount table"
    assert not leaked, f"the test leaked file descriptors {sorted(leaked)}"
    assert _namespaces() == namespaces, "the test left the test process in other namespaces"
