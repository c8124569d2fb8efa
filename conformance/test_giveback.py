"""Every way each feature's call ends gives back what it took (docs/semantics.md GB-*).

What a call takes, from the source (Debian 7.2.13): `vfs_open_tree()` a path reference; then
`create_new_namespace()` a `max_mnt_namespaces` charge (`alloc_mnt_ns()`), a copy of the
namespace's root and of the source (references on the source mount), all given back by
`umount_tree()` and `emptied_ns` on its failures and by `free_mnt_ns()` when the namespace dies;
`fsmount()` a new mount and its superblock, and for FSMOUNT_NAMESPACE the same namespace;
`copy_mnt_ns()` for UNSHARE_EMPTY_MNTNS/CLONE_EMPTY_MNTNS a charge and a copy of the root. What
user space can read of it, after each path run a few times in a user namespace of its own:

- the charge: how many namespaces the caller can still make under a small `max_mnt_namespaces`
  (its *headroom*) is what it was;
- the references: the caller's own source mount can still be unmounted without MNT_DETACH
  (a reference left on it makes that EBUSY);
- no fd is left, and the caller's namespace holds the same mounts;
- over many cycles of every failing path at once, `mnt_cache` does not grow.
"""
from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from . import syscalls as k
from .helpers import (
    drop_effective_caps,
    enter_userns,
    in_child,
    private_mount_ns,
    raise_effective_caps,
    scratch_tmpfs,
    wait_child,
    write_file,
)

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC
LIMIT = 4  # max_mnt_namespaces in the caller's user namespace: a leaked charge shows at once
CYCLES = 3  # each path, per test
SLAB_CYCLES = 200  # each path that makes mounts, measured alone, in the one test that watches mnt_cache
# With no leak mnt_cache ends up to ~12% of the calls above where it started (per-CPU slabs,
# RCU-delayed frees, other processes; seen under load, over all paths at once); one mount
# leaked per call of the path exceeds the slack.
SLAB_SLACK = SLAB_CYCLES // 2
# The paths that make mounts before they end: the others fail before any (their references and
# charge are checked path by path above).
MAKES_MOUNTS = ("unbindable source", "source in another namespace", "locked children, not recursive",
                "a locked unbindable child, recursive", "success, the fd closed")


@dataclass
class Scene:
    """What a path runs on, made in a child before it becomes the caller: a source mount of the
    caller's own (`mine`, unmountable at the end), a leaf directory of root's (the headroom is
    measured on it), and what the path needs besides."""
    mine: str = ""
    leaf: str = ""
    extra: dict | None = None


def _headroom(leaf: str) -> int:
    """How many more namespaces the caller can make now (up to LIMIT + 1)."""
    fds = []
    try:
        for _ in range(LIMIT + 1):
            try:
                fds.append(k.open_tree(k.AT_FDCWD, leaf, NS))
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
        return len(fds)
    finally:
        for fd in fds:
            os.close(fd)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass(frozen=True)
class Path:
    """One way a call ends: the caller (`owner`: a user namespace owning a mount namespace copied
    from root's; `foreign`: a user namespace alone), what root prepares before (`rooted`, in
    the scratch directory) and the caller after (`own`), the call (returns an errno, 0 for a
    success whose fd it closed) and the errno it must give."""
    name: str
    caller: str
    call: Callable[[Scene], int]
    errno: int
    rooted: Callable[[str], dict] = lambda base: {}
    own: Callable[[Scene], dict] = lambda scene: {}


def _ot(path_of: Callable[[Scene], str], flags: int = 0, dfd: Callable[[Scene], int] | None = None):
    def call(scene: Scene) -> int:
        return k.errno_of(k.open_tree, dfd(scene) if dfd else k.AT_FDCWD, path_of(scene), NS | flags)
    return call


