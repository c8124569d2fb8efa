"""Empty mount namespaces (Linux 7.1+): unshare(UNSHARE_EMPTY_MNTNS) and clone3(CLONE_EMPTY_MNTNS),
rule by rule (docs/semantics.md, EM-*), beyond what the upstream cases check.

copy_mnt_ns() with CLONE_EMPTY_MNTNS clones the namespace's root mount alone, resets the new
process's root and cwd to it, and locks it (lock_mnt_tree()) when the new namespace's owner is
not the old one's. Each test's assertion message starts with the rule it guards.
"""
from __future__ import annotations

import ctypes
import errno
import functools
import operator
import os
import select
import tempfile
import threading
import time

import pytest

from . import syscalls as k
from .helpers import become_nobody, drop_effective_caps, enter_userns, in_child, in_clone3, private_mount_ns, write_file

UNKNOWN_UNSHARE_BITS = [1 << b for b in range(64) if not (1 << b) & k.UNSHARE_KNOWN]
UNKNOWN_CLONE3_BITS = [1 << b for b in range(64) if not (1 << b) & k.CLONE3_KNOWN]

unshare_feature = pytest.mark.needs_feature("unshare_empty_mntns")
clone_feature = pytest.mark.needs_feature("clone_empty_mntns")


def in_empty(how: str, fn, extra: int = 0) -> object:
    """In a child: fn() run in a new empty mount namespace, made by unshare() here or by clone3 in a child."""
    if how == "clone3":
        return in_clone3(k.CLONE_EMPTY_MNTNS | extra, fn)
    k.unshare(k.UNSHARE_EMPTY_MNTNS | extra)
    return fn()


HOW = [pytest.param("unshare", marks=unshare_feature), pytest.param("clone3", marks=clone_feature)]


def view() -> dict:
    """What a process in an empty mount namespace sees of it."""
    ids = k.listmount()
    root = k.statmount(k.mnt_id_of("/"))
    return {"ids": ids, "root": root, "cwd_mnt": k.mnt_id_of("."), "entries": os.listdir("/"),
            "cwd": os.getcwd()}


# EM-FLAGS --------------------------------------------------------------------------------------

@pytest.mark.rule("EM-FLAGS")
def test_unshare_unknown_bits_are_einval() -> None:
    """Every bit outside check_unshare_flags()'s list, of all 64 (CLONE_EMPTY_MNTNS's bit 37 is
    clone3's only: unshare() spells it UNSHARE_EMPTY_MNTNS). Holds on any kernel."""
    def child():
        enter_userns()
        return {f"{b:#x}": k.errno_of(k.unshare, b) for b in UNKNOWN_UNSHARE_BITS}
    got = in_child(child)
    wrong = {b: k.errname(e) for b, e in got.items() if e != errno.EINVAL}
    assert not wrong, f"EM-FLAGS: unshare with flag bits it does not know gave {wrong}, expected EINVAL"


@pytest.mark.rule("EM-FLAGS")
def test_clone3_unknown_bits_are_einval_even_with_empty_mntns() -> None:
    """Bits 38-63, each with CLONE_EMPTY_MNTNS (on a kernel without it bit 37 is unknown too)."""
    def child():
        enter_userns()
        return {f"{b:#x}": k.errno_of(lambda b=b: in_clone3(b | k.CLONE_EMPTY_MNTNS, lambda: None))
                for b in UNKNOWN_CLONE3_BITS}
    got = in_child(child)
    wrong = {b: k.errname(e) for b, e in got.items() if e != errno.EINVAL}
    assert not wrong, f"EM-FLAGS: clone3 with unknown flag bits gave {wrong}, expected EINVAL"


@pytest.mark.rule("EM-FLAGS")
def test_clone3_parent_settid_bit_is_not_empty_mntns() -> None:
    """UNSHARE_EMPTY_MNTNS reuses CLONE_PARENT_SETTID's bit for unshare() only: to clone3 that bit
    keeps its old meaning, so CLONE_NEWNS with it still copies every mount. Holds on any kernel."""
    def child():
        enter_userns()
        return len(k.listmount()), in_clone3(k.CLONE_NEWNS | k.UNSHARE_EMPTY_MNTNS, lambda: len(k.listmount()))
    before, inside = in_child(child)
    assert inside == before > 1, (f"EM-FLAGS: clone3(CLONE_NEWNS | CLONE_PARENT_SETTID) gave a namespace of {inside} "
                                  f"mounts from one of {before}; only CLONE_EMPTY_MNTNS (bit 37) empties it")


