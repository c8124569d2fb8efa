"""fsmount(FSMOUNT_NAMESPACE) (Linux 7.1+), rule by rule (docs/semantics.md, FM-*).

FSMOUNT_NAMESPACE takes its own branch of create_new_namespace() (MOUNT_COPY_NEW): the fresh
mount is cloned onto a copy of the caller's namespace root, not copied from a tree, and the call
has its own flag check, privilege check, close-on-exec handling and locking. Each test's
assertion message starts with the rule it guards.
"""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import pytest

from . import syscalls as k
from .helpers import (
    become_nobody,
    drop_effective_caps,
    enter_userns,
    fsmount_errno_in_child,
    fsmount_fd,
    in_child,
    pivot_into_tmpfs,
    private_mount_ns,
    wait_child,
    write_file,
)

NS = k.FSMOUNT_NAMESPACE | k.FSMOUNT_CLOEXEC
UNKNOWN_FLAG_BITS = [1 << b for b in range(32) if not (1 << b) & k.FSMOUNT_KNOWN]
UNKNOWN_ATTR_BITS = [1 << b for b in range(32) if not (1 << b) & k.FSMOUNT_VALID_ATTR]
BAD_ATIME = [v for v in range(0, k.MOUNT_ATTR__ATIME + 1, 0x10)
             if v not in (k.MOUNT_ATTR_RELATIME, k.MOUNT_ATTR_NOATIME, k.MOUNT_ATTR_STRICTATIME)]

needs_fsmount_ns = pytest.mark.needs_feature("fsmount_namespace")


def names(errs: dict) -> dict:
    return {key: k.errname(e) for key, e in errs.items()}


