"""The upstream kselftests in filesystems/empty_mntns/ (Linux 7.2), case by case, written anew.

Three C files: empty_mntns_test.c (unshare(UNSHARE_EMPTY_MNTNS)), clone3_empty_mntns_test.c
(clone3(CLONE_EMPTY_MNTNS)) and overmount_chroot_test.c. Names follow kselftest's
fixture.test; a TEST() outside a fixture is kselftest's "global" fixture, here a class named
after its file (conformance/README.md has the table). Each test asserts at least what the C test
asserts; its messages name the rule (docs/semantics.md, EM-*) it guards. Two upstream cases are
fixed, not copied: `eperm_without_caps` passes vacuously as root (ours drops to an unprivileged
uid), and `unknown_flags_rejected` uses bit 35 (CLONE_NNP in 7.2) as "unknown" (ours takes the
unknown bits from the kernel's own list).
"""
from __future__ import annotations

import errno
import os
import socket
import tempfile

import pytest

from . import syscalls as k
from .helpers import become_nobody, enter_userns, in_child, in_clone3, pivot_into_tmpfs, private_mount_ns, wait_child

EMPTY = k.CLONE_EMPTY_MNTNS
UNKNOWN_CLONE3_BITS = [1 << b for b in range(64) if not (1 << b) & k.CLONE3_KNOWN]


def count_mounts() -> int:
    return len(k.listmount())


def root_and_cwd() -> tuple[int, int]:
    return k.mnt_id_of("/"), k.mnt_id_of(".")


def check_one_mount(count: int, how: str) -> None:
    assert count == 1, f"EM-ONLY-ROOT: {how}: {count} mounts; an empty namespace holds exactly one"


def check_root_is_cwd(ids: tuple[int, int], how: str) -> None:
    root, cwd = ids
    assert root and root == cwd, f"EM-CWD: {how}: root is on mount {root}, cwd on {cwd}; both must be the root"


def tmpfs_with_binds(n: int) -> str:
    """In a child with a private mount namespace: a tmpfs with n bind mounts of its subdirectories."""
    t = tempfile.mkdtemp(prefix="otns-em-")
    k.mount("tmpfs", t, "tmpfs", 0, "size=1M")
    for i in range(n):
        sub = f"{t}/sub{i}"
        os.mkdir(sub)
        k.mount(sub, sub, None, k.MS_BIND)
    return t


def overmount_root_with_tmpfs() -> tuple[str, str, int, bool]:
    """upstream's overmount_tmpfs steps, in a fresh empty namespace: (root fs type, fs type after
    chroot into a tmpfs moved onto /, mount count then, whether a file could be written there)."""
    before = k.statmount(k.mnt_id_of("/")).fs_type
    created = k.errno_of(lambda: os.open("/test", os.O_CREAT | os.O_RDWR, 0o644))
    assert created == errno.ENOENT, f"EM-ONLY-ROOT: creating a file on the nullfs root gave {k.errname(created)}"
    fs = k.fsopen("tmpfs")
    k.fsconfig(fs, k.FSCONFIG_SET_STRING, "size", "1M")
    k.fsconfig(fs, k.FSCONFIG_CMD_CREATE)
    mnt = k.fsmount(fs, k.FSMOUNT_CLOEXEC)
    os.close(fs)
    k.move_mount(mnt, "", k.AT_FDCWD, "/", k.MOVE_MOUNT_F_EMPTY_PATH)
    count = count_mounts()
    os.fchdir(mnt)
    os.chroot(".")
    os.close(mnt)
    with open("/testfile", "w") as f:
        f.write("test")
    return before, k.statmount(k.mnt_id_of("/")).fs_type, count, os.path.exists("/testfile")


def check_overmount(got: tuple[str, str, int, bool]) -> None:
    before, after, count, written = got
    assert before == "nullfs", f"EM-ONLY-ROOT: the empty namespace's root is {before}, expected nullfs"
    assert (after, count, written) == ("tmpfs", 2, True), (
        f"EM-ONLY-ROOT: after moving a tmpfs onto / and chrooting into it: root {after}, {count} mounts, "
        f"file written {written}; expected tmpfs, 2, True")


def root_properties() -> tuple[int, k.MountInfo]:
    root = k.mnt_id_of("/")
    return root, k.statmount(root)