# EM-CAP ----------------------------------------------------------------------------------------

CLONE_INTO_CGROUP = 0x200000000


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLONE_ARGS_SIZE_VER0 = 64  # the first struct clone_args: flags to tls
CLONE_ARGS_SIZE_VER2 = 88  # with cgroup, the last field


def _clone3_errno(size: int | None = None, tail: int = 0, **fields: int) -> int:
    """The errno of clone3(CLONE_EMPTY_MNTNS, these other fields), in a child (0: it made a
    process, which exits at once). size: the size passed (default the struct's own); the struct
    lies at the start of two zeroed pages, so a larger size reads zeros, except tail: the last
    byte of the first page."""
    def child() -> int:
        args = k._CloneArgs(**{"flags": k.CLONE_EMPTY_MNTNS, "exit_signal": 17, **fields})
        buf = ctypes.create_string_buffer(2 * PAGE_SIZE)
        ctypes.memmove(buf, ctypes.byref(args), ctypes.sizeof(args))
        ctypes.memset(ctypes.addressof(buf) + PAGE_SIZE - 1, tail, 1)
        ret = k.libc.syscall(k.NR_CLONE3, buf, ctypes.c_size_t(ctypes.sizeof(args) if size is None else size))
        if ret == 0:
            os._exit(0)
        if ret < 0:
            return ctypes.get_errno()
        os.waitpid(ret, 0)
        return 0
    return in_child(child)


@pytest.mark.rule("EM-FLAGS")
@clone_feature
def test_clone3_checks_its_arguments_before_the_empty_namespace() -> None:
    # clone3's own argument checks stand with CLONE_EMPTY_MNTNS as without it: a cgroup fd past
    # INT_MAX is EINVAL (not looked up as an fd), a set_tid array clone3 cannot read is EFAULT.
    cgroup = _clone3_errno(flags=k.CLONE_EMPTY_MNTNS | CLONE_INTO_CGROUP, cgroup=1 << 31)
    set_tid = _clone3_errno(set_tid=8, set_tid_size=1)

    def into_a_real_cgroup() -> int:  # the control: a cgroup fd that exists is taken
        private_mount_ns()
        where = tempfile.mkdtemp(prefix="otns-cg-")
        k.mount("cgroup2", where, "cgroup2")
        return _clone3_errno(flags=k.CLONE_EMPTY_MNTNS | CLONE_INTO_CGROUP, cgroup=os.open(where, os.O_RDONLY))
    real = in_child(into_a_real_cgroup)
    assert real == 0, (f"EM-FLAGS: clone3(CLONE_EMPTY_MNTNS|CLONE_INTO_CGROUP) into the root cgroup gave "
                       f"{k.errname(real)}; a conforming kernel makes the process there")
    assert cgroup == errno.EINVAL, (f"EM-FLAGS: clone3(CLONE_EMPTY_MNTNS|CLONE_INTO_CGROUP) with cgroup 2^31 gave "
                                    f"{k.errname(cgroup)}; a conforming kernel refuses the argument (EINVAL)")
    assert set_tid == errno.EFAULT, (f"EM-FLAGS: clone3(CLONE_EMPTY_MNTNS) with an unreadable set_tid array gave "
                                     f"{k.errname(set_tid)}; a conforming kernel EFAULT")


