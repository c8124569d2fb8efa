"""Thin ctypes wrappers for the mount-namespace syscalls (each machine's numbers, uapi layouts)."""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import struct
from dataclasses import dataclass

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

# Syscall numbers from 424 (pidfd_send_signal) on are one table for every architecture
# (include/uapi/asm-generic/unistd.h, scripts/syscall.tbl); older ones differ by machine.
SHARED_NUMBERS = {
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "clone3": 435,
    "mount_setattr": 442, "statmount": 457, "listmount": 458, "open_tree_attr": 467,
}
# Keyed by `uname -m`: the machines of kernels/arch.py's ARCHES (arch/x86/entry/syscalls/syscall_64.tbl).
NUMBERS_BY_MACHINE = {
    "x86_64": {"mount": 165, "umount2": 166, "pivot_root": 155, "capget": 125, "capset": 126, "unshare": 272,
               "setns": 308, "statx": 332, "bpf": 321},
}


def numbers(machine: str) -> dict[str, int]:
    """Every syscall number the suite uses, on this machine (KeyError naming it when there are none)."""
    if machine not in NUMBERS_BY_MACHINE:
        raise KeyError(f"conformance/syscalls.py has no syscall numbers for machine {machine!r}")
    return {**SHARED_NUMBERS, **NUMBERS_BY_MACHINE[machine]}


NR = numbers(platform.machine())
NR_MOUNT = NR["mount"]
NR_UMOUNT2 = NR["umount2"]
NR_PIVOT_ROOT = NR["pivot_root"]
NR_CAPGET = NR["capget"]
NR_CAPSET = NR["capset"]
NR_UNSHARE = NR["unshare"]
NR_SETNS = NR["setns"]
NR_OPEN_TREE = NR["open_tree"]
NR_MOVE_MOUNT = NR["move_mount"]
NR_FSOPEN = NR["fsopen"]
NR_FSCONFIG = NR["fsconfig"]
NR_FSMOUNT = NR["fsmount"]
NR_CLONE3 = NR["clone3"]
NR_MOUNT_SETATTR = NR["mount_setattr"]
NR_STATMOUNT = NR["statmount"]
NR_LISTMOUNT = NR["listmount"]
NR_OPEN_TREE_ATTR = NR["open_tree_attr"]
NR_STATX = NR["statx"]
NR_BPF = NR["bpf"]
STATX_MNT_ID_UNIQUE = 0x4000

AT_FDCWD = -100
OPEN_TREE_CLONE = 0x1
OPEN_TREE_NAMESPACE = 0x2
OPEN_TREE_CLOEXEC = os.O_CLOEXEC  # 0x80000
AT_SYMLINK_NOFOLLOW = 0x100
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
FLAG_NAMES = {
    OPEN_TREE_CLONE: "OPEN_TREE_CLONE", OPEN_TREE_NAMESPACE: "OPEN_TREE_NAMESPACE",
    OPEN_TREE_CLOEXEC: "OPEN_TREE_CLOEXEC", AT_SYMLINK_NOFOLLOW: "AT_SYMLINK_NOFOLLOW",
    AT_NO_AUTOMOUNT: "AT_NO_AUTOMOUNT", AT_EMPTY_PATH: "AT_EMPTY_PATH", AT_RECURSIVE: "AT_RECURSIVE",
}
KNOWN_FLAGS = sum(FLAG_NAMES)

FSMOUNT_CLOEXEC = 0x1
FSMOUNT_NAMESPACE = 0x2
FSMOUNT_KNOWN = FSMOUNT_CLOEXEC | FSMOUNT_NAMESPACE  # fsmount()'s own flag check (7.1+)
FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
MOUNT_ATTR_SIZE_VER0 = 32
# FSMOUNT_VALID_FLAGS in fs/namespace.c: the attributes fsmount() accepts (not IDMAP)
FSMOUNT_VALID_ATTR = (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC
                      | MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_NOSYMFOLLOW)

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_FS = 0x00000200
UNSHARE_EMPTY_MNTNS = 0x00100000
CLONE_EMPTY_MNTNS = 1 << 37
CLONE_VM, CLONE_SIGHAND, CLONE_PIDFD, CLONE_THREAD = 0x100, 0x800, 0x1000, 0x10000
CLONE_FILES, CLONE_SYSVSEM, CLONE_NEWTIME = 0x400, 0x40000, 0x80
CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x02000000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
# check_unshare_flags() in kernel/fork.c (7.2): every other bit of unshare's int is EINVAL
UNSHARE_KNOWN = (CLONE_THREAD | CLONE_FS | CLONE_SIGHAND | CLONE_VM | CLONE_FILES | CLONE_SYSVSEM
                 | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
                 | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME | UNSHARE_EMPTY_MNTNS)