def check_root_properties(got: tuple[int, k.MountInfo], how: str) -> None:
    root, m = got
    assert (m.mnt_id, m.point, m.fs_type) == (root, "/", "nullfs"), f"EM-ONLY-ROOT: {how}: root mount {m}"
    assert m.parent_id == m.mnt_id, f"EM-ONLY-ROOT: {how}: the root mount's parent is {m.parent_id}, not itself"


# empty_mntns_test.c ----------------------------------------------------------------------------

def unshared(fn=None, before=None):
    """A child-side function: root of a new user namespace, optional setup, unshare(UNSHARE_EMPTY_MNTNS), fn()."""
    def child():
        enter_userns()
        if before:
            before()
        k.unshare(k.UNSHARE_EMPTY_MNTNS)
        return fn() if fn else None
    return child


@pytest.mark.needs_feature("unshare_empty_mntns")
class TestEmptyMntns:
    @pytest.mark.rule("EM-ONLY-ROOT", "EM-CWD")
    def test_basic(self) -> None:
        count, ids = in_child(unshared(lambda: (count_mounts(), root_and_cwd())))
        check_one_mount(count, "unshare(UNSHARE_EMPTY_MNTNS)")
        check_root_is_cwd(ids, "unshare(UNSHARE_EMPTY_MNTNS)")

    @pytest.mark.rule("EM-USERNS", "EM-ONLY-ROOT")
    def test_with_clone_newuser(self) -> None:
        """The user namespace first (its maps need /proc), the empty mount namespace after."""
        def child():
            enter_userns()
            userns = os.stat("/proc/self/ns/user").st_ino
            k.unshare(k.UNSHARE_EMPTY_MNTNS)
            return count_mounts(), userns
        count, userns = in_child(child)
        check_one_mount(count, "in a new user namespace")
        assert userns != os.stat("/proc/self/ns/user").st_ino

    @pytest.mark.rule("EM-ONLY-ROOT", "EM-OTHERS")
    def test_with_other_ns_flags(self) -> None:
        def child():
            enter_userns()
            ns_dir = os.open("/proc/self/ns", os.O_PATH | os.O_DIRECTORY)  # / will have no /proc
            before = {n: os.stat(n, dir_fd=ns_dir).st_ino for n in ("uts", "ipc")}
            k.unshare(k.UNSHARE_EMPTY_MNTNS | k.CLONE_NEWUTS | k.CLONE_NEWIPC)
            after = {n: os.stat(n, dir_fd=ns_dir).st_ino for n in ("uts", "ipc")}
            return count_mounts(), [n for n in before if before[n] == after[n]]
        count, kept = in_child(child)
        check_one_mount(count, "with CLONE_NEWUTS | CLONE_NEWIPC")
        assert not kept, f"EM-OTHERS: the same unshare did not make new {kept} namespaces"

    @pytest.mark.rule("EM-CAP")
    def test_eperm_without_caps(self) -> None:
        """Upstream returns at once when run as root (the usual case), checking nothing; ours drops to nobody."""
        def child():
            become_nobody()
            return k.errno_of(k.unshare, k.UNSHARE_EMPTY_MNTNS)
        got = in_child(child)
        assert got == errno.EPERM, f"EM-CAP: unshare(UNSHARE_EMPTY_MNTNS) without privilege gave {k.errname(got)}"

    @pytest.mark.rule("EM-ONLY-ROOT")
    def test_many_source_mounts(self) -> None:
        def child():
            enter_userns()
            private_mount_ns()
            tmpfs_with_binds(5)
            before = count_mounts()
            k.unshare(k.UNSHARE_EMPTY_MNTNS)
            return before, count_mounts()
        before, after = in_child(child)
        assert before >= 5, f"the source namespace has only {before} mounts"
        check_one_mount(after, f"from a namespace of {before} mounts")

    @pytest.mark.rule("EM-CWD")
    def test_cwd_reset(self) -> None:
        def child():
            enter_userns()
            private_mount_ns()
            t = tempfile.mkdtemp(prefix="otns-em-")
            k.mount("tmpfs", t, "tmpfs", 0, "size=1M")
            os.chdir(t)
            k.unshare(k.UNSHARE_EMPTY_MNTNS)
            ids = root_and_cwd()
            return ids, k.statmount(ids[0]).point
        ids, point = in_child(child)
        check_root_is_cwd(ids, "cwd on a tmpfs before")
        assert point == "/", f"EM-CWD: the root mount's mount point is {point!r}"

    @pytest.mark.rule("EM-ONLY-ROOT")
    def test_mount_properties(self) -> None:
        check_root_properties(in_child(unshared(root_properties)), "unshare")

    @pytest.mark.rule("EM-ONLY-ROOT")
    def test_repeated_unshare(self) -> None:
        def child():
            enter_userns()
            k.unshare(k.UNSHARE_EMPTY_MNTNS)
            first = count_mounts(), k.mnt_id_of("/")
            k.unshare(k.UNSHARE_EMPTY_MNTNS)
            return first, (count_mounts(), k.mnt_id_of("/"))
        (c1, r1), (c2, r2) = in_child(child)
        check_one_mount(c1, "first unshare")
        check_one_mount(c2, "second unshare")
        assert r1 != r2, "EM-ONLY-ROOT: a second unshare(UNSHARE_EMPTY_MNTNS) kept the same root mount"

    @pytest.mark.rule("EM-ONLY-ROOT")
    def test_root_is_own_parent(self) -> None:
        root, m = in_child(unshared(root_properties))
        assert m.parent_id == m.mnt_id == root, f"EM-ONLY-ROOT: the root mount's parent is {m.parent_id}, not {root}"

    @pytest.mark.rule("EM-ONLY-ROOT")
    def test_listmount_single_entry(self) -> None:
        ids, root = in_child(unshared(lambda: (k.listmount(), k.mnt_id_of("/"))))
        assert ids == [root], f"EM-ONLY-ROOT: listmount gives {ids}, expected only the root {root}"

    @pytest.mark.rule("EM-ONLY-ROOT", "EM-OVERMOUNT")
    def test_overmount_tmpfs(self) -> None:
        check_overmount(in_child(unshared(overmount_root_with_tmpfs)))