@pytest.mark.rule("EM-FLAGS")
@clone_feature
def test_clone3_reads_its_struct_as_before_beside_the_empty_namespace() -> None:
    """copy_clone_args_from_user()'s checks, each with CLONE_EMPTY_MNTNS: the struct's size (over a
    page E2BIG, under the first version's 64 bytes EINVAL, a page whose tail past the struct is
    not zero E2BIG), set_tid (more than MAX_PID_NS_LEVEL entries, a size without an array, an
    array without a size: EINVAL), exit_signal past CSIGNAL and CLONE_INTO_CGROUP in a struct too
    short to hold the cgroup: EINVAL. A page with a zero tail is taken (the control)."""
    tids = (ctypes.c_int * 64)()
    cases: dict[str, tuple[dict[str, int], int]] = {
        "a struct of a page, zero past its fields": ({"size": PAGE_SIZE}, 0),
        "a struct of a page and a byte": ({"size": PAGE_SIZE + 1}, errno.E2BIG),
        "a struct of a page, not zero past its fields": ({"size": PAGE_SIZE, "tail": 1}, errno.E2BIG),
        "a struct of 63 bytes": ({"size": CLONE_ARGS_SIZE_VER0 - 1}, errno.EINVAL),
        "a struct of 0 bytes": ({"size": 0}, errno.EINVAL),
        "33 set_tid entries": ({"set_tid": ctypes.addressof(tids), "set_tid_size": 33}, errno.EINVAL),
        "set_tid_size 1 without an array": ({"set_tid_size": 1}, errno.EINVAL),
        "a set_tid array of size 0": ({"set_tid": ctypes.addressof(tids)}, errno.EINVAL),
        "exit_signal 2^32": ({"exit_signal": 1 << 32}, errno.EINVAL),
        "CLONE_INTO_CGROUP in a struct without the cgroup field": (
            {"flags": k.CLONE_EMPTY_MNTNS | CLONE_INTO_CGROUP, "size": CLONE_ARGS_SIZE_VER2 - 8}, errno.EINVAL),
    }
    got = {what: _clone3_errno(**args) for what, (args, _) in cases.items()}
    wrong = {what: f"{k.errname(got[what])}, expected {k.errname(e)}" for what, (_, e) in cases.items() if got[what] != e}
    assert not wrong, f"EM-FLAGS: clone3(CLONE_EMPTY_MNTNS) with {wrong}"


CLONE_AUTOREAP, CLONE_NNP, CLONE_PIDFD_AUTOKILL, CLONE_CLEAR_SIGHAND = 1 << 34, 1 << 35, 1 << 36, 1 << 32
PR_GET_NO_NEW_PRIVS = 39
# clone3's flags past the legacy ones, each as a caller would pass it (AUTOKILL needs a pidfd and
# auto-reaping), beside CLONE_EMPTY_MNTNS. Bits 34-36 were given out before CLONE_EMPTY_MNTNS took
# bit 37, so every kernel with CLONE_EMPTY_MNTNS knows them.
CLONE3_NEIGHBOURS = {
    "CLONE_CLEAR_SIGHAND": CLONE_CLEAR_SIGHAND,
    "CLONE_AUTOREAP": CLONE_AUTOREAP,
    "CLONE_NNP": CLONE_NNP,
    "CLONE_PIDFD|CLONE_AUTOREAP|CLONE_PIDFD_AUTOKILL": k.CLONE_PIDFD | CLONE_AUTOREAP | CLONE_PIDFD_AUTOKILL,
}