# clone3_args_valid() in kernel/fork.c (7.2): the legacy 32 bits, then CLONE_CLEAR_SIGHAND (32)
# .. CLONE_EMPTY_MNTNS (37); every higher bit is unknown
CLONE3_KNOWN = (1 << 38) - 1

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_UNBINDABLE = 1 << 17
MNT_DETACH = 2

NS_GET_USERNS = 0xB701
NS_GET_PARENT = 0xB702
NS_GET_NSTYPE = 0xB703
NS_GET_OWNER_UID = 0xB704
NS_GET_MNTNS_ID = 0x8008B705
NS_MNT_GET_INFO = 0x8010B70A  # _IOR(0xb7, 10, struct mnt_ns_info), 16 bytes
STATX_ATTR_AUTOMOUNT = 0x1000

LSMT_ROOT = 0xFFFFFFFFFFFFFFFF
LISTMOUNT_REVERSE = 1
STATMOUNT_SB_BASIC = 0x1
STATMOUNT_MNT_BASIC = 0x2
STATMOUNT_PROPAGATE_FROM = 0x4
STATMOUNT_MNT_ROOT = 0x8
STATMOUNT_MNT_POINT = 0x10
STATMOUNT_FS_TYPE = 0x20
STATMOUNT_MNT_NS_ID = 0x40
MNT_ID_REQ_SIZE_VER1 = 32
STATMOUNT_HEADER = 512
# struct statmount offsets (include/uapi/linux/mount.h)
_SM_MASK, _SM_FS_TYPE, _SM_MNT_ID, _SM_PARENT_ID = 8, 36, 40, 48
_SM_ATTR, _SM_PROPAGATION, _SM_PEER_GROUP, _SM_MASTER = 64, 72, 80, 88
_SM_MNT_ROOT, _SM_MNT_POINT, _SM_MNT_NS_ID = 104, 108, 112
MOUNT_PROPAGATION_SHARED = 1 << 20  # mnt_propagation uses MS_* bits
MOUNT_PROPAGATION_SLAVE = 1 << 19
MOUNT_PROPAGATION_UNBINDABLE = 1 << 17


def _check(ret: int) -> int:
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return ret


def _path(p: str | bytes | None):
    return None if p is None else (p.encode() if isinstance(p, str) else p)


def open_tree(dfd: int, path: str | bytes | None, flags: int) -> int:
    """open_tree(2); path None passes a NULL pointer."""
    return _check(libc.syscall(NR_OPEN_TREE, ctypes.c_int(dfd), _path(path), ctypes.c_uint(flags)))


def open_tree_raw(dfd: int, path_ptr: int, flags: int) -> int:
    """open_tree with an arbitrary pointer value (for EFAULT checks)."""
    return _check(libc.syscall(NR_OPEN_TREE, ctypes.c_int(dfd), ctypes.c_void_p(path_ptr), ctypes.c_uint(flags)))


def mount_attr(attr_set: int = 0, attr_clr: int = 0, propagation: int = 0, userns_fd: int = 0) -> ctypes.Array:
    """struct mount_attr (VER0: attr_set, attr_clr, propagation, userns_fd)."""
    return ctypes.create_string_buffer(struct.pack("<QQQQ", attr_set, attr_clr, propagation, userns_fd),
                                       MOUNT_ATTR_SIZE_VER0)


def open_tree_attr(dfd: int, path: str | None, flags: int, attr: ctypes.Array | None = None) -> int:
    """open_tree_attr(2); attr None passes NULL with size 0."""
    size = MOUNT_ATTR_SIZE_VER0 if attr is not None else 0
    return _check(libc.syscall(NR_OPEN_TREE_ATTR, ctypes.c_int(dfd), _path(path), ctypes.c_uint(flags),
                               attr, ctypes.c_size_t(size)))


