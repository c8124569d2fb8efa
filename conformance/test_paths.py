"""Every kind of path given to open_tree(OPEN_TREE_NAMESPACE), against the reference model.

Each case builds what it needs in a child with a private mount namespace, so nothing it
mounts reaches the caller. Rows: (what the path is, how it is given, what the model expects).
"""
from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from . import model
from . import syscalls as k
from .helpers import enter_userns, fd_kind, in_child, private_mount_ns, scratch_tmpfs

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC

pytestmark = pytest.mark.needs_feature("open_tree_namespace")


@dataclass(frozen=True)
class Case:
    setup: Callable[[], tuple[int, object]]  # in the child: returns (dfd, path or raw pointer)
    flags: int
    target: model.Target


def _dir():
    return k.AT_FDCWD, "/"


def _regular_file():
    return k.AT_FDCWD, os.path.abspath(__file__)


def _symlink_to_dir():
    d = scratch_tmpfs()
    os.mkdir(f"{d}/real")
    os.symlink(f"{d}/real", f"{d}/link")
    return k.AT_FDCWD, f"{d}/link"


def _nsfs_file():
    return k.AT_FDCWD, "/proc/self/ns/mnt"


def _procfs():
    return k.AT_FDCWD, "/proc"


def _detached_clone():
    fd = k.open_tree(k.AT_FDCWD, scratch_tmpfs(), k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC)
    return fd, ""


def _empty_path_cwd():
    os.chdir(scratch_tmpfs())
    return k.AT_FDCWD, ""


def _empty_path_dirfd():
    return os.open(scratch_tmpfs(), os.O_PATH | os.O_DIRECTORY), ""


def _bad_dfd():
    return 987, "relative"


def _relative_to_dfd():
    return os.open("/", os.O_PATH | os.O_DIRECTORY), "proc"


def _relative_to_file_dfd():
    return os.open(os.path.abspath(__file__), os.O_PATH), "x"


def _missing():
    return k.AT_FDCWD, "/does/not/exist"


def _not_a_dir_prefix():
    return k.AT_FDCWD, os.path.abspath(__file__) + "/x"


def _too_long():
    return k.AT_FDCWD, "/" + "a" * 4096


def _long_component():
    return k.AT_FDCWD, "/" + "a" * 256


def _symlink_loop():
    d = scratch_tmpfs()
    os.symlink(f"{d}/b", f"{d}/a")
    os.symlink(f"{d}/a", f"{d}/b")
    return k.AT_FDCWD, f"{d}/a"


def _bad_pointer():
    return k.AT_FDCWD, 1  # a raw address nobody mapped


def _unbindable():
    d = scratch_tmpfs()
    k.mount(None, d, None, k.MS_UNBINDABLE)
    return k.AT_FDCWD, d


def _other_namespace():
    # An fd on a mount of another mount namespace, used from the original one. The fd on that
    # namespace stays open (until the child exits) so that it is alive: a dead one's mounts are
    # in no namespace, which is another rule (OT-SRC-UNMOUNTED, test_sources.py).
    home = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    k.unshare(k.CLONE_NEWNS)
    k.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)
    fd = os.open(scratch_tmpfs(), os.O_PATH | os.O_DIRECTORY)
    os.open("/proc/self/ns/mnt", os.O_RDONLY)  # held on purpose: keeps the namespace alive
    k.setns(home, k.CLONE_NEWNS)
    return fd, ""


CASES = {
    "directory": Case(_dir, NS, model.Target()),
    "regular-file": Case(_regular_file, NS, model.Target(is_dir=False)),
    "symlink-followed": Case(_symlink_to_dir, NS, model.Target(symlink=True)),
    "symlink-nofollow": Case(_symlink_to_dir, NS | k.AT_SYMLINK_NOFOLLOW, model.Target(symlink=True)),
    "nsfs-file": Case(_nsfs_file, NS, model.Target(is_dir=False)),
    "procfs": Case(_procfs, NS, model.Target()),
    "detached-clone-fd": Case(_detached_clone, NS | k.AT_EMPTY_PATH, model.Target(empty_path=True)),
    "empty-path-without-flag": Case(_empty_path_dirfd, NS, model.Target(empty_path=True)),
    "empty-path-cwd": Case(_empty_path_cwd, NS | k.AT_EMPTY_PATH, model.Target(empty_path=True)),
    "empty-path-dirfd": Case(_empty_path_dirfd, NS | k.AT_EMPTY_PATH, model.Target(empty_path=True)),
    "bad-dfd": Case(_bad_dfd, NS, model.Target(lookup_errno=errno.EBADF)),
    "relative-to-dfd": Case(_relative_to_dfd, NS, model.Target()),
    "relative-to-file-dfd": Case(_relative_to_file_dfd, NS, model.Target(lookup_errno=errno.ENOTDIR)),
    "missing": Case(_missing, NS, model.Target(lookup_errno=errno.ENOENT)),
    "not-a-directory-prefix": Case(_not_a_dir_prefix, NS, model.Target(lookup_errno=errno.ENOTDIR)),
    "path-too-long": Case(_too_long, NS, model.Target(lookup_errno=errno.ENAMETOOLONG)),
    "component-too-long": Case(_long_component, NS, model.Target(lookup_errno=errno.ENAMETOOLONG)),
    "symlink-loop": Case(_symlink_loop, NS, model.Target(lookup_errno=errno.ELOOP)),
    "bad-pointer": Case(_bad_pointer, NS, model.Target(lookup_errno=errno.EFAULT)),
    "unbindable-mount": Case(_unbindable, NS, model.Target(unbindable=True)),
    "other-mount-namespace": Case(_other_namespace, NS | k.AT_EMPTY_PATH,
                                  model.Target(empty_path=True, foreign_mount=True)),
}