def _clone3_empty_with(flags: int) -> tuple[int, str]:
    """In a child: clone3(CLONE_EMPTY_MNTNS | flags); (errno, what the new process saw: its
    mount count and its no_new_privs). An auto-reaped process has exit_signal 0, as the call asks."""
    def child() -> tuple[int, str]:
        r, w = os.pipe()
        pidfd = ctypes.c_int(-1)
        args = k._CloneArgs(flags=k.CLONE_EMPTY_MNTNS | flags, exit_signal=0 if flags & CLONE_AUTOREAP else 17,
                            pidfd=ctypes.addressof(pidfd) if flags & k.CLONE_PIDFD else 0)
        ret = k.libc.syscall(k.NR_CLONE3, ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
        if ret == 0:
            try:
                os.write(w, f"{len(k.listmount())} mounts, no_new_privs {k.libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)}"
                         .encode())
            finally:
                os._exit(0)
        if ret < 0:
            return ctypes.get_errno(), ""
        os.close(w)
        seen = b""
        while select.select([r], [], [], 10)[0]:
            chunk = os.read(r, 256)
            if not chunk:
                break
            seen += chunk
        if not flags & CLONE_AUTOREAP:
            os.waitpid(ret, 0)
        return 0, seen.decode()
    return in_child(child)


@pytest.mark.rule("EM-FLAGS")
@clone_feature
def test_clone3_takes_its_other_flags_beside_the_empty_namespace() -> None:
    """clone3_args_valid() lists CLONE_EMPTY_MNTNS among clone3's own flags: each of the others
    still makes its process, in an empty namespace, with the flag's effect (no_new_privs)."""
    got = {name: _clone3_empty_with(flags) for name, flags in CLONE3_NEIGHBOURS.items()}
    wrong = {name: k.errname(e) for name, (e, _) in got.items() if e}
    assert not wrong, (f"EM-FLAGS: clone3(CLONE_EMPTY_MNTNS | flag) gave {wrong}; a conforming kernel makes the "
                       f"process (these flags are clone3's own, as CLONE_EMPTY_MNTNS is)")
    for name, (_, seen) in got.items():
        nnp = 1 if "CLONE_NNP" in name else 0
        assert seen == f"1 mounts, no_new_privs {nnp}", (
            f"EM-FLAGS: the process clone3(CLONE_EMPTY_MNTNS | {name}) made saw {seen or 'nothing'!r}; expected "
            f"its empty namespace's root alone and no_new_privs {nnp}")


NOTHING_TO_UNSHARE = {"CLONE_THREAD": k.CLONE_THREAD, "CLONE_SIGHAND": k.CLONE_SIGHAND, "CLONE_VM": k.CLONE_VM}


def _with_a_second_thread(fn):
    """fn() while a second thread of this process lives (blocked until fn returns)."""
    done = threading.Event()
    t = threading.Thread(target=done.wait, daemon=True)
    t.start()
    try:
        return fn()
    finally:
        done.set()
        t.join()
        # join() returns before the kernel's thread is gone: wait for it, so that what runs next
        # runs in a single-threaded process again.
        deadline = time.monotonic() + 5
        while len(os.listdir("/proc/self/task")) > 1 and time.monotonic() < deadline:
            time.sleep(0.001)


def _unshare_each() -> dict[str, int]:
    return {name: k.errno_of(k.unshare, flag) for name, flag in NOTHING_TO_UNSHARE.items()}


@pytest.mark.rule("EM-FLAGS")
def test_unshare_lets_through_what_there_is_nothing_to_unshare() -> None:
    """check_unshare_flags(), where UNSHARE_EMPTY_MNTNS is listed, also decides CLONE_THREAD,
    CLONE_SIGHAND and CLONE_VM: not implemented, so accepted when the caller shares nothing
    (one thread, its own signal handlers and memory) and EINVAL when it has a second thread.
    Holds on any kernel."""
    alone, threaded = in_child(lambda: (_unshare_each(), _with_a_second_thread(_unshare_each)))
    wrong = {n: k.errname(e) for n, e in alone.items() if e != 0}
    assert not wrong, (f"EM-FLAGS: unshare by a single-threaded process of what it shares with nobody gave {wrong}; "
                       f"a conforming kernel accepts it (nothing to unshare)")
    wrong = {n: k.errname(e) for n, e in threaded.items() if e != errno.EINVAL}
    assert not wrong, f"EM-FLAGS: unshare by a process with a second thread gave {wrong}, expected EINVAL"


@pytest.mark.rule("EM-FLAGS")
@unshare_feature
def test_unshare_empty_mntns_beside_what_there_is_nothing_to_unshare() -> None:
    """UNSHARE_EMPTY_MNTNS with CLONE_THREAD, CLONE_SIGHAND or CLONE_VM: a single-threaded caller
    gets its empty namespace; one with a second thread is refused (EINVAL) before anything is
    made, though UNSHARE_EMPTY_MNTNS alone is allowed it (EM-THREAD), and keeps its namespace."""
    def child(flag: int) -> dict[str, int | None]:
        enter_userns()  # before the thread: a multi-threaded process cannot make a user namespace
        got: dict[str, int | None] = {"before": len(k.listmount())}
        got["refused"] = _with_a_second_thread(lambda: k.errno_of(k.unshare, k.UNSHARE_EMPTY_MNTNS | flag))
        got["after_refusal"] = len(k.listmount())
        got["made"] = k.errno_of(k.unshare, k.UNSHARE_EMPTY_MNTNS | flag)
        got["mounts"] = len(k.listmount()) if got["made"] == 0 else None
        return got
    for name, flag in NOTHING_TO_UNSHARE.items():
        got = in_child(lambda flag=flag: child(flag))
        assert got["refused"] == errno.EINVAL, (f"EM-FLAGS: unshare(UNSHARE_EMPTY_MNTNS|{name}) by a process with a "
                                                f"second thread gave {k.errname(got['refused'])}, expected EINVAL")
        assert got["after_refusal"] == got["before"], (
            f"EM-FLAGS: the refused unshare(UNSHARE_EMPTY_MNTNS|{name}) left {got['after_refusal']} mounts of "
            f"{got['before']}; a refused call changes nothing")
        assert got["made"] == 0 and got["mounts"] == 1, (
            f"EM-FLAGS: unshare(UNSHARE_EMPTY_MNTNS|{name}) by a single-threaded process gave "
            f"{k.errname(got['made'])} and {got['mounts']} mounts; a conforming kernel makes the empty namespace "
            f"(its root alone)")


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("drop", [become_nobody, drop_effective_caps], ids=["nobody", "root_without_caps"])
@pytest.mark.rule("EM-CAP")
def test_without_cap_sys_admin_is_eperm(how: str, drop) -> None:
    def child():
        drop()
        return k.errno_of(lambda: in_empty(how, lambda: None))
    got = in_child(child)
    assert got == errno.EPERM, f"EM-CAP: {how} of an empty mount namespace without CAP_SYS_ADMIN gave {k.errname(got)}"


# EM-UNWIND -------------------------------------------------------------------------------------

# The namespaces unshare() makes after the mount namespace, in create_new_namespaces()' order,
# each with its /proc/sys/user limit's name.
LATER_NAMESPACES = {"uts": k.CLONE_NEWUTS, "ipc": k.CLONE_NEWIPC, "pid": k.CLONE_NEWPID,
                    "cgroup": k.CLONE_NEWCGROUP, "net": k.CLONE_NEWNET, "time": k.CLONE_NEWTIME}
MNT_FLAG = {"empty": k.UNSHARE_EMPTY_MNTNS, "copy": k.CLONE_NEWNS}


def _set_limit(kind: str, n: int) -> None:
    write_file(f"/proc/sys/user/max_{kind}_namespaces", str(n))


def _ns_ids() -> dict[str, int]:
    return {kind: os.stat(f"/proc/self/ns/{kind}").st_ino for kind in ("mnt", *LATER_NAMESPACES)}


@pytest.mark.parametrize("mnt", [pytest.param("empty", marks=unshare_feature), "copy"])
@pytest.mark.rule("EM-UNWIND")
def test_unshare_gives_back_what_it_made_when_a_later_namespace_fails(mnt: str) -> None:
    """In a user namespace allowed one namespace of each type, unshare() of a mount namespace and
    all six others fails in turn at each later type (its limit set to 0): ENOSPC, the caller's
    namespaces unchanged. Then every charge must be back: the whole set can be made (net and ipc
    namespaces are freed by a work queue, so that is waited for). A namespace kept by a failed
    call holds its charge, and the type it belongs to is named."""
    kinds = {kind: flag for kind, flag in LATER_NAMESPACES.items() if os.path.exists(f"/proc/self/ns/{kind}")}
    every = MNT_FLAG[mnt] | functools.reduce(operator.or_, kinds.values(), 0)

    def child() -> dict[str, object]:
        enter_userns()
        for kind in ("mnt", *kinds):
            _set_limit(kind, 1)
        before = _ns_ids()
        failed, moved = {}, {}
        for kind in kinds:
            _set_limit(kind, 0)
            failed[kind] = k.errno_of(k.unshare, every)
            _set_limit(kind, 1)
            if (now := _ns_ids()) != before:
                moved[kind] = now
        deadline = time.monotonic() + 10
        while (last := k.errno_of(k.unshare, every)) == errno.ENOSPC and time.monotonic() < deadline:
            time.sleep(0.05)
        held = []
        if last == errno.ENOSPC:  # which charge was kept: each type alone, in a child of its own
            held = [kind for kind, flag in {"mnt": MNT_FLAG[mnt], **kinds}.items()
                    if in_child(lambda flag=flag: k.errno_of(k.unshare, flag)) == errno.ENOSPC]
        return {"failed": failed, "moved": moved, "last": last, "held": held}
    got = in_child(child)
    wrong = {kind: k.errname(e) for kind, e in got["failed"].items() if e != errno.ENOSPC}
    assert not wrong, (f"EM-UNWIND: unshare({mnt} mount namespace and {sorted(kinds)}) with that type's limit at 0 "
                       f"gave {wrong}; a conforming kernel fails with ENOSPC")
    assert not got["moved"], (f"EM-UNWIND: a failed unshare({mnt} mount namespace and the others) moved the caller: "
                              f"{got['moved']}")
    assert got["last"] == 0, (f"EM-UNWIND: after the failed calls, unshare of the whole set gave "
                              f"{k.errname(got['last'])} for 10 s: a failed call kept the charge of its {got['held']} "
                              f"namespace (a conforming kernel gives back every namespace it made)")


# EM-ONLY-ROOT ----------------------------------------------------------------------------------

@pytest.mark.parametrize("how", HOW)
@pytest.mark.rule("EM-ONLY-ROOT")
def test_privileged_caller_gets_a_copy_of_the_root_mount_alone(how: str) -> None:
    """Root of the initial user namespace (no user namespace involved), with mounts of its own."""
    def child():
        private_mount_ns()
        tempdir = tempfile.mkdtemp(prefix="otns-em-")
        k.mount("otns", tempdir, "tmpfs", 0, "size=1m")
        old_root = k.listmount()[0]
        return old_root, in_empty(how, view)
    old_root, v = in_child(child)
    root = v["root"]
    assert v["ids"] == [root.mnt_id], f"EM-ONLY-ROOT: {how}: listmount shows {v['ids']}, expected the root alone"
    assert (root.fs_type, root.point, root.parent_id) == ("nullfs", "/", root.mnt_id), (
        f"EM-ONLY-ROOT: {how}: the root mount is {root}; expected nullfs at /, its own parent")
    assert root.mnt_id != old_root, f"EM-ONLY-ROOT: {how}: the new namespace shares the old root mount"
    assert v["entries"] == [], f"EM-ONLY-ROOT: {how}: / holds {v['entries']}"


# EM-CWD ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", HOW)
@pytest.mark.rule("EM-CWD", "EM-OTHERS")
def test_root_and_cwd_reset_after_chroot(how: str) -> None:
    """A chrooted caller with its cwd elsewhere: both end on the new root mount."""
    def child():
        enter_userns()
        private_mount_ns()
        jail = tempfile.mkdtemp(prefix="otns-em-")
        k.mount("otns", jail, "tmpfs", 0, "size=1m")
        os.mkdir(f"{jail}/in")
        os.mkdir(f"{jail}/elsewhere")
        os.chdir(f"{jail}/elsewhere")
        os.chroot(f"{jail}/in")
        def where():  # getcwd() fails here: the cwd is outside the root
            return k.mnt_id_of("."), os.stat(".").st_ino, os.stat("/").st_ino
        before = where()
        return before, in_empty(how, view), where()
    before, v, after = in_child(child)
    assert v["cwd_mnt"] == v["root"].mnt_id and v["cwd"] == "/", (
        f"EM-CWD: {how}: cwd {v['cwd']!r} on mount {v['cwd_mnt']}, root mount {v['root'].mnt_id}")
    assert v["root"].fs_type == "nullfs" and v["entries"] == [], (
        f"EM-CWD: {how}: after a chroot, / is {v['root'].fs_type} holding {v['entries']}; expected the empty root")
    if how == "clone3":
        assert after == before, f"EM-OTHERS: the parent's cwd or root moved (mount, cwd, root: {before} -> {after})"


@pytest.mark.rule("EM-COUNT")
@unshare_feature
def test_ns_mnt_get_info_counts_what_is_mounted_in_an_empty_namespace() -> None:
    # NS_MNT_GET_INFO leaves out the namespace's root: an empty namespace counts 0, and each
    # mount made in it one more (listmount shows the root too).
    def child():
        proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY)
        k.unshare(k.UNSHARE_EMPTY_MNTNS)
        fd = os.open("self/ns/mnt", os.O_RDONLY, dir_fd=proc)
        counts = [(k.mnt_ns_nr_mounts(fd), len(k.listmount(k.mntns_id(fd))))]
        k.mount("otns", "/", "tmpfs", 0, "size=1m")
        counts.append((k.mnt_ns_nr_mounts(fd), len(k.listmount(k.mntns_id(fd)))))
        return counts
    counts = in_child(child)
    assert counts == [(0, 1), (1, 2)], (
        f"EM-COUNT: (NS_MNT_GET_INFO's count, listmount's) in a new empty namespace, then after one mount in "
        f"it: {counts}; a conforming kernel gives [(0, 1), (1, 2)] (the root is not counted)")