class TestEmptyMntnsGlobal:
    """The TEST()s of empty_mntns_test.c: they hold on any kernel."""

    @pytest.mark.rule("EM-FLAGS")
    def test_invalid_flags(self) -> None:
        def child():
            enter_userns()
            return k.errno_of(k.unshare, 0x80000000)  # CLONE_IO: not one of unshare()'s flags
        got = in_child(child)
        assert got == errno.EINVAL, f"EM-FLAGS: unshare(0x80000000) gave {k.errname(got)}, expected EINVAL"

    @pytest.mark.rule("EM-FLAGS")
    def test_clone_newns_full_copy(self) -> None:
        def child():
            enter_userns()
            private_mount_ns()
            tmpfs_with_binds(3)
            before = count_mounts()
            k.unshare(k.CLONE_NEWNS)
            return before, count_mounts()
        before, after = in_child(child)
        assert before >= 3 and after >= before, f"CLONE_NEWNS copied {after} of {before} mounts"

    @pytest.mark.rule("EM-OTHERS")
    def test_other_ns_unaffected(self) -> None:
        def child():
            enter_userns()
            k.unshare(k.CLONE_NEWUTS)
            socket.sethostname("test-empty-mntns")
            return socket.gethostname()
        before = socket.gethostname()
        assert in_child(child) == "test-empty-mntns", "sethostname in a new UTS namespace did not take"
        assert socket.gethostname() == before, "EM-OTHERS: the parent's hostname changed"


# clone3_empty_mntns_test.c ---------------------------------------------------------------------

def cloned(extra: int, fn, userns: bool = True):
    """A child-side function: (root of a new user namespace, then) fn() in a clone3(CLONE_EMPTY_MNTNS | extra) child."""
    def child():
        if userns:
            enter_userns()
        return in_clone3(EMPTY | extra, fn)
    return child