def mountinfo_inside(ns_fd: int) -> list[list[str]]:
    """/proc/PID/mountinfo (split lines) of a child that has entered the namespace, read from outside."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            k.setns(ns_fd, k.CLONE_NEWNS)
            os.write(ready_w, b"y")
            os.read(done_r, 1)  # until the parent closes its end: it has read our mountinfo
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(done_r)
    try:
        entered = os.read(ready_r, 1) == b"y"  # EOF if the child died first: no wait forever
        text = Path(f"/proc/{pid}/mountinfo").read_text() if entered else ""
    finally:
        os.close(ready_r)
        os.close(done_w)
        wait_child(pid)
    assert entered, "setns into the fsmount namespace failed"
    return [line.split() for line in text.splitlines()]


# FM-FLAGS-UNKNOWN ------------------------------------------------------------------------------

@pytest.mark.rule("FM-FLAGS-UNKNOWN")
def test_unknown_flag_bits_are_einval() -> None:
    """Every bit outside fsmount()'s own list (FSMOUNT_CLOEXEC, FSMOUNT_NAMESPACE), alone and with
    FSMOUNT_NAMESPACE. Holds on any kernel: before 7.1 FSMOUNT_NAMESPACE is itself unknown."""
    fs = k.tmpfs_context()
    try:
        got = {f"{bit | extra:#x}": k.errno_of(k.fsmount, fs, bit | extra, 0)
               for bit in UNKNOWN_FLAG_BITS for extra in (0, k.FSMOUNT_NAMESPACE)}
        # the flag check comes first: the refused calls left the context unused
        after = k.errno_of(k.fsmount, fs, k.FSMOUNT_CLOEXEC, 0)
    finally:
        os.close(fs)
    wrong = {f: e for f, e in got.items() if e != errno.EINVAL}
    assert not wrong, f"FM-FLAGS-UNKNOWN: unknown fsmount flag bits gave {names(wrong)}, expected EINVAL"
    assert after == 0, (f"FM-FLAGS-UNKNOWN: after the refused calls the context could not be mounted "
                        f"({k.errname(after)}): an unknown flag must be refused before the context is used")


@needs_fsmount_ns
@pytest.mark.rule("FM-FLAGS-UNKNOWN", "FM-CAP", "FM-ATTR")
def test_error_order() -> None:
    """Flags, then privilege, then attributes, then the context fd (fsmount() in fs/namespace.c)."""
    def unprivileged():
        become_nobody()
        return {"unknown flag": k.errno_of(k.fsmount, -1, NS | 0x4, 0x40),
                "no CAP_SYS_ADMIN, bad attr": k.errno_of(k.fsmount, -1, NS, 0x40),
                "no CAP_SYS_ADMIN, bad fd": k.errno_of(k.fsmount, -1, NS, 0)}
    got = in_child(unprivileged)
    with open("/proc/self/stat", "rb") as not_a_context:
        got |= {"bad attr, bad fd": k.errno_of(k.fsmount, -1, NS, 0x40),
                "bad fd": k.errno_of(k.fsmount, -1, NS, 0),
                "not a context": k.errno_of(k.fsmount, not_a_context.fileno(), NS, 0)}
    want = {"unknown flag": errno.EINVAL, "no CAP_SYS_ADMIN, bad attr": errno.EPERM,
            "no CAP_SYS_ADMIN, bad fd": errno.EPERM, "bad attr, bad fd": errno.EINVAL,
            "bad fd": errno.EBADF, "not a context": errno.EINVAL}
    assert got == want, (f"FM-FLAGS-UNKNOWN/FM-CAP/FM-ATTR: fsmount's checks come in that order, then the "
                         f"fd; got {names(got)}, expected {names(want)}")


# FM-CAP ----------------------------------------------------------------------------------------

@needs_fsmount_ns
@pytest.mark.parametrize("drop", [become_nobody, drop_effective_caps], ids=["nobody", "root_without_caps"])
@pytest.mark.rule("FM-CAP")
def test_without_cap_sys_admin_is_eperm(drop) -> None:
    got = fsmount_errno_in_child(drop, NS)
    assert got == errno.EPERM, (f"FM-CAP: fsmount(FSMOUNT_NAMESPACE) without CAP_SYS_ADMIN gave "
                                f"{k.errname(got)}, expected EPERM")


@needs_fsmount_ns
@pytest.mark.rule("FM-CAP")
def test_capability_in_the_current_user_namespace_suffices() -> None:
    """A foreign caller (root of a new user namespace only) lacks privilege over its mount
    namespace, so a plain fsmount() is EPERM; FSMOUNT_NAMESPACE only asks for CAP_SYS_ADMIN in the
    caller's own user namespace, which it has."""
    def child():
        plain, with_ns = k.tmpfs_context(), k.tmpfs_context()
        enter_userns()
        return k.errno_of(k.fsmount, plain, k.FSMOUNT_CLOEXEC, 0), k.errno_of(k.fsmount, with_ns, NS, 0)
    plain, with_ns = in_child(child)
    assert plain == errno.EPERM, f"a foreign caller's plain fsmount() gave {k.errname(plain)}, expected EPERM"
    assert with_ns == 0, (f"FM-CAP: a foreign caller with CAP_SYS_ADMIN in its own user namespace got "
                          f"{k.errname(with_ns)} from fsmount(FSMOUNT_NAMESPACE); it is allowed")


# FM-ATTR ---------------------------------------------------------------------------------------

@needs_fsmount_ns
@pytest.mark.rule("FM-ATTR")
def test_unknown_attribute_bits_and_bad_atime_are_einval() -> None:
    fs = k.tmpfs_context()
    try:
        got = {f"{a:#x}": k.errno_of(k.fsmount, fs, NS, a) for a in UNKNOWN_ATTR_BITS + BAD_ATIME}
        after = k.errno_of(k.fsmount, fs, NS, 0)
    finally:
        os.close(fs)
    wrong = {a: e for a, e in got.items() if e != errno.EINVAL}
    assert not wrong, (f"FM-ATTR: attribute values outside FSMOUNT_VALID_FLAGS or a bad atime setting gave "
                       f"{names(wrong)}, expected EINVAL (MOUNT_ATTR_IDMAP {k.MOUNT_ATTR_IDMAP:#x} included)")
    assert after == 0, f"FM-ATTR: the context was used up by refused calls ({k.errname(after)})"