@pytest.mark.rule("EM-OLD-ROOT-FREE")
@pytest.mark.parametrize("how", HOW)
def test_the_old_root_and_cwd_are_let_go(how: str) -> None:
    # The caller's old root and cwd lie on a tmpfs mount; once the process that moved to an empty
    # namespace has exited, nothing may hold that mount: a plain umount succeeds (EBUSY would be
    # a reference the move kept).
    def child():
        private_mount_ns()
        jail = tempfile.mkdtemp(prefix="otns-em-")
        k.mount("otns", jail, "tmpfs", 0, "size=1m")
        os.mkdir(f"{jail}/in")

        def mover() -> None:
            os.chdir(jail)
            os.chroot(f"{jail}/in")
            in_empty(how, lambda: None)
        in_child(mover)
        return k.errno_of(k.umount2, jail, 0)
    got = in_child(child)
    assert got == 0, (f"EM-OLD-ROOT-FREE: {how}: unmounting the mount that held the mover's old root and cwd gave "
                      f"{k.errname(got)}; a conforming kernel holds no reference to it once the mover exited")


@pytest.mark.rule("EM-CLASSIC-CWD")
def test_unshare_moves_the_cwd_to_its_copy() -> None:
    # The classic construction the empty namespace replaces: unshare(CLONE_NEWNS) moves the
    # caller's cwd to the copy of the mount it was on, in the new namespace.
    def child():
        private_mount_ns()
        t = tempfile.mkdtemp(prefix="otns-cwd-")
        k.mount("otns", t, "tmpfs", 0, "size=1m")
        for sub in ("a", "b"):
            os.mkdir(f"{t}/{sub}")
            k.mount("otns-sub", f"{t}/{sub}", "tmpfs", 0, "size=1m")
        os.chdir(f"{t}/a")
        k.unshare(k.CLONE_NEWNS)
        ours = {m.mnt_id for m in k.mounts_of(k.own_mntns_id())}
        return k.mnt_id_of("."), k.mnt_id_of(f"{t}/a"), k.mnt_id_of(".") in ours
    cwd, copy, in_new = in_child(child)
    assert in_new and cwd == copy, (
        f"EM-CLASSIC-CWD: after unshare(CLONE_NEWNS) the cwd is on mount {cwd} "
        f"({'in' if in_new else 'not in'} the new namespace); a conforming kernel moves it to the copy {copy}")