def statx_attributes(path: str, flags: int = AT_NO_AUTOMOUNT) -> int:
    """stx_attributes of statx(2) (struct statx: u32 mask, u32 blksize, u64 attributes)."""
    buf = ctypes.create_string_buffer(256)
    _check(libc.syscall(NR_STATX, ctypes.c_int(AT_FDCWD), _path(path), ctypes.c_int(flags),
                        ctypes.c_uint(0x7FF), buf))  # STATX_BASIC_STATS
    return struct.unpack_from("<Q", buf.raw, 8)[0]


def setns(fd: int, nstype: int) -> None:
    _check(libc.syscall(NR_SETNS, ctypes.c_int(fd), ctypes.c_int(nstype)))


def unshare(flags: int) -> None:
    _check(libc.syscall(NR_UNSHARE, ctypes.c_ulong(flags)))


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(libc.syscall(NR_MOUNT, _path(source), _path(target), _path(fstype), ctypes.c_ulong(flags), _path(data)))


def umount2(target: str, flags: int = 0) -> None:
    _check(libc.syscall(NR_UMOUNT2, _path(target), ctypes.c_int(flags)))


def fsopen(fstype: str, flags: int = FSOPEN_CLOEXEC) -> int:
    return _check(libc.syscall(NR_FSOPEN, _path(fstype), ctypes.c_uint(flags)))


def fsconfig(fd: int, cmd: int, key: str | None = None, value: str | None = None, aux: int = 0) -> None:
    _check(libc.syscall(NR_FSCONFIG, ctypes.c_int(fd), ctypes.c_uint(cmd), _path(key), _path(value), ctypes.c_int(aux)))


def fsmount(fs_fd: int, flags: int, attr: int = 0) -> int:
    return _check(libc.syscall(NR_FSMOUNT, ctypes.c_int(fs_fd), ctypes.c_uint(flags), ctypes.c_uint(attr)))


def mount_setattr(dfd: int, path: str, flags: int, attr_set: int | ctypes.Array, attr_clr: int = 0,
                  propagation: int = 0) -> None:
    """attr_set is the attributes to set, or a whole struct mount_attr made by mount_attr()."""
    if isinstance(attr_set, int):
        attr = struct.pack("<QQQQ", attr_set, attr_clr, propagation, 0)  # struct mount_attr, VER0
    else:
        attr = attr_set.raw
    _check(libc.syscall(NR_MOUNT_SETATTR, ctypes.c_int(dfd), _path(path), ctypes.c_uint(flags), attr,
                        ctypes.c_size_t(len(attr))))


def move_mount(from_fd: int, from_path: str, to_fd: int, to_path: str, flags: int) -> None:
    _check(libc.syscall(NR_MOVE_MOUNT, ctypes.c_int(from_fd), _path(from_path), ctypes.c_int(to_fd),
                        _path(to_path), ctypes.c_uint(flags)))


def fs_context(fstype: str) -> int:
    """A created superblock of fstype, ready for fsmount()."""
    fd = fsopen(fstype)
    try:
        fsconfig(fd, FSCONFIG_CMD_CREATE)
    except OSError:
        os.close(fd)
        raise
    return fd


def tmpfs_context() -> int:
    return fs_context("tmpfs")


class _CloneArgs(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal",
                                               "stack", "stack_size", "tls", "set_tid", "set_tid_size", "cgroup")]


def clone3(flags: int) -> int:
    """clone3 with SIGCHLD; 0 in the child, the pid in the parent. The child must os._exit."""
    args = _CloneArgs(flags=flags, exit_signal=17)
    return _check(libc.syscall(NR_CLONE3, ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args))))


def clone3_pidfd(flags: int) -> tuple[int, int]:
    """clone3 with CLONE_PIDFD: (0, -1) in the child, (pid, pidfd) in the parent."""
    pidfd = ctypes.c_int(-1)
    args = _CloneArgs(flags=flags | CLONE_PIDFD, pidfd=ctypes.addressof(pidfd), exit_signal=17)
    pid = _check(libc.syscall(NR_CLONE3, ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args))))
    return (pid, pidfd.value) if pid else (0, -1)


def ns_ioctl(fd: int, request: int) -> int:
    return fcntl.ioctl(fd, request)