ATTRS = {
    "relatime": k.MOUNT_ATTR_RELATIME, "strictatime": k.MOUNT_ATTR_STRICTATIME,
    "noatime": k.MOUNT_ATTR_NOATIME, "rdonly": k.MOUNT_ATTR_RDONLY, "nosuid": k.MOUNT_ATTR_NOSUID,
    "nodev": k.MOUNT_ATTR_NODEV, "noexec": k.MOUNT_ATTR_NOEXEC, "nodiratime": k.MOUNT_ATTR_NODIRATIME,
    "nosymfollow": k.MOUNT_ATTR_NOSYMFOLLOW,
    "all": (k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV | k.MOUNT_ATTR_NOEXEC
            | k.MOUNT_ATTR_NOATIME | k.MOUNT_ATTR_NODIRATIME | k.MOUNT_ATTR_NOSYMFOLLOW),
}


@needs_fsmount_ns
@pytest.mark.parametrize("attr", list(ATTRS.values()), ids=list(ATTRS))
@pytest.mark.rule("FM-ATTR")
def test_attributes_become_the_mount_flags(attr: int) -> None:
    fd = fsmount_fd(NS, attr)
    try:
        (m,) = k.mounts_of(k.mntns_id(fd))
    finally:
        os.close(fd)
    assert m.attr == attr, (f"FM-ATTR: fsmount attributes {attr:#x} gave a mount with attributes "
                            f"{m.attr:#x} (statmount); they must be exactly the mount's flags")


INSIDE = {
    "default": (0, {"rw", "relatime"}),
    "strictatime": (k.MOUNT_ATTR_STRICTATIME, {"rw"}),
    "all": (ATTRS["all"], {"ro", "nosuid", "nodev", "noexec", "noatime", "nodiratime", "nosymfollow"}),
}


@needs_fsmount_ns
@pytest.mark.parametrize("attr,options", list(INSIDE.values()), ids=list(INSIDE))
@pytest.mark.rule("FM-ATTR", "FM-CONTENTS")
def test_attributes_seen_from_inside(attr: int, options: set[str]) -> None:
    fd = fsmount_fd(NS, attr)
    try:
        lines = mountinfo_inside(fd)
    finally:
        os.close(fd)
    assert len(lines) == 1, f"FM-CONTENTS: a process inside sees {len(lines)} mounts, expected one: {lines}"
    (line,) = lines
    assert line[4] == "/" and line[line.index("-") + 1] == "tmpfs", f"FM-CONTENTS: inside it sees {line}"
    assert set(line[5].split(",")) == options, (f"FM-ATTR: inside, /proc/PID/mountinfo shows options {line[5]}; "
                                                f"attributes {attr:#x} mean {sorted(options)}")


@needs_fsmount_ns
@pytest.mark.rule("FM-ATTR")
def test_read_only_is_enforced_inside() -> None:
    fd = fsmount_fd(NS, k.MOUNT_ATTR_RDONLY)
    try:
        def child():
            k.setns(fd, k.CLONE_NEWNS)
            return k.errno_of(lambda: os.open("/new", os.O_CREAT | os.O_WRONLY, 0o644))
        got = in_child(child)
    finally:
        os.close(fd)
    assert got == errno.EROFS, f"FM-ATTR: creating a file on a MOUNT_ATTR_RDONLY mount gave {k.errname(got)}"


# FM-FD -----------------------------------------------------------------------------------------