# EM-OTHERS -------------------------------------------------------------------------------------

@unshare_feature
@pytest.mark.rule("EM-OTHERS")
def test_unshare_leaves_the_old_namespace_as_it_was() -> None:
    def child():
        enter_userns()
        private_mount_ns()
        old = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        old_id = k.mntns_id(old)
        before = [(m.mnt_id, m.point) for m in k.mounts_of(old_id)]
        k.unshare(k.UNSHARE_EMPTY_MNTNS)
        return before, [(m.mnt_id, m.point) for m in k.mounts_of(old_id)], k.own_mntns_id() != old_id
    before, after, moved = in_child(child)
    assert moved, "EM-OTHERS: unshare(UNSHARE_EMPTY_MNTNS) left the caller in its old namespace"
    assert after == before, "EM-OTHERS: the caller's old namespace changed when it left for an empty one"


# EM-USERNS -------------------------------------------------------------------------------------

def try_to_change_atime() -> tuple[int, int]:
    """In an empty namespace: (mount count, errno of changing the root mount's atime setting)."""
    root = k.statmount(k.mnt_id_of("/"))
    current = root.attr & k.MOUNT_ATTR__ATIME
    other = k.MOUNT_ATTR_STRICTATIME if current == k.MOUNT_ATTR_NOATIME else k.MOUNT_ATTR_NOATIME
    return len(k.listmount()), k.errno_of(k.mount_setattr, k.AT_FDCWD, "/", 0, other, k.MOUNT_ATTR__ATIME)