def _rooted_child(propagation: int) -> Callable[[str], dict]:
    """Root mounts a tmpfs with a child (of this propagation) below its root, before the caller
    inherits them (locked)."""
    def make(base: str) -> dict:
        src = f"{base}/inherited"
        os.mkdir(src)
        k.mount("otns-gb-src", src, "tmpfs", 0, "size=64k")
        os.mkdir(f"{src}/child")
        k.mount("otns-gb-child", f"{src}/child", "tmpfs", 0, "size=64k")
        k.mount(None, f"{src}/child", None, propagation)
        return {"src": src}
    return make


def _other_ns(scene: Scene) -> dict:
    """A directory fd on a mount of another live namespace: a child's copy of ours, the child
    kept alive (in `pid`) until the path has run."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            k.unshare(k.CLONE_NEWNS)
            fd = os.open(scene.mine, os.O_PATH | os.O_DIRECTORY)
            os.write(w, str(fd).encode())
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(w)
    try:
        theirs = os.read(r, 16).decode()
        fd = os.open(f"/proc/{pid}/fd/{theirs}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except BaseException:
        os.kill(pid, 9)
        wait_child(pid)
        raise
    finally:
        os.close(r)
    return {"fd": fd, "pid": pid}


def _without_caps(call: Callable[[Scene], int]) -> Callable[[Scene], int]:
    """The call with no effective capability, which are put back after it."""
    def run(scene: Scene) -> int:
        drop_effective_caps()
        try:
            return call(scene)
        finally:
            raise_effective_caps()
    return run


OPEN_TREE_PATHS = (
    Path("unknown flag", "owner", lambda s: k.errno_of(k.open_tree, k.AT_FDCWD, s.mine, NS | 0x4), errno.EINVAL),
    Path("without CAP_SYS_ADMIN", "owner", _without_caps(_ot(lambda s: s.mine)), errno.EPERM),
    Path("no such path", "owner", _ot(lambda s: f"{s.mine}/absent"), errno.ENOENT),
    Path("not a directory", "owner", _ot(lambda s: f"{s.mine}/file"), errno.ENOTDIR),
    Path("at the limit", "owner", _ot(lambda s: s.mine), errno.ENOSPC),
    Path("unbindable source", "owner", _ot(lambda s: s.extra["unbindable"]), errno.EINVAL,
         own=lambda s: {"unbindable": _unbindable(s.mine)}),
    Path("source in another namespace", "owner", _ot(lambda s: "", k.AT_EMPTY_PATH, lambda s: s.extra["fd"]),
         errno.EINVAL, own=_other_ns),
    Path("foreign, not recursive, over children", "foreign", _ot(lambda s: s.extra["src"]), errno.EINVAL,
         rooted=_rooted_child(k.MS_PRIVATE)),
    Path("locked children, not recursive", "owner", _ot(lambda s: s.extra["src"]), errno.EINVAL,
         rooted=_rooted_child(k.MS_PRIVATE)),
    Path("a locked unbindable child, recursive", "owner", _ot(lambda s: s.extra["src"], k.AT_RECURSIVE),
         errno.EPERM, rooted=_rooted_child(k.MS_UNBINDABLE)),
    Path("success, the fd closed", "owner", _ot(lambda s: s.mine, k.AT_RECURSIVE), 0),
)


def _fsmount(flags: int = k.FSMOUNT_NAMESPACE, attr: int = 0, fd: Callable[[], int] | None = None,
             create: bool = True, spent: bool = False, nocaps: bool = False) -> Callable[[Scene], int]:
    """fsmount() on a fresh tmpfs context of the caller's (or on the fd `fd` gives); nocaps:
    with no effective capability (the context made before)."""
    def call(scene: Scene) -> int:
        ctx = fd() if fd else k.fsopen("tmpfs")
        try:
            if create and not fd:
                k.fsconfig(ctx, k.FSCONFIG_CMD_CREATE)
            if spent:
                os.close(k.fsmount(ctx, k.FSMOUNT_CLOEXEC, 0))
            if nocaps:
                return _without_caps(lambda s: k.errno_of(k.fsmount, ctx, flags | k.FSMOUNT_CLOEXEC, attr))(scene)
            return k.errno_of(k.fsmount, ctx, flags | k.FSMOUNT_CLOEXEC, attr)
        finally:
            if ctx >= 0:
                os.close(ctx)
    return call


FSMOUNT_PATHS = (
    Path("unknown flag", "owner", _fsmount(k.FSMOUNT_NAMESPACE | 0x4), errno.EINVAL),
    Path("without CAP_SYS_ADMIN", "owner", _fsmount(nocaps=True), errno.EPERM),
    Path("unknown attribute", "owner", _fsmount(attr=1 << 30), errno.EINVAL),
    Path("bad atime", "owner", _fsmount(attr=0x30), errno.EINVAL),
    Path("no fd", "owner", _fsmount(fd=lambda: -1), errno.EBADF),
    Path("not a context", "owner", _fsmount(fd=lambda: os.open("/", os.O_RDONLY | os.O_CLOEXEC)), errno.EINVAL),
    Path("no superblock yet", "owner", _fsmount(create=False), errno.EINVAL),
    Path("a spent context", "owner", _fsmount(spent=True), errno.EBUSY),
    Path("at the limit", "owner", _fsmount(), errno.ENOSPC),
    Path("success, the fd closed", "owner", _fsmount(), 0),
)


def _in_fork(action: Callable[[], None]) -> Callable[[Scene], int]:
    """The action in a forked child that then exits: its errno, 0 if it worked."""
    def call(scene: Scene) -> int:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                action()
            except OSError as e:
                code = e.errno
            finally:
                os._exit(code)
        return os.waitstatus_to_exitcode(wait_child(pid))
    return call


def _clone3_exit(flags: int) -> Callable[[Scene], int]:
    """clone3(flags) whose child exits at once: its errno, 0 if it worked."""
    def call(scene: Scene) -> int:
        try:
            pid = k.clone3(flags)
        except OSError as e:
            return e.errno
        if pid == 0:
            os._exit(0)
        return os.waitstatus_to_exitcode(wait_child(pid))
    return call


EMPTY_PATHS = (
    Path("clone3 with CLONE_FS", "owner", _clone3_exit(k.CLONE_EMPTY_MNTNS | k.CLONE_FS), errno.EINVAL),
    Path("without CAP_SYS_ADMIN", "owner",
         _without_caps(lambda s: k.errno_of(k.unshare, k.UNSHARE_EMPTY_MNTNS)), errno.EPERM),
    Path("at the limit", "owner", lambda s: k.errno_of(k.unshare, k.UNSHARE_EMPTY_MNTNS), errno.ENOSPC),
    Path("unshare, then the process exits", "owner", _in_fork(lambda: k.unshare(k.UNSHARE_EMPTY_MNTNS)), 0),
    Path("clone3, then the child exits", "owner", _clone3_exit(k.CLONE_EMPTY_MNTNS), 0),
)


def _unbindable(mine: str) -> str:
    path = f"{mine}/unbindable"
    os.mkdir(path)
    k.mount("otns-gb-unbindable", path, "tmpfs", 0, "size=64k")
    k.mount(None, path, None, k.MS_UNBINDABLE)
    return path


def _scene(path: Path, base: str) -> Scene:
    """In the child, root still: root's part, then become the caller and make its own part."""
    extra = path.rooted(base)
    os.mkdir(f"{base}/leaf")
    enter_userns(also=k.CLONE_NEWNS if path.caller == "owner" else 0)
    write_file("/proc/sys/user/max_mnt_namespaces", str(LIMIT))
    scene = Scene(leaf=f"{base}/leaf", extra=extra)
    if path.caller == "owner":
        scene.mine = f"{base}/mine"
        os.mkdir(scene.mine)
        k.mount("otns-gb-mine", scene.mine, "tmpfs", 0, "size=64k")
        os.close(os.open(f"{scene.mine}/file", os.O_CREAT | os.O_WRONLY, 0o644))
        scene.extra = {**extra, **path.own(scene)}
    return scene