@needs_fsmount_ns
@pytest.mark.parametrize("flags", [NS, k.FSMOUNT_NAMESPACE], ids=["cloexec", "no_cloexec"])
@pytest.mark.rule("FM-FD")
def test_close_on_exec_follows_the_flag(flags: int) -> None:
    fd = fsmount_fd(flags)
    try:
        cloexec = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
        link = os.readlink(f"/proc/self/fd/{fd}")
        nstype = k.ns_ioctl(fd, k.NS_GET_NSTYPE)
    finally:
        os.close(fd)
    want = bool(flags & k.FSMOUNT_CLOEXEC)
    assert cloexec == want, (f"FM-FD: fsmount({'FSMOUNT_CLOEXEC|' if want else ''}FSMOUNT_NAMESPACE) gave "
                             f"an fd with close-on-exec {'off' if want else 'on'}")
    assert link.startswith("mnt:[") and nstype == k.CLONE_NEWNS, (
        f"FM-FD: the fd is {link!r}, ns type {nstype:#x}; expected an nsfs mount namespace fd")


# FM-CONTENTS -----------------------------------------------------------------------------------

@needs_fsmount_ns
@pytest.mark.rule("FM-CONTENTS")
def test_exactly_the_new_mount_above_a_hidden_root() -> None:
    ours = set(k.listmount())
    fd = fsmount_fd(NS)
    try:
        ns_id = k.mntns_id(fd)
        mounts = k.mounts_of(ns_id)
        hidden = k.statmount(mounts[0].parent_id, ns_id) if len(mounts) == 1 else None
    finally:
        os.close(fd)
    assert ns_id != k.own_mntns_id(), "FM-CONTENTS: the fd names the caller's own mount namespace"
    assert [(m.point, m.fs_type, m.root) for m in mounts] == [("/", "tmpfs", "/")], (
        f"FM-CONTENTS: the namespace shows {mounts}; expected exactly the new tmpfs at /")
    (m,) = mounts
    assert m.mnt_id not in ours, "FM-CONTENTS: the namespace shows one of the caller's mounts"
    assert hidden.mnt_id != m.mnt_id and hidden.fs_type == "nullfs" and hidden.parent_id == hidden.mnt_id, (
        f"FM-CONTENTS: below the tmpfs lies {hidden}; expected the hidden nullfs root")


@needs_fsmount_ns
@pytest.mark.rule("FM-CONTENTS")
def test_entering_shows_the_filesystem_contents() -> None:
    """proc brings its own files: after setns, / is that proc, and its mountinfo lists it alone."""
    fd = fsmount_fd(NS, fstype="proc")
    try:
        (m,) = k.mounts_of(k.mntns_id(fd))

        def child():
            k.setns(fd, k.CLONE_NEWNS)
            return os.listdir("/"), Path("/self/mountinfo").read_text().splitlines()
        entries, mountinfo = in_child(child)
    finally:
        os.close(fd)
    assert {"self", "1", "mounts"} <= set(entries), f"FM-CONTENTS: after setns / holds {sorted(entries)[:20]}"
    assert len(mountinfo) == 1, f"FM-CONTENTS: inside, {len(mountinfo)} mounts: {mountinfo}"
    fields = mountinfo[0].split()
    assert (fields[4], fields[fields.index("-") + 1]) == ("/", "proc"), f"FM-CONTENTS: inside: {fields}"
    assert m.fs_type == "proc", f"FM-CONTENTS: statmount shows {m.fs_type}"


@needs_fsmount_ns
@pytest.mark.rule("FM-CONTENTS")
def test_the_namespace_keeps_one_filesystem_across_entries() -> None:
    fd = fsmount_fd(NS)
    try:
        def writer():
            k.setns(fd, k.CLONE_NEWNS)
            Path("/written").write_text("x")
            return sorted(os.listdir("/"))

        def reader():
            k.setns(fd, k.CLONE_NEWNS)
            return Path("/written").read_text()
        first, second = in_child(writer), in_child(reader)
    finally:
        os.close(fd)
    assert first == ["written"], f"FM-CONTENTS: after setns the root of a fresh tmpfs holds {first}"
    assert second == "x", "FM-CONTENTS: a second process entering the namespace sees another filesystem"