def _run(case: Case) -> tuple[int, str]:
    def child():
        private_mount_ns()
        dfd, path = case.setup()
        try:
            if isinstance(path, int):
                fd = k.open_tree_raw(dfd, path, case.flags)
            else:
                fd = k.open_tree(dfd, path, case.flags)
        except OSError as e:
            return e.errno, ""
        return 0, fd_kind(fd)
    return in_child(child)


def _marked(name: str):
    """The case as a parameter: marked with the rule that decides it (the model's), then OT-LOOKUP,
    and with the ENOTDIR check's fix where that check decides."""
    rule = model.expected(CASES[name].flags, model.Caller(), CASES[name].target).rule
    marks = [pytest.mark.rule(*dict.fromkeys([rule, "OT-LOOKUP"]))]
    return pytest.param(name, marks=marks + [pytest.mark.fix("ENOTDIR_TARGET")] if rule == "OT-DIR" else marks)


@pytest.mark.parametrize("name", [_marked(name) for name in CASES])
def test_path_kind(name: str) -> None:
    case = CASES[name]
    want = model.expected(case.flags, model.Caller(), case.target)
    err, kind = _run(case)
    what = f"open_tree({name}, {k.flag_names(case.flags)})"
    assert err == want.errno, f"{what}: the kernel gave {k.errname(err) if err else 'an fd'}, a conforming kernel {want}"
    if not err:
        assert kind == want.kind, f"{what}: returned a {kind} fd, a conforming kernel a {want.kind} fd"


@pytest.mark.rule("OT-LOOKUP")
def test_no_search_permission_is_eacces() -> None:
    # Privileged in its own user namespace (so past the EPERM check) but the directory's owner
    # is not mapped there, so no capability overrides its 0700 mode.
    def child():
        private_mount_ns()
        d = scratch_tmpfs()
        os.mkdir(f"{d}/locked", 0o700)
        os.mkdir(f"{d}/locked/inner")
        os.chown(f"{d}/locked", 1234, 1234)
        enter_userns()
        return k.errno_of(k.open_tree, k.AT_FDCWD, f"{d}/locked/inner", k.OPEN_TREE_NAMESPACE | k.AT_RECURSIVE)
    got = in_child(child)
    assert got == errno.EACCES, f"lookup through a 0700 directory of an unmapped owner gave {k.errname(got)}, expected EACCES"


@pytest.mark.rule("OT-LOOKUP")
def test_automount_point() -> None:
    # OT-LOOKUP on a real automount point: debugfs's "tracing" directory, on which a lookup that
    # crosses it mounts tracefs (CONFIG_TRACEFS_AUTOMOUNT_DEPRECATED; no daemon needed, unlike
    # autofs, which Debian's cloud kernels have only as a module). With AT_NO_AUTOMOUNT the copy is
    # of the debugfs directory itself; without it the lookup mounts tracefs and that is copied.
    def child():
        private_mount_ns()
        d = tempfile.mkdtemp(prefix="otns-debugfs-")
        k.mount("debugfs", d, "debugfs")
        point = f"{d}/tracing"
        if not os.path.lexists(point) or not k.statx_attributes(point) & k.STATX_ATTR_AUTOMOUNT:
            return None
        seen = {}
        for name, flags in (("AT_NO_AUTOMOUNT", NS | k.AT_NO_AUTOMOUNT), ("automount", NS)):
            fd = k.open_tree(k.AT_FDCWD, point, flags)  # AT_NO_AUTOMOUNT first: the other mounts tracefs
            top = k.statmount(k.listmount(k.mntns_id(fd))[0], k.mntns_id(fd))
            seen[name] = (top.fs_type, top.root)
        return seen
    seen = in_child(child)
    if seen is None:
        pytest.skip("debugfs has no tracing automount point on this kernel (CONFIG_TRACEFS_AUTOMOUNT_DEPRECATED "
                    "is not set), and no other automount point can be made without a daemon")
    assert seen["AT_NO_AUTOMOUNT"] == ("debugfs", "/tracing"), (
        f"OT-LOOKUP: with AT_NO_AUTOMOUNT the copy of the automount point is {seen['AT_NO_AUTOMOUNT']} "
        "(filesystem, root); a conforming kernel copies the debugfs directory itself, mounting nothing")
    assert seen["automount"] == ("tracefs", "/"), (
        f"OT-LOOKUP: without AT_NO_AUTOMOUNT the copy is {seen['automount']} (filesystem, root); a conforming "
        "kernel triggers the automount and copies the tracefs mounted there")