def run(path: Path, cycles: int) -> dict:
    """In a child: the path run `cycles` times as its caller; the counters before and after."""
    def child() -> dict:
        private_mount_ns()
        scene = _scene(path, scratch_tmpfs())
        held = []
        if path.errno == errno.ENOSPC:
            while len(held) <= LIMIT and not k.errno_of(lambda: held.append(k.open_tree(k.AT_FDCWD, scene.leaf, NS))):
                pass
        before = {"fds": _fds() - len(held), "mounts": len(k.listmount())}
        headroom = None if held else _headroom(scene.leaf)
        got = [path.call(scene) for _ in range(cycles)]
        for fd in held:
            os.close(fd)
        after = {"fds": _fds(), "mounts": len(k.listmount())}
        out = {"errnos": sorted(set(got)), "before": before, "after": after,
               "headroom": (headroom, _headroom(scene.leaf)) if headroom is not None else None}
        if held:
            out["headroom"] = (LIMIT - _charged_elsewhere(path), _headroom(scene.leaf))
        extra = scene.extra or {}
        if "pid" in extra:
            os.kill(extra["pid"], 9)
            wait_child(extra["pid"])
        if "fd" in extra:
            os.close(extra["fd"])
        if scene.mine:
            unb = (scene.extra or {}).get("unbindable")
            if unb:
                k.umount2(unb)
            out["umount"] = k.errname(k.errno_of(k.umount2, scene.mine))
        return out
    return in_child(child)


