"""A foreign caller's copy has its mount flags locked (docs/semantics.md OT-FOREIGN-FLAGS).

lock_mnt_tree() locks read-only, nosuid, nodev and noexec on every mount of a foreign caller's
new tree where they are set, and the atime setting always. The caller owns the new namespace
(it may mount, unmount its own mounts, change propagation), but clearing a locked flag, by
mount_setattr() or by a bind remount, is EPERM. Each flag is checked alone, each way, against a
privileged caller's copy of the same mount, where the same change must work (so a failure to
clear is the lock, not the test).
"""
from __future__ import annotations

import errno
from dataclasses import dataclass

import pytest

from . import syscalls as k
from .helpers import enter_userns, in_child, private_mount_ns, scratch_tmpfs

NS = k.OPEN_TREE_NAMESPACE | k.OPEN_TREE_CLOEXEC

pytestmark = [pytest.mark.needs_feature("open_tree_namespace"), pytest.mark.rule("OT-FOREIGN-FLAGS")]


@dataclass(frozen=True)
class Flag:
    set_attr: k.ctypes.Array  # mount_setattr argument that gives the source the flag
    clear_attr: k.ctypes.Array  # ... that takes it away again
    remount_flags: int  # MS_REMOUNT|MS_BIND flags that take it away
    attr_bit: int  # the MOUNT_ATTR_* bits statmount shows for it
    attr_mask: int  # which statmount bits to compare


def _plain(bit: int) -> Flag:
    return Flag(k.mount_attr(attr_set=bit), k.mount_attr(attr_clr=bit), k.MS_REMOUNT | k.MS_BIND, bit, bit)


FLAGS = {
    "rdonly": _plain(k.MOUNT_ATTR_RDONLY),
    "nosuid": _plain(k.MOUNT_ATTR_NOSUID),
    "nodev": _plain(k.MOUNT_ATTR_NODEV),
    "noexec": _plain(k.MOUNT_ATTR_NOEXEC),
    # noatime -> relatime (the atime setting is an enum: clear all of _ATIME, set the new one).
    "noatime": Flag(k.mount_attr(attr_set=k.MOUNT_ATTR_NOATIME, attr_clr=k.MOUNT_ATTR__ATIME),
                    k.mount_attr(attr_set=k.MOUNT_ATTR_RELATIME, attr_clr=k.MOUNT_ATTR__ATIME),
                    k.MS_REMOUNT | k.MS_BIND | k.MS_RELATIME, k.MOUNT_ATTR_NOATIME, k.MOUNT_ATTR__ATIME),
    # The atime setting is locked even when it is the default: relatime -> strictatime.
    "relatime": Flag(k.mount_attr(attr_set=k.MOUNT_ATTR_RELATIME, attr_clr=k.MOUNT_ATTR__ATIME),
                     k.mount_attr(attr_set=k.MOUNT_ATTR_STRICTATIME, attr_clr=k.MOUNT_ATTR__ATIME),
                     k.MS_REMOUNT | k.MS_BIND | k.MS_STRICTATIME, k.MOUNT_ATTR_RELATIME, k.MOUNT_ATTR__ATIME),
}
WAYS = ("mount_setattr", "remount")


def try_to_clear(flag: Flag, way: str, foreign: bool) -> tuple[int, int, int]:
    """In a child: copy a tmpfs carrying the flag (as a foreign caller or not), enter the copy and
    try to take the flag away. Returns (attr before, errno, attr after) of the copy's mount."""
    def child():
        private_mount_ns()
        t = scratch_tmpfs()
        k.mount_setattr(k.AT_FDCWD, t, 0, flag.set_attr)
        if foreign:
            enter_userns()
        fd = k.open_tree(k.AT_FDCWD, t, NS)
        k.setns(fd, k.CLONE_NEWNS)
        top = k.listmount()[0]
        before = k.statmount(top).attr & flag.attr_mask
        if way == "mount_setattr":
            err = k.errno_of(k.mount_setattr, k.AT_FDCWD, "/", 0, flag.clear_attr)
        else:
            err = k.errno_of(k.mount, None, "/", None, flag.remount_flags)
        return before, err, k.statmount(top).attr & flag.attr_mask
    return in_child(child)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", list(FLAGS))
def test_foreign_copy_flag_is_locked(name: str, way: str) -> None:
    flag = FLAGS[name]
    before, err, after = try_to_clear(flag, way, foreign=False)
    assert (before, err) == (flag.attr_bit, 0) and after != flag.attr_bit, (
        f"control: in a privileged caller's copy, {way} could not change {name} "
        f"(before {before:#x}, {k.errname(err)}, after {after:#x}); the test cannot tell a lock from that")
    before, err, after = try_to_clear(flag, way, foreign=True)
    assert before == flag.attr_bit, f"OT-FOREIGN-FLAGS: the foreign caller's copy lost {name} (statmount attr {before:#x})"
    assert err == errno.EPERM, (f"OT-FOREIGN-FLAGS: in a foreign caller's copy, {way} changing {name} gave "
                                f"{k.errname(err)}; the flag is locked there, a conforming kernel gives EPERM")
    assert after == flag.attr_bit, f"OT-FOREIGN-FLAGS: {way} changed the locked {name} although it failed"
