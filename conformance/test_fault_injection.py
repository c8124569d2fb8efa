"""Every allocation of each feature's call, failed in turn (fail-nth fault injection).

An allocation the kernel cannot make is the one failure every path of a call can meet, and the one
no other test produces: each call below runs once per allocation it makes, with that allocation
failing (conformance/faultinject.py). Whatever fails, the call must fail cleanly (ENOMEM, no fd,
the caller's namespace as it was, its max_mnt_namespaces charge given back: the next attempt, under
a limit that leaves room for one namespace, would get ENOSPC otherwise), and a call that succeeds
all the same must have built the whole namespace. Needs a kernel built with fault injection
(`otns build` turns it on, kernels/otns.config); Debian's kernels lack it, and the skip says so
from their config.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable

import pytest

from . import faultinject as fi
from . import syscalls as k
from .helpers import enter_userns, enter_userns_and_mntns, in_child, private_mount_ns, scratch_tmpfs, write_file

OT = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC | k.AT_RECURSIVE
FM = k.FSMOUNT_NAMESPACE | k.FSMOUNT_CLOEXEC
MAX_NS = "/proc/sys/user/max_mnt_namespaces"
Shape = list[tuple]


@pytest.fixture(scope="module", autouse=True)
def fault_injection():
    why = fi.missing()
    if why:
        pytest.skip(why)
    with fi.failslab_counts_sleeping_allocations():
        yield


def shape(ns_id: int) -> Shape:
    """What a namespace holds, mount by mount in listmount's order: everything statmount says
    but the ids that differ from copy to copy."""
    out = []
    for mnt_id in k.listmount(ns_id):
        m = k.statmount(mnt_id, ns_id, mask=k.STATMOUNT_MNT_BASIC | k.STATMOUNT_FS_TYPE | k.STATMOUNT_MNT_ROOT
                        | k.STATMOUNT_MNT_POINT | k.STATMOUNT_PROPAGATE_FROM | k.STATMOUNT_MNT_NS_ID)
        out.append((m.fs_type, m.root, m.point, m.attr, m.propagation, m.peer_group, m.master))
    return out


def ns_shape(fd: int) -> Shape:
    return shape(k.mntns_id(fd))


def fds(*besides: object) -> set[str]:
    """The process's open fds, but the sweep's own fail-nth file and the fds in besides (what
    prepare made for the call)."""
    out = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").endswith("/fail-nth"):
                continue
        except OSError:  # the listing's own fd, closed by now
            continue
        out.add(name)
    return out - {str(b) for b in besides if isinstance(b, int)}


def limit_to_one_more(usage: int) -> None:
    """In a user namespace of the caller's own: room for exactly one more mount namespace."""
    write_file(MAX_NS, str(usage + 1))


def judge(attempts: list[fi.Attempt], problems: list[str], what: str) -> None:
    failed = [a for a in attempts if a.fired and a.err]
    assert not problems, f"{what}: " + "; ".join(problems[:6]) + (f" (and {len(problems) - 6} more)" if len(problems) > 6 else "")
    # The sweep must have failed something, or it tested nothing.
    assert failed or any(a.fired for a in attempts), f"{what}: no allocation of the call could be failed"


def sweep_fd_call(make: Callable[[object], int], prepare: Callable[[], object], cleanup: Callable[[object], None],
                  reference: Shape, own_ns: int, limited: bool) -> tuple[list[fi.Attempt], list[str]]:
    """Sweep a call that returns a namespace fd; what went wrong, as lines."""
    problems: list[str] = []
    before = fds()

    def check(a: fi.Attempt, prepared: object) -> None:
        try:
            if a.err:
                if a.err == errno.ENOSPC and limited:
                    problems.append(f"allocation {a.n - 1} failed earlier left its max_mnt_namespaces charge "
                                    f"behind: attempt {a.n} got ENOSPC")
                elif a.err != errno.ENOMEM:
                    problems.append(f"allocation {a.n} failed: the call gave {k.errname(a.err)}, "
                                    "a conforming kernel ENOMEM")
                leaked = fds(prepared) - before
                if leaked:
                    problems.append(f"allocation {a.n} failed: the call still left fd(s) {sorted(leaked)} open")
            else:
                got = ns_shape(a.result)
                os.close(a.result)
                if got != reference:
                    why = f"with allocation {a.n} failed" if a.fired else "unharmed"
                    problems.append(f"the call succeeded {why} but its namespace holds {got}, "
                                    f"not {reference}")
            if k.own_mntns_id() != own_ns:
                problems.append(f"allocation {a.n} failed: the caller's own mount namespace changed")
        finally:
            cleanup(prepared)
    return fi.sweep(prepare, make, check), problems


def _tree() -> str:
    """A shared tmpfs holding two more tmpfs, one inside the other: a copy clones three mounts."""
    top = scratch_tmpfs()
    os.mkdir(f"{top}/a")
    k.mount("otns-a", f"{top}/a", "tmpfs", 0, "size=1m")
    os.mkdir(f"{top}/a/b")
    k.mount("otns-b", f"{top}/a/b", "tmpfs", k.MS_NOSUID, "size=1m")
    k.mount(None, top, None, k.MS_SHARED | k.MS_REC)
    return top