def _charged_elsewhere(path: Path) -> int:
    """Namespaces already charged to the caller's user namespace when it starts: its own."""
    return 1 if path.caller == "owner" else 0


def check(path: Path, feature: str) -> None:
    r = run(path, CYCLES)
    assert r["errnos"] == [path.errno], (f"setup: {feature}, {path.name}: the call gave "
                                         f"{[k.errname(e) for e in r['errnos']]}, expected {k.errname(path.errno)}")
    problems = []
    if r["headroom"] and r["headroom"][1] < r["headroom"][0]:
        problems.append(f"the max_mnt_namespaces headroom went from {r['headroom'][0]} to {r['headroom'][1]}: "
                        "a charge was not given back")
    if r["after"]["fds"] != r["before"]["fds"]:
        problems.append(f"{r['after']['fds'] - r['before']['fds']} fds were left")
    if r["after"]["mounts"] != r["before"]["mounts"]:
        problems.append(f"the caller's namespace went from {r['before']['mounts']} to {r['after']['mounts']} mounts")
    if r.get("umount", "success") != "success":
        problems.append(f"the caller's source mount could not be unmounted ({r['umount']}): a reference on it was kept")
    assert not problems, f"{feature}, {path.name}, {CYCLES} times: " + "; ".join(problems)


@pytest.mark.needs_feature("open_tree_namespace")
@pytest.mark.rule("GB-OPEN-TREE")
@pytest.mark.parametrize("path", OPEN_TREE_PATHS, ids=lambda p: p.name)
def test_open_tree_ns_gives_back(path: Path) -> None:
    check(path, "open_tree(OPEN_TREE_NAMESPACE)")


@pytest.mark.needs_feature("open_tree_namespace")  # the headroom is counted with it
@pytest.mark.needs_feature("fsmount_namespace")
@pytest.mark.rule("GB-FSMOUNT")
@pytest.mark.parametrize("path", FSMOUNT_PATHS, ids=lambda p: p.name)
def test_fsmount_ns_gives_back(path: Path) -> None:
    check(path, "fsmount(FSMOUNT_NAMESPACE)")


@pytest.mark.needs_feature("open_tree_namespace")
@pytest.mark.needs_feature("empty_mntns")
@pytest.mark.rule("GB-EMPTY")
@pytest.mark.parametrize("path", EMPTY_PATHS, ids=lambda p: p.name)
def test_empty_mntns_gives_back(path: Path) -> None:
    check(path, "an empty mount namespace")