# FM-OWNER --------------------------------------------------------------------------------------

OWNER_UID = 1000


def as_user_in_own_userns(fs: int) -> tuple[int, int, int]:
    """In a child: uid OWNER_UID creates a user namespace (mapping itself), then fsmounts."""
    os.setgroups([])
    os.setresgid(OWNER_UID, OWNER_UID, OWNER_UID)
    os.setresuid(OWNER_UID, OWNER_UID, OWNER_UID)
    k.libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: the uid change made /proc/self root's
    k.unshare(k.CLONE_NEWUSER)
    write_file("/proc/self/uid_map", f"{OWNER_UID} {OWNER_UID} 1")
    write_file("/proc/self/setgroups", "deny")
    write_file("/proc/self/gid_map", f"{OWNER_UID} {OWNER_UID} 1")
    fd = k.fsmount(fs, NS, 0)
    userns = k.ns_ioctl(fd, k.NS_GET_USERNS)
    return os.fstat(userns).st_ino, os.stat("/proc/self/ns/user").st_ino, k.owner_uid(userns)


@needs_fsmount_ns
@pytest.mark.rule("FM-OWNER")
def test_owner_is_the_callers_user_namespace_root() -> None:
    fd = fsmount_fd(NS)
    try:
        userns = k.ns_ioctl(fd, k.NS_GET_USERNS)
    finally:
        os.close(fd)
    try:
        owner, uid = os.fstat(userns).st_ino, k.owner_uid(userns)
    finally:
        os.close(userns)
    assert owner == os.stat("/proc/self/ns/user").st_ino and uid == 0, (
        f"FM-OWNER: root's fsmount namespace is owned by user namespace {owner} (owner uid {uid}); expected "
        "the initial user namespace")


@needs_fsmount_ns
@pytest.mark.rule("FM-OWNER")
def test_owner_is_the_callers_user_namespace_unprivileged_creator() -> None:
    fs = k.tmpfs_context()
    try:
        owner, own, uid = in_child(lambda: as_user_in_own_userns(fs))
    finally:
        os.close(fs)
    assert owner == own, "FM-OWNER: the namespace is not owned by the caller's current user namespace"
    assert uid == OWNER_UID, (f"FM-OWNER: NS_GET_OWNER_UID of the owner gave {uid}; expected {OWNER_UID}, "
                              "the user that created that user namespace")


# FM-LIMIT --------------------------------------------------------------------------------------

@needs_fsmount_ns
@pytest.mark.rule("FM-LIMIT")
def test_enospc_at_max_mnt_namespaces_and_charge_returned() -> None:
    limit = 2

    def child():
        contexts = [k.tmpfs_context() for _ in range(limit + 2)]  # fsopen needs privilege: before
        enter_userns()
        write_file("/proc/sys/user/max_mnt_namespaces", str(limit))
        fds, results = [], []
        for fs in contexts[:limit + 1]:
            try:
                fds.append(k.fsmount(fs, NS, 0))
                results.append(0)
            except OSError as e:
                results.append(e.errno)
        for fd in fds:
            os.close(fd)
        return results, k.errno_of(k.fsmount, contexts[-1], NS, 0)
    results, after = in_child(child)
    assert results[:limit] == [0] * limit, f"FM-LIMIT: under the limit: {[k.errname(e) for e in results]}"
    assert results[limit] == errno.ENOSPC, (f"FM-LIMIT: over max_mnt_namespaces fsmount(FSMOUNT_NAMESPACE) "
                                            f"gave {k.errname(results[limit])}, expected ENOSPC")
    assert after == 0, f"FM-LIMIT: after closing the namespaces, creating one gave {k.errname(after)}"


# FM-FOREIGN-LOCK -------------------------------------------------------------------------------