@pytest.mark.needs_feature("clone_empty_mntns")
class TestClone3EmptyMntns:
    @pytest.mark.rule("EM-ONLY-ROOT", "EM-CWD")
    def test_basic(self) -> None:
        count, ids = in_child(cloned(0, lambda: (count_mounts(), root_and_cwd())))
        check_one_mount(count, "clone3(CLONE_EMPTY_MNTNS)")
        check_root_is_cwd(ids, "clone3(CLONE_EMPTY_MNTNS)")

    @pytest.mark.rule("EM-FLAGS", "EM-ONLY-ROOT", "EM-OTHERS")
    def test_implies_newns(self) -> None:
        def child():
            enter_userns()
            before = count_mounts()
            inside = in_clone3(EMPTY, count_mounts)
            return before, inside, count_mounts()
        before, inside, after = in_child(child)
        check_one_mount(inside, "CLONE_EMPTY_MNTNS without CLONE_NEWNS")
        assert after == before >= 1, f"EM-OTHERS: the parent's namespace went from {before} to {after} mounts"

    @pytest.mark.rule("EM-ONLY-ROOT")
    def test_with_explicit_newns(self) -> None:
        check_one_mount(in_child(cloned(k.CLONE_NEWNS, count_mounts)), "with CLONE_NEWNS")

    @pytest.mark.rule("EM-USERNS", "EM-ONLY-ROOT")
    def test_with_newuser(self) -> None:
        check_one_mount(in_child(cloned(k.CLONE_NEWUSER, count_mounts)), "with CLONE_NEWUSER")

    @pytest.mark.rule("EM-ONLY-ROOT")
    def test_with_other_ns_flags(self) -> None:
        check_one_mount(in_child(cloned(k.CLONE_NEWUTS | k.CLONE_NEWIPC, count_mounts)),
                        "with CLONE_NEWUTS | CLONE_NEWIPC")

    @pytest.mark.rule("EM-COMPOSE")
    def test_with_newpid(self) -> None:
        count, pid = in_child(cloned(k.CLONE_NEWPID, lambda: (count_mounts(), os.getpid())))
        check_one_mount(count, "with CLONE_NEWPID")
        assert pid == 1, f"EM-COMPOSE: the child of clone3(CLONE_EMPTY_MNTNS | CLONE_NEWPID) has pid {pid}, not 1"

    @pytest.mark.rule("EM-FLAGS")
    def test_with_clone_fs_fails(self) -> None:
        def child():
            enter_userns()
            return k.errno_of(lambda: in_clone3(EMPTY | k.CLONE_FS, lambda: None))
        got = in_child(child)
        assert got == errno.EINVAL, (f"EM-FLAGS: CLONE_EMPTY_MNTNS | CLONE_FS gave {k.errname(got)}; it implies "
                                     "CLONE_NEWNS, which excludes CLONE_FS (EINVAL)")

    @pytest.mark.rule("EM-COMPOSE")
    def test_with_pidfd(self) -> None:
        def child():
            enter_userns()
            pid, pidfd = k.clone3_pidfd(EMPTY)
            if pid == 0:
                os._exit(0 if count_mounts() == 1 else 3)
            with open(f"/proc/self/fdinfo/{pidfd}") as f:
                pidfd_pid = int(dict(line.split(":", 1) for line in f if ":" in line)["Pid"])
            status = os.waitid(os.P_PIDFD, pidfd, os.WEXITED).si_status
            os.close(pidfd)
            return pid, pidfd_pid, status
        pid, pidfd_pid, status = in_child(child)
        assert pidfd_pid == pid, f"EM-COMPOSE: the pidfd names pid {pidfd_pid}, the child is {pid}"
        assert status == 0, "EM-ONLY-ROOT: the child of clone3(CLONE_EMPTY_MNTNS | CLONE_PIDFD) saw more than one mount"

    @pytest.mark.rule("EM-CAP")
    def test_eperm_without_caps(self) -> None:
        """Upstream returns at once when run as root (the usual case), checking nothing; ours drops to nobody."""
        def child():
            become_nobody()
            return k.errno_of(lambda: in_clone3(EMPTY, lambda: None))
        got = in_child(child)
        assert got == errno.EPERM, f"EM-CAP: clone3(CLONE_EMPTY_MNTNS) without privilege gave {k.errname(got)}"

    @pytest.mark.rule("EM-OTHERS")
    def test_parent_unchanged(self) -> None:
        def child():
            enter_userns()
            before = open("/proc/self/mountinfo").read()
            in_clone3(EMPTY, lambda: None)
            return before == open("/proc/self/mountinfo").read()
        assert in_child(child), "EM-OTHERS: the parent's mount table changed after clone3(CLONE_EMPTY_MNTNS)"

    @pytest.mark.rule("EM-ONLY-ROOT")
    def test_many_parent_mounts(self) -> None:
        def child():
            enter_userns()
            private_mount_ns()
            tmpfs_with_binds(5)
            return count_mounts(), in_clone3(EMPTY, count_mounts)
        before, inside = in_child(child)
        assert before >= 5
        check_one_mount(inside, f"from a parent with {before} mounts")

    @pytest.mark.rule("EM-ONLY-ROOT")
    def test_mount_properties(self) -> None:
        check_root_properties(in_child(cloned(0, root_properties)), "clone3")

    @pytest.mark.rule("EM-ONLY-ROOT")
    def test_listmount_single_entry(self) -> None:
        ids, root = in_child(cloned(0, lambda: (k.listmount(), k.mnt_id_of("/"))))
        assert ids == [root], f"EM-ONLY-ROOT: listmount gives {ids}, expected only the root {root}"

    @pytest.mark.rule("EM-ONLY-ROOT", "EM-OVERMOUNT")
    def test_child_overmount_tmpfs(self) -> None:
        check_overmount(in_child(cloned(0, overmount_root_with_tmpfs)))

    @pytest.mark.rule("EM-ONLY-ROOT")
    def test_repeated(self) -> None:
        def child():
            enter_userns()
            return in_clone3(EMPTY, lambda: k.mnt_id_of("/")), in_clone3(EMPTY, lambda: k.mnt_id_of("/"))
        first, second = in_child(child)
        assert first and second and first != second, f"EM-ONLY-ROOT: two children got root mounts {first}, {second}"

    @pytest.mark.rule("EM-COMPOSE", "EM-ONLY-ROOT")
    def test_setns_into_child_mntns(self) -> None:
        def child():
            enter_userns()
            ready_r, ready_w = os.pipe()
            done_r, done_w = os.pipe()
            pid = k.clone3(EMPTY)
            if pid == 0:
                os.close(ready_r)
                os.close(done_w)
                os.write(ready_w, b"r")
                os.read(done_r, 1)  # EOF once the parent is done (or gone)
                os._exit(0)
            os.close(ready_w)
            os.close(done_r)
            try:
                assert os.read(ready_r, 1) == b"r", "the clone3 child died before it was ready"
                fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
                k.setns(fd, k.CLONE_NEWNS)
                return count_mounts()
            finally:
                os.close(done_w)
                wait_child(pid)
        check_one_mount(in_child(child), "after setns into the child's namespace")