def mntns_id(fd: int) -> int:
    buf = bytearray(8)
    fcntl.ioctl(fd, NS_GET_MNTNS_ID, buf)
    return int.from_bytes(buf, "little")


def mnt_ns_nr_mounts(fd: int) -> int:
    """NS_MNT_GET_INFO's nr_mounts (struct mnt_ns_info: u32 size, u32 nr_mounts, u64 id)."""
    buf = bytearray(struct.pack("<IIQ", 16, 0, 0))
    fcntl.ioctl(fd, NS_MNT_GET_INFO, buf)
    return struct.unpack_from("<I", buf, 4)[0]


def owner_uid(fd: int) -> int:
    buf = bytearray(4)
    fcntl.ioctl(fd, NS_GET_OWNER_UID, buf)
    return int.from_bytes(buf, "little")


def own_mntns_id() -> int:
    """The caller's mount namespace id; without /proc (e.g. after setns into a copy of "/"),
    from statmount of its first mount."""
    try:
        fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return statmount(listmount()[0]).ns_id
    try:
        return mntns_id(fd)
    finally:
        os.close(fd)


def _mnt_id_req(mnt_id: int, ns_id: int, param: int = 0) -> ctypes.Array:
    return ctypes.create_string_buffer(struct.pack("<IIQQQ", MNT_ID_REQ_SIZE_VER1, 0, mnt_id, param, ns_id), 32)


def listmount(ns_id: int = 0, mnt_id: int = LSMT_ROOT, flags: int = 0, limit: int = 4096) -> list[int]:
    """Every mount id of a namespace (0: the caller's own), paging until done."""
    ids: list[int] = []
    last = 0
    while True:
        req = _mnt_id_req(mnt_id, ns_id, last)
        buf = (ctypes.c_uint64 * limit)()
        n = _check(libc.syscall(NR_LISTMOUNT, req, buf, ctypes.c_size_t(limit), ctypes.c_uint(flags)))
        ids.extend(buf[:n])
        if n < limit:
            return ids
        last = ids[-1]


@dataclass(frozen=True)
class MountInfo:
    mnt_id: int
    parent_id: int
    fs_type: str
    root: str
    point: str
    attr: int
    propagation: int
    peer_group: int
    master: int
    ns_id: int


def statmount(mnt_id: int, ns_id: int = 0,
              mask: int = (STATMOUNT_MNT_BASIC | STATMOUNT_FS_TYPE | STATMOUNT_MNT_ROOT
                           | STATMOUNT_MNT_POINT | STATMOUNT_MNT_NS_ID)) -> MountInfo:
    size = 1 << 14
    while True:
        req = _mnt_id_req(mnt_id, ns_id, mask)  # statmount's param is the mask
        buf = ctypes.create_string_buffer(size)
        ret = libc.syscall(NR_STATMOUNT, req, buf, ctypes.c_size_t(size), ctypes.c_uint(0))
        if ret < 0 and ctypes.get_errno() == errno.EOVERFLOW:
            size *= 2
            continue
        _check(ret)
        raw = buf.raw
        break

    def u64(off: int) -> int:
        return struct.unpack_from("<Q", raw, off)[0]

    def string(off: int, bit: int) -> str:
        if not (u64(_SM_MASK) & bit):
            return ""
        start = STATMOUNT_HEADER + struct.unpack_from("<I", raw, off)[0]
        return raw[start:raw.index(b"\0", start)].decode(errors="replace")

    return MountInfo(u64(_SM_MNT_ID), u64(_SM_PARENT_ID), string(_SM_FS_TYPE, STATMOUNT_FS_TYPE),
                     string(_SM_MNT_ROOT, STATMOUNT_MNT_ROOT), string(_SM_MNT_POINT, STATMOUNT_MNT_POINT),
                     u64(_SM_ATTR), u64(_SM_PROPAGATION), u64(_SM_PEER_GROUP), u64(_SM_MASTER),
                     u64(_SM_MNT_NS_ID))