@pytest.mark.needs_feature("fsmount_namespace")
@pytest.mark.rule("GB-FM-CONTEXT-SPENT")
def test_fsmount_ns_spends_the_context_when_the_namespace_cannot_be_made() -> None:
    def child():
        enter_userns(also=k.CLONE_NEWNS)
        write_file("/proc/sys/user/max_mnt_namespaces", "1")  # this namespace: no room for another
        ctx = k.tmpfs_context()
        try:
            return (k.errno_of(k.fsmount, ctx, k.FSMOUNT_NAMESPACE | k.FSMOUNT_CLOEXEC, 0),
                    k.errno_of(k.fsmount, ctx, k.FSMOUNT_CLOEXEC, 0))
        finally:
            os.close(ctx)
    first, again = in_child(child)
    assert first == errno.ENOSPC, f"setup: at max_mnt_namespaces fsmount(FSMOUNT_NAMESPACE) gave {k.errname(first)}"
    assert again == errno.EBUSY, (f"GB-FM-CONTEXT-SPENT: fsmount() again on the context after ENOSPC gave "
                                  f"{k.errname(again)}; the mount was made and the context cleaned before the "
                                  "namespace failed, so a conforming kernel gives EBUSY")


def _slab(name: str) -> int | None:
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                if line.startswith(name + " "):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@pytest.mark.needs_feature("open_tree_namespace")
@pytest.mark.needs_feature("fsmount_namespace")
@pytest.mark.rule("GB-OPEN-TREE", "GB-FSMOUNT")
def test_every_path_many_times_leaves_no_mount() -> None:
    """Each path of open_tree() and fsmount() that makes mounts SLAB_CYCLES times, as one caller
    owning its mount namespace: mnt_cache (every struct mount) may not grow by more than
    SLAB_SLACK, and the charge and the source come back."""
    paths = [p for p in OPEN_TREE_PATHS + FSMOUNT_PATHS if p.name in MAKES_MOUNTS]
    scene_path = Path("all", "owner", lambda s: 0, 0, rooted=_rooted_child(k.MS_UNBINDABLE),
                      own=lambda s: {"unbindable": _unbindable(s.mine), **_other_ns(s)})

    def child() -> dict:
        private_mount_ns()
        scene = _scene(scene_path, scratch_tmpfs())
        headroom = _headroom(scene.leaf)
        wrong, grown = {}, {}
        for p in paths:  # the scene's inherited tree has a locked unbindable child: both its paths refuse it
            name = f"{'open_tree' if p in OPEN_TREE_PATHS else 'fsmount'}: {p.name}"
            for _ in range(20):  # warm mnt_cache's per-CPU slabs for this path
                p.call(scene)
            slab = _slab("mnt_cache")
            got = {p.call(scene) for _ in range(SLAB_CYCLES)}
            if got != {p.errno}:
                wrong[name] = sorted(k.errname(e) for e in got)
            if slab is None:
                continue
            deadline = time.monotonic() + 3.0  # RCU frees the last mounts late under TCG
            while True:
                grown[name] = _slab("mnt_cache") - slab
                if grown[name] <= SLAB_SLACK or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        os.kill(scene.extra["pid"], 9)
        wait_child(scene.extra["pid"])
        os.close(scene.extra["fd"])
        k.umount2(scene.extra["unbindable"])
        return {"wrong": wrong, "grown": grown, "headroom": (headroom, _headroom(scene.leaf)),
                "umount": k.errname(k.errno_of(k.umount2, scene.mine))}
    r = in_child(child)
    assert not r["wrong"], f"setup: these paths gave other errnos: {r['wrong']}"
    assert r["headroom"][1] >= r["headroom"][0], (
        f"the max_mnt_namespaces headroom went from {r['headroom'][0]} to {r['headroom'][1]} over "
        f"{SLAB_CYCLES} cycles of {len(paths)} paths")
    assert r["umount"] == "success", f"the source mount could not be unmounted after the cycles: {r['umount']}"
    leaking = {name: n for name, n in r["grown"].items() if n > SLAB_SLACK}
    assert not leaking, (f"mnt_cache grew over {SLAB_CYCLES} cycles of a path by more than {SLAB_SLACK} objects: "
                         f"{leaking}: mounts are not freed (every path: {r['grown']})")
