"""The conformance suite's leak guard (conformance/conftest.py, _no_leaks and the session's):
what it compares must change when a test changes the mount table, the fd table or the test
process's namespaces. Run on the host, in a forked child that has its own namespaces (they
die with it), so the host's own tables never change."""
from __future__ import annotations

import os
import tempfile

import pytest

from conformance import syscalls as k
from conformance.conftest import _mounts, _namespaces, _open_fds
from conformance.helpers import in_child

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and mounts")


def test_mounts_is_the_whole_mountinfo():
    with open("/proc/self/mountinfo", "rb") as f:
        assert _mounts() == f.read()


def test_the_guard_sees_a_new_mount_namespace_and_a_mount():
    def child() -> tuple[bool, bool]:
        ns = _namespaces()
        k.unshare(k.CLONE_NEWNS)
        k.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)
        moved_ns = _namespaces() != ns
        with tempfile.TemporaryDirectory() as d:
            before = _mounts()
            k.mount("otns-guard", d, "tmpfs")
            after = _mounts()
            k.umount2(d)
        return moved_ns, before != after and b"otns-guard" in after

    moved_ns, saw_mount = in_child(child)
    assert moved_ns, "a new mount namespace did not change what _namespaces() reports"
    assert saw_mount, "a new tmpfs mount did not change what _mounts() reads"


def test_the_guard_sees_another_namespace_type():
    def child() -> bool:
        ns = _namespaces()
        k.unshare(k.CLONE_NEWUTS)
        changed = {n for n in ns if _namespaces()[n] != ns[n]}
        return changed == {"uts"}

    assert in_child(child), "unshare(CLONE_NEWUTS) did not show as exactly the uts namespace changing"


def test_the_guard_sees_a_leaked_fd():
    before = _open_fds()
    fd = os.open("/", os.O_RDONLY | os.O_CLOEXEC)
    try:
        # Non-empty, though maybe not {fd}: listing /proc/self/fd takes an fd itself, and the
        # leaked one may reuse the number that listing held before.
        assert _open_fds() - before
    finally:
        os.close(fd)