def enter_and_try_umount(fd: int) -> int:
    k.setns(fd, k.CLONE_NEWNS)
    return k.errno_of(lambda: k.umount2("/", k.MNT_DETACH))


@needs_fsmount_ns
@pytest.mark.rule("FM-FOREIGN-LOCK")
def test_foreign_callers_tree_is_locked_umount_einval() -> None:
    def child(foreign: bool):
        private_mount_ns()
        fs = k.tmpfs_context()
        if foreign:
            enter_userns()
        return enter_and_try_umount(k.fsmount(fs, NS, 0))
    foreign, privileged = in_child(lambda: child(True)), in_child(lambda: child(False))
    assert foreign == errno.EINVAL, (f"FM-FOREIGN-LOCK: umount of the new mount in a foreign caller's "
                                     f"fsmount namespace gave {k.errname(foreign)}; it is locked (EINVAL)")
    assert privileged == 0, f"a privileged caller's umount of its new mount gave {k.errname(privileged)}"


LOCKABLE = {  # attribute given to fsmount, mount_setattr (set, clear) undoing it, remount flags undoing it
    "rdonly": (k.MOUNT_ATTR_RDONLY, (0, k.MOUNT_ATTR_RDONLY), 0),
    "nosuid": (k.MOUNT_ATTR_NOSUID, (0, k.MOUNT_ATTR_NOSUID), 0),
    "nodev": (k.MOUNT_ATTR_NODEV, (0, k.MOUNT_ATTR_NODEV), 0),
    "noexec": (k.MOUNT_ATTR_NOEXEC, (0, k.MOUNT_ATTR_NOEXEC), 0),
    "atime": (k.MOUNT_ATTR_NOATIME, (k.MOUNT_ATTR_RELATIME, k.MOUNT_ATTR__ATIME), k.MS_RELATIME),
}


def try_to_undo(fs: int, attr: int, setattr: tuple[int, int], remount: int) -> dict[str, int]:
    k.setns(k.fsmount(fs, NS, attr), k.CLONE_NEWNS)
    return {"mount_setattr": k.errno_of(k.mount_setattr, k.AT_FDCWD, "/", 0, *setattr),
            "remount": k.errno_of(k.mount, None, "/", None, k.MS_REMOUNT | k.MS_BIND | remount)}


@needs_fsmount_ns
@pytest.mark.parametrize("attr,setattr,remount", list(LOCKABLE.values()), ids=list(LOCKABLE))
@pytest.mark.rule("FM-FOREIGN-LOCK")
def test_foreign_callers_mount_flags_are_locked(attr: int, setattr: tuple[int, int], remount: int) -> None:
    def foreign():
        private_mount_ns()
        fs = k.tmpfs_context()
        enter_userns()
        return try_to_undo(fs, attr, setattr, remount)

    def owner():  # the same user-namespace root, owning its mount namespace: not foreign
        enter_userns(also=k.CLONE_NEWNS)
        return try_to_undo(k.tmpfs_context(), attr, setattr, remount)
    got, control = in_child(foreign), in_child(owner)
    assert got == {"mount_setattr": errno.EPERM, "remount": errno.EPERM}, (
        f"FM-FOREIGN-LOCK: a foreign caller clearing {attr:#x} on its fsmount namespace's mount got "
        f"{names(got)}; the flag is locked (EPERM)")
    assert control == {"mount_setattr": 0, "remount": 0}, f"a non-foreign caller clearing it got {names(control)}"


# FM-ROOT-LOCK ----------------------------------------------------------------------------------