LOCKING = {  # how the new namespace comes to be owned by another user namespace than the old one
    "unshare_newuser_same_call": (unshare_feature, lambda: in_empty("unshare", try_to_change_atime, k.CLONE_NEWUSER)),
    "clone3_newuser_same_call": (clone_feature, lambda: in_empty("clone3", try_to_change_atime, k.CLONE_NEWUSER)),
    "unshare_after_userns": (unshare_feature, lambda: (enter_userns(), in_empty("unshare", try_to_change_atime))[1]),
}


@pytest.mark.parametrize("make", [pytest.param(f, marks=m, id=i) for i, (m, f) in LOCKING.items()])
@pytest.mark.rule("EM-USERNS")
def test_new_owner_locks_the_root_mount(make) -> None:
    count, got = in_child(make)
    assert count == 1, f"EM-USERNS: the empty namespace shows {count} mounts"
    assert got == errno.EPERM, (f"EM-USERNS: changing the atime setting of the root of an empty namespace owned by "
                                f"a new user namespace gave {k.errname(got)}; its flags are locked (EPERM)")


@pytest.mark.parametrize("how", HOW)
@pytest.mark.rule("EM-USERNS")
def test_same_owner_leaves_the_root_mount_unlocked(how: str) -> None:
    count, got = in_child(lambda: in_empty(how, try_to_change_atime))
    assert (count, got) == (1, 0), (f"EM-USERNS: root's own empty namespace: {count} mounts, changing the root's "
                                    f"atime gave {k.errname(got)}; nothing is locked without a new owner")