def mnt_id_of(path: str) -> int:
    """The unique mount id of the mount path resolves to (statx; works without /proc)."""
    buf = ctypes.create_string_buffer(256)
    _check(libc.syscall(NR_STATX, ctypes.c_int(AT_FDCWD), _path(path), ctypes.c_int(0),
                        ctypes.c_uint(STATX_MNT_ID_UNIQUE), buf))
    if not struct.unpack_from("<I", buf.raw, 0)[0] & STATX_MNT_ID_UNIQUE:
        raise OSError(errno.EOPNOTSUPP, "statx gave no unique mount id")
    return struct.unpack_from("<Q", buf.raw, 144)[0]  # stx_mnt_id


def mounts_of(ns_id: int = 0) -> list[MountInfo]:
    return [statmount(i, ns_id) for i in listmount(ns_id)]


def errno_of(fn, *args) -> int:
    """Call fn; 0 if it succeeded (closing any fd it returned), else the errno."""
    try:
        fd = fn(*args)
    except OSError as e:
        return e.errno
    if isinstance(fd, int) and fd >= 0:
        os.close(fd)
    return 0


def errname(e: int) -> str:
    return "success" if e == 0 else errno.errorcode.get(e, str(e))


def flag_names(flags: int) -> str:
    names = [n for bit, n in FLAG_NAMES.items() if flags & bit]
    rest = flags & ~KNOWN_FLAGS
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "0"


# Every STATMOUNT_* request of include/uapi/linux/mount.h (7.2): SB_BASIC .. MNT_GIDMAP.
STATMOUNT_ALL = 0x7FFF
_SM_U32 = {"sb_dev_major": 16, "sb_dev_minor": 20, "sb_flags": 32, "mnt_id_old": 56, "mnt_parent_id_old": 60}
_SM_U64 = {"mask": 8, "sb_magic": 24, "mnt_id": 40, "mnt_parent_id": 48, "mnt_attr": 64, "mnt_propagation": 72,
           "mnt_peer_group": 80, "mnt_master": 88, "propagate_from": 96, "mnt_ns_id": 112, "supported_mask": 144}
# [str] fields: (offset of the string's place, offset of its count for an array, or None)
_SM_STR = {"mnt_opts": (4, None), "fs_type": (36, None), "mnt_root": (104, None), "mnt_point": (108, None),
           "fs_subtype": (120, None), "sb_source": (124, None), "opt_array": (132, 128),
           "opt_sec_array": (140, 136), "mnt_uidmap": (156, 152), "mnt_gidmap": (164, 160)}
_SM_STR_BIT = {"mnt_opts": 0x80, "fs_type": 0x20, "mnt_root": 0x8, "mnt_point": 0x10, "fs_subtype": 0x100,
               "sb_source": 0x200, "opt_array": 0x400, "opt_sec_array": 0x800, "mnt_uidmap": 0x2000,
               "mnt_gidmap": 0x4000}


def statmount_record(mnt_id: int, ns_id: int = 0, mask: int = STATMOUNT_ALL) -> dict[str, object]:
    """The whole struct statmount the kernel fills for this mask, field by field: numbers as ints,
    strings as str, string arrays as tuples; a field the kernel did not write (its bit absent
    from the returned mask) is None."""
    size = 1 << 14
    while True:
        req = _mnt_id_req(mnt_id, ns_id, mask)
        buf = ctypes.create_string_buffer(size)
        ret = libc.syscall(NR_STATMOUNT, req, buf, ctypes.c_size_t(size), ctypes.c_uint(0))
        if ret < 0 and ctypes.get_errno() == errno.EOVERFLOW and size < 1 << 20:
            size *= 2
            continue
        _check(ret)
        raw = buf.raw
        break
    rec: dict[str, object] = {n: struct.unpack_from("<I", raw, o)[0] for n, o in _SM_U32.items()}
    rec.update({n: struct.unpack_from("<Q", raw, o)[0] for n, o in _SM_U64.items()})
    got = rec["mask"]
    for name, (off, count_off) in _SM_STR.items():
        if not got & _SM_STR_BIT[name]:
            rec[name] = None
            continue
        pos = STATMOUNT_HEADER + struct.unpack_from("<I", raw, off)[0]
        if count_off is None:
            rec[name] = raw[pos:raw.index(b"\0", pos)].decode(errors="replace")
            continue
        items = []
        for _ in range(struct.unpack_from("<I", raw, count_off)[0]):
            end = raw.index(b"\0", pos)
            items.append(raw[pos:end].decode(errors="replace"))
            pos = end + 1
        rec[name] = tuple(items)
    return rec