@needs_fsmount_ns
@pytest.mark.parametrize("overmount", [False, True], ids=["locked_top", "locked_below_own_overmount"])
@pytest.mark.rule("FM-ROOT-LOCK")
def test_locked_root_locks_the_new_mount(overmount: bool) -> None:
    """A user-namespace root owning a copied (so locked) mount namespace is not foreign, yet the
    locked mount on its namespace root, even under a mount of its own, locks the new mount."""
    def child():
        enter_userns(also=k.CLONE_NEWNS)
        if overmount:
            k.mount("otns-top", "/", "tmpfs", 0, "size=1m")
        return enter_and_try_umount(k.fsmount(k.tmpfs_context(), NS, 0))
    got = in_child(child)
    assert got == errno.EINVAL, (f"FM-ROOT-LOCK: umount of the new mount gave {k.errname(got)}; a locked mount "
                                 "stacked on the caller's namespace root locks it (EINVAL)")


@needs_fsmount_ns
@pytest.mark.needs_feature("unshare_empty_mntns")
@pytest.mark.rule("FM-ROOT-LOCK")
def test_unlocked_root_leaves_the_new_mount_unlocked() -> None:
    """The same user-namespace root in an empty namespace of its own (nothing locked on the root)."""
    def child():
        enter_userns(also=k.CLONE_NEWNS)
        k.unshare(k.UNSHARE_EMPTY_MNTNS)
        return enter_and_try_umount(k.fsmount(k.tmpfs_context(), NS, 0))
    got = in_child(child)
    assert got == 0, (f"FM-ROOT-LOCK: with nothing locked on the namespace root, umount of the new mount gave "
                      f"{k.errname(got)}; only a locked root locks it")


# FM-REVEALING ----------------------------------------------------------------------------------

WHERE = {"proc": "/proc", "sysfs": "/sys"}
COVER = {"proc": "/proc/sys", "sysfs": "/sys/kernel"}  # non-empty directories


def locked_attrs(point: str) -> int:
    """The read-only and atime attributes of the mount at point: once locked in a user namespace's
    copy, a new instance must match them to count as already visible (mnt_already_visible())."""
    (m,) = [m for m in k.mounts_of() if m.point == point][-1:]
    return m.attr & (k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR__ATIME)


def fsmount_in_own_userns(fstype: str, view: str) -> int:
    """errno of fsmount(FSMOUNT_NAMESPACE) of a new fstype instance by the root of a user namespace
    owning its mount namespace (and a pid or net namespace, which proc or sysfs instances need), whose
    own view of fstype is whole ("visible"), partly covered by a locked mount ("covered"), or absent."""
    def child():
        private_mount_ns()
        attr = locked_attrs(WHERE[fstype])
        proc_fd = None
        if view == "covered":
            k.mount("otns-cover", COVER[fstype], "tmpfs", 0, "size=1m")
        elif view == "absent":
            proc_fd = pivot_into_tmpfs()
        enter_userns(proc_fd, also=k.CLONE_NEWNS | (k.CLONE_NEWPID if fstype == "proc" else k.CLONE_NEWNET))

        def attempt():
            fs = k.fs_context(fstype)
            try:
                return k.errno_of(k.fsmount, fs, NS, attr)
            finally:
                os.close(fs)
        return in_child(attempt) if fstype == "proc" else attempt()  # a new pid namespace needs a child
    return in_child(child)


@needs_fsmount_ns
@pytest.mark.parametrize("fstype", ["proc", "sysfs"])
@pytest.mark.parametrize("view", ["visible", "covered", "absent"])
@pytest.mark.rule("FM-REVEALING")
def test_mount_too_revealing(fstype: str, view: str) -> None:
    got = fsmount_in_own_userns(fstype, view)
    if view == "visible":
        assert got == 0, (f"FM-REVEALING: a user namespace that sees all of {fstype} could not fsmount a new "
                          f"instance ({k.errname(got)})")
    else:
        assert got == errno.EPERM, (f"FM-REVEALING: a user namespace whose {fstype} is {view} got "
                                    f"{k.errname(got)} from fsmount(FSMOUNT_NAMESPACE) of a new instance; "
                                    "a conforming kernel refuses it (EPERM, mount too revealing)")