class TestClone3EmptyMntnsGlobal:
    """The TEST()s of clone3_empty_mntns_test.c: they hold on any kernel."""

    @pytest.mark.rule("EM-FLAGS")
    def test_unknown_flags_rejected(self) -> None:
        """Upstream uses 0x800000000 (bit 35), which 7.2 defines (CLONE_NNP): its test fails on a
        conforming 7.2. Ours tries every bit above clone3_args_valid()'s list (bits 38-63)."""
        def child():
            return {f"{bit:#x}": k.errno_of(lambda b=bit: in_clone3(b, lambda: None)) for bit in UNKNOWN_CLONE3_BITS}
        got = in_child(child)
        wrong = {b: k.errname(e) for b, e in got.items() if e != errno.EINVAL}
        assert not wrong, f"EM-FLAGS: clone3 with unknown flag bits gave {wrong}, expected EINVAL"

    @pytest.mark.rule("EM-FLAGS")
    def test_clone3_newns_full_copy(self) -> None:
        def child():
            enter_userns()
            return count_mounts(), in_clone3(k.CLONE_NEWNS, count_mounts)
        before, inside = in_child(child)
        assert inside >= before >= 1, f"clone3(CLONE_NEWNS) copied {inside} of {before} mounts"


# overmount_chroot_test.c -----------------------------------------------------------------------

NR_OVERMOUNTS = 5


class TestOvermountChrootGlobal:
    @pytest.mark.rule("EM-OVERMOUNT")
    def test_overmount_chroot(self) -> None:
        """A mount point overmounted several times: chroot into it lands on the topmost layer."""
        def child():
            enter_userns()
            private_mount_ns()
            pivot_into_tmpfs()
            os.mkdir("/newroot")
            layers = []
            for i in range(NR_OVERMOUNTS + 1):
                k.mount("tmpfs", "/newroot", "tmpfs", 0, "size=1M")
                layers.append(k.mnt_id_of("/newroot"))
                open(f"/newroot/layer_{i}", "w").close()
            count = count_mounts()
            os.chroot("/newroot")
            os.chdir("/")
            return layers, count, k.mnt_id_of("/"), sorted(os.listdir("/")), k.statmount(k.mnt_id_of("/")).fs_type
        layers, count, root, files, fs_type = in_child(child)
        assert len(set(layers)) == NR_OVERMOUNTS + 1, f"the overmounts share mount ids: {layers}"
        assert count >= NR_OVERMOUNTS + 2, f"only {count} mounts after {NR_OVERMOUNTS + 1} overmounts"
        assert root == layers[-1], f"chroot landed on mount {root}, not the topmost layer {layers[-1]}"
        assert files == [f"layer_{NR_OVERMOUNTS}"] and fs_type == "tmpfs", f"after chroot / holds {files} ({fs_type})"