CALLERS = {
    # who calls, and how many mount namespaces its own user namespace already has (None: the
    # initial user namespace, whose limit is the machine's and is left alone)
    "root": None,
    "userns-owner": 1,
    "foreign": 0,
}


def _become(caller: str) -> str:
    """In a child: set up as the caller, with the source tree it may copy."""
    if caller == "root":
        private_mount_ns()
        return _tree()
    if caller == "userns-owner":
        enter_userns_and_mntns()
        k.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)
        return _tree()
    private_mount_ns()
    top = _tree()
    enter_userns()  # the mount namespace stays the initial user namespace's: the caller is foreign
    return top


@pytest.mark.rule("OT-NOMEM")
@pytest.mark.needs_feature("open_tree_namespace")
@pytest.mark.parametrize("caller", list(CALLERS))
def test_open_tree_namespace_gives_back_on_every_failed_allocation(caller: str) -> None:
    def child():
        src = _become(caller)
        usage = CALLERS[caller]
        if usage is not None:
            limit_to_one_more(usage)
        fd = k.open_tree(k.AT_FDCWD, src, OT)
        reference = ns_shape(fd)
        os.close(fd)
        attempts, problems = sweep_fd_call(lambda _: k.open_tree(k.AT_FDCWD, src, OT), lambda: None,
                                           lambda _: None, reference, k.own_mntns_id(), usage is not None)
        if usage is not None:  # every charge back: one namespace fits, and only one
            fd = k.open_tree(k.AT_FDCWD, src, OT)
            over = k.errno_of(k.open_tree, k.AT_FDCWD, src, OT)
            os.close(fd)
            if over != errno.ENOSPC:
                problems.append(f"max_mnt_namespaces stopped counting: a second namespace gave {k.errname(over)}")
        return attempts, problems, len(reference)
    attempts, problems, mounts = in_child(child)
    judge(attempts, problems, f"open_tree(OPEN_TREE_NAMESPACE) of {mounts} mounts as {caller}, "
                              f"{len(attempts) - 1} allocations failed in turn")


@pytest.mark.rule("FM-NOMEM")
@pytest.mark.needs_feature("fsmount_namespace")
@pytest.mark.parametrize("caller", ["root", "userns-owner"])
def test_fsmount_namespace_gives_back_on_every_failed_allocation(caller: str) -> None:
    def child():
        usage = CALLERS[caller]
        if caller == "root":
            private_mount_ns()
        else:
            enter_userns_and_mntns()
            limit_to_one_more(usage)
        fs = k.tmpfs_context()
        fd = k.fsmount(fs, FM, k.MOUNT_ATTR_NODEV)
        os.close(fs)
        reference = ns_shape(fd)
        os.close(fd)
        attempts, problems = sweep_fd_call(lambda ctx: k.fsmount(ctx, FM, k.MOUNT_ATTR_NODEV), k.tmpfs_context,
                                           os.close, reference, k.own_mntns_id(), usage is not None)
        return attempts, problems
    attempts, problems = in_child(child)
    judge(attempts, problems, f"fsmount(FSMOUNT_NAMESPACE) as {caller}, {len(attempts) - 1} allocations failed in turn")


@pytest.mark.rule("EM-NOMEM")
@pytest.mark.needs_feature("unshare_empty_mntns")
@pytest.mark.parametrize("caller", ["root", "userns-owner"])
def test_unshare_empty_mntns_gives_back_on_every_failed_allocation(caller: str) -> None:
    def child():
        usage = CALLERS[caller]
        if caller == "root":
            private_mount_ns()
        else:
            enter_userns_and_mntns()
            limit_to_one_more(usage)
        home = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        own = k.own_mntns_id()
        k.unshare(k.UNSHARE_EMPTY_MNTNS)
        reference = shape(0)
        k.setns(home, k.CLONE_NEWNS)
        problems: list[str] = []
        before = fds()

        def check(a: fi.Attempt, _: object) -> None:
            now = k.own_mntns_id()
            if a.err:
                if a.err == errno.ENOSPC:
                    problems.append(f"a failed allocation earlier left its max_mnt_namespaces charge behind: "
                                    f"attempt {a.n} got ENOSPC")
                elif a.err != errno.ENOMEM:
                    problems.append(f"allocation {a.n} failed: unshare gave {k.errname(a.err)}, a conforming "
                                    "kernel ENOMEM")
                if now != own:
                    problems.append(f"allocation {a.n} failed, yet the caller is in another mount namespace")
                leaked = fds() - before
                if leaked:
                    problems.append(f"allocation {a.n} failed: fd(s) {sorted(leaked)} appeared")
                return
            if now == own:
                problems.append(f"unshare succeeded (allocation {a.n}) but the caller stayed in its namespace")
            got = shape(0)
            k.setns(home, k.CLONE_NEWNS)
            if got != reference:
                why = f"with allocation {a.n} failed" if a.fired else "unharmed"
                problems.append(f"unshare succeeded {why} but the new namespace holds {got}, not {reference}")
        attempts = fi.sweep(lambda: None, lambda _: k.unshare(k.UNSHARE_EMPTY_MNTNS), check)
        return attempts, problems
    attempts, problems = in_child(child)
    judge(attempts, problems, f"unshare(UNSHARE_EMPTY_MNTNS) as {caller}, {len(attempts) - 1} allocations failed in turn")