# EM-COMPOSE ------------------------------------------------------------------------------------

@clone_feature
@pytest.mark.rule("EM-COMPOSE")
def test_pid_namespace_pidfd_and_setns_together() -> None:
    """clone3(CLONE_EMPTY_MNTNS | CLONE_NEWPID | CLONE_PIDFD); the parent enters the child's empty
    namespace through the pidfd and mounts a tmpfs on its root; the child sees that mount: one namespace, shared."""
    def child():
        enter_userns()
        ready_r, ready_w = os.pipe()
        done_r, done_w = os.pipe()
        pid, pidfd = k.clone3_pidfd(k.CLONE_EMPTY_MNTNS | k.CLONE_NEWPID)
        if pid == 0:
            os.close(ready_r)
            os.close(done_w)
            os.write(ready_w, bytes([len(k.listmount()), os.getpid()]))
            os.read(done_r, 1)  # EOF once the parent has mounted (or is gone)
            os._exit(len(k.listmount()))
        os.close(ready_w)
        os.close(done_r)
        try:
            seen = os.read(ready_r, 2)
            k.setns(pidfd, k.CLONE_NEWNS)  # a pidfd names the process's namespaces to setns()
            mnt = k.fsmount(k.tmpfs_context(), k.FSMOUNT_CLOEXEC)  # we own this namespace: fsopen works
            k.move_mount(mnt, "", k.AT_FDCWD, "/", k.MOVE_MOUNT_F_EMPTY_PATH)
        finally:
            os.close(done_w)
        status = os.waitid(os.P_PIDFD, pidfd, os.WEXITED).si_status
        return list(seen), status
    seen, status = in_child(child)
    assert seen == [1, 1], f"EM-COMPOSE: the child saw {seen[:1]} mounts and had pid {seen[1:]}; expected 1 and 1"
    assert status == 2, (f"EM-COMPOSE: after the parent's setns and mount, the child's namespace shows {status} "
                         "mounts; expected 2 (the same namespace)")
