"""The differential oracle: two namespaces built two ways must agree on everything observable.

A *view* is one mount namespace seen from one directory in it (the top of the tree under test):
every mount below that directory, keyed by where it sits (its mount point relative to the top
and how many mounts of the same point lie beneath it), with the whole statmount() record, its
/proc/self/mountinfo line, and what probes show (whether it is locked, which flags are locked,
whether it is bindable). Peer group and master ids are global numbers: they become labels (the
source mount that has the group, or the order in which a view first meets it) so two views
compare. `compare()` is written once for every attribute: a difference names the mount, the
attribute and both values. Where two constructions differ by design, the caller passes the
attributes to leave out, each with its rule (OR-* in docs/semantics.md).

Everything here runs in one disposable process that is root in the initial user namespace: it
may setns() into every namespace under test and come back (`hop`).
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

from . import syscalls as k

EVENT = "otns-ev"  # the source string of every event mount (propagation probes)
# statmount fields that name a mount or a namespace rather than describe it: keys and labels stand in.
IDS = ("mnt_id", "mnt_parent_id", "mnt_id_old", "mnt_parent_id_old", "mnt_ns_id", "mask")
GROUP_FIELDS = ("mnt_peer_group", "mnt_master", "propagate_from")
# The flags a lock may hold (MNT_LOCK_*: lock_mnt_tree()), as MOUNT_ATTR_* bits and the
# MS_* bit a bind remount gives for each.
LOCKABLE = ((k.MOUNT_ATTR_RDONLY, k.MS_RDONLY), (k.MOUNT_ATTR_NOSUID, k.MS_NOSUID),
            (k.MOUNT_ATTR_NODEV, k.MS_NODEV), (k.MOUNT_ATTR_NOEXEC, k.MS_NOEXEC))
MS_NOSYMFOLLOW, MS_NODIRATIME = 256, 2048
_ATIME_MS = {k.MOUNT_ATTR_RELATIME: k.MS_RELATIME, k.MOUNT_ATTR_NOATIME: k.MS_NOATIME,
             k.MOUNT_ATTR_STRICTATIME: k.MS_STRICTATIME}

Key = tuple[str, int]  # (mount point relative to the view's top, mounts of that point beneath it)


def hop(ns_fd: int, root: str) -> None:
    """Enter a mount namespace and make `root` (a path in it) this process's root and cwd."""
    k.setns(ns_fd, k.CLONE_NEWNS)
    os.chroot(root)
    os.chdir("/")


def _keys(recs: dict[int, dict], top: int) -> dict[int, Key]:
    """Each mount of the subtree under `top` (itself included) with its key."""
    children: dict[int, list[int]] = {}
    for i, r in recs.items():
        if i != top:
            children.setdefault(r["mnt_parent_id"], []).append(i)
    keys: dict[int, Key] = {}
    todo = [top]
    while todo:
        i = todo.pop()
        point = "/" if i == top else recs[i]["mnt_point"]
        if not point:  # out of the root's reach (beside a path below the top's root): not in the view
            continue
        parent = recs[i]["mnt_parent_id"]
        level = 0
        while parent in keys and keys[parent][0] == point:
            level, parent = level + 1, recs[parent]["mnt_parent_id"]
        keys[i] = (point, level)
        todo.extend(children.get(i, ()))
    return keys


def records(ns_id: int = 0) -> dict[int, dict]:
    """Every mount of the namespace by id (the caller's own: every mount its root reaches, and
    the mount at its root, which listmount() leaves out)."""
    out = {}
    ids = k.listmount(ns_id)
    if not ns_id:
        ids.append(k.mnt_id_of("/"))
    for i in dict.fromkeys(ids):
        try:
            out[i] = k.statmount_record(i, ns_id)
        except OSError as e:
            if e.errno != errno.ENOENT:  # gone meanwhile
                raise
    for r in out.values():
        consistent(r)
    return out


def consistent(r: dict) -> None:
    """What every record must say of itself, whichever way its namespace was made: a shared
    mount belongs to a peer group (a nonzero id), a slave has a master. Both constructions of
    the oracle could lose an id alike and still agree; this catches that."""
    prop = r["mnt_propagation"] or 0
    where = f"mount {r['mnt_id']} at {r['mnt_point']!r}"
    assert not (prop & k.MS_SHARED) or r["mnt_peer_group"], f"{where} is shared but has no peer group id"
    assert not (prop & k.MS_SLAVE) or r["mnt_master"], f"{where} is a slave but has no master id"


def labels_of(recs: dict[int, dict], prefix: str) -> dict[int, str]:
    """Peer group id -> a label naming the mount that has it (path in the namespace seen from
    where this process stands), for the groups of one namespace."""
    out: dict[int, str] = {}
    for r in sorted(recs.values(), key=lambda r: (r["mnt_point"] or "", r["mnt_id"])):
        g = r["mnt_peer_group"]
        if g and g not in out:
            out[g] = f"{prefix}:{r['mnt_point']}"
    return out


def _mountinfo(proc_fd: int) -> dict[int, list[str]]:
    """This process's mountinfo (its namespace, from its root) by old mount id: the fields of each line."""
    fd = os.open("self/mountinfo", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    lines = b"".join(chunks).decode(errors="replace").splitlines()
    return {int(f[0]): f for f in (line.split() for line in lines)}


@dataclass
class View:
    """One namespace's tree as seen from its top: attributes per mount key."""
    mounts: dict[Key, dict[str, object]] = field(default_factory=dict)
    paths: dict[Key, str] = field(default_factory=dict)  # key -> a path that reaches it (topmost only)


class Labeler:
    """Turns group ids into labels: known groups by name, others by the order a view meets them."""

    def __init__(self, known: dict[int, str]) -> None:
        self.known = known

    def for_view(self):
        seen: dict[int, str] = {}

        def label(g: int) -> str:
            if not g:
                return "-"
            if g in self.known:
                return self.known[g]
            return seen.setdefault(g, f"new#{len(seen)}")
        return label


def _attr_to_ms(attr: int) -> int:
    ms = k.MS_BIND | k.MS_REMOUNT
    for bit, msbit in LOCKABLE:
        if attr & bit:
            ms |= msbit
    if attr & k.MOUNT_ATTR_NOSYMFOLLOW:
        ms |= MS_NOSYMFOLLOW
    if attr & k.MOUNT_ATTR_NODIRATIME:
        ms |= MS_NODIRATIME
    return ms | _ATIME_MS.get(attr & k.MOUNT_ATTR__ATIME, 0)


def _restore(path: str, attr: int) -> None:
    """Put a mount's flags back as they were after a probe changed them."""
    k.mount_setattr(k.AT_FDCWD, path, 0, attr & ~k.MOUNT_ATTR_IDMAP, k.MOUNT_ATTR__ATIME | 0xF
                    | k.MOUNT_ATTR_NOSYMFOLLOW | k.MOUNT_ATTR_NODIRATIME)


def probe_locks(path: str, attr: int) -> dict[str, object]:
    """What a mount lets this process change, each change undone when it worked: umount with
    MNT_EXPIRE (EINVAL for a locked mount or the root; a mount that is not locked is only marked,
    EAGAIN/EBUSY), clearing each flag that is set and changing the atime setting, by
    mount_setattr() and by a bind remount, and cloning it (EINVAL when unbindable)."""
    out: dict[str, object] = {"umount_expire": k.errname(k.errno_of(k.umount2, path, 4))}  # MNT_EXPIRE
    changes = [(f"clear {bit:#x}", attr & ~bit) for bit, _ in LOCKABLE if attr & bit]
    atime = attr & k.MOUNT_ATTR__ATIME
    other = k.MOUNT_ATTR_STRICTATIME if atime == k.MOUNT_ATTR_RELATIME else k.MOUNT_ATTR_RELATIME
    changes.append(("atime", (attr & ~k.MOUNT_ATTR__ATIME) | other))
    for what, new in changes:
        e = k.errno_of(k.mount_setattr, k.AT_FDCWD, path, 0, new & ~k.MOUNT_ATTR_IDMAP,
                       (attr & ~new) & ~k.MOUNT_ATTR_IDMAP | k.MOUNT_ATTR__ATIME)
        if not e:
            _restore(path, attr)
        out[f"setattr {what}"] = k.errname(e)
        e = k.errno_of(k.mount, None, path, None, _attr_to_ms(new))
        if not e:
            _restore(path, attr)
        out[f"remount {what}"] = k.errname(e)
    out["clone"] = k.errname(k.errno_of(k.open_tree, k.AT_FDCWD, path, k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC))
    return out


def observe(proc_fd: int, labeler: Labeler, probes: bool = True) -> View:
    """The view from this process's root: every mount below it but event mounts."""
    recs = records()
    top = k.mnt_id_of("/")
    keys = {i: key for i, key in _keys(recs, top).items() if not (recs[i]["sb_source"] or "").startswith(EVENT)}
    info = _mountinfo(proc_fd)
    label = labeler.for_view()
    view = View()
    for i in sorted(keys, key=lambda i: keys[i]):
        r = recs[i]
        m: dict[str, object] = {n: v for n, v in r.items() if n not in IDS and n not in GROUP_FIELDS}
        m.update({n: label(r[n]) for n in GROUP_FIELDS})
        parent = r["mnt_parent_id"]
        m["parent"] = keys.get(parent, "top's parent") if i != top else "top's parent"
        line = info.get(r["mnt_id_old"])
        m["mountinfo"] = _normal_line(line, label) if line else "not listed"
        m["mountinfo dev"] = line[2] if line else "not listed"
        view.mounts[keys[i]] = m
    for i in sorted(keys, key=lambda i: keys[i]):
        point = recs[i]["mnt_point"] or "/"
        try:
            reached = k.mnt_id_of(point)
        except OSError:
            continue
        if reached == i:
            view.paths[keys[i]] = point
            if probes:
                view.mounts[keys[i]].update(probe_locks(point, recs[i]["mnt_attr"]))
    return view


def _normal_line(f: list[str], label) -> str:
    """A mountinfo line without its ids and device (fields 1-3: the device is an attribute of
    its own), its optional fields' group ids as labels."""
    sep = f.index("-")
    opt = []
    for o in f[6:sep]:
        name, _, num = o.partition(":")
        opt.append(f"{name}:{label(int(num))}" if num.isdigit() else o)
    return " ".join(f[3:6] + sorted(opt) + f[sep:])


def mount_events(view: View, tag: str) -> None:
    """Mount a tagged tmpfs on the `ev` directory of every mount of the view that has one; where
    each copy arrives shows what propagates."""
    for n, (_key, path) in enumerate(sorted(view.paths.items())):
        ev = os.path.join(path, "ev")
        if os.path.isdir(ev):
            k.mount(f"{EVENT}-{tag}-{n}", ev, "tmpfs", 0, "size=64k")


def arrivals(tags: dict[str, str]) -> list[tuple[str, str]]:
    """Where the event mounts of this namespace sit, below this process's root: (origin, mount
    point), the origin of each tag named by `tags` (tag prefix -> name). Events stacked on one
    point lie in the order they were mounted, so their levels are left out."""
    recs = records()
    keys = _keys(recs, k.mnt_id_of("/"))
    out = []
    for i, (point, _) in keys.items():
        src = recs[i]["sb_source"] or ""
        if src.startswith(EVENT + "-"):
            tag, _, n = src[len(EVENT) + 1:].partition("-")
            out.append((f"{tags.get(tag, tag)}-{n}", point))
    return sorted(out)


@dataclass(frozen=True)
class Exception_:
    """An attribute where the two constructions differ by design: its rule (OR-*), the attribute
    (or the start of its name), and what each construction must show there (None: anything)."""
    rule: str
    attribute: str
    expect: tuple[object, object] | None = None

    def covers(self, attr: str) -> bool:
        return attr == self.attribute or (self.attribute.endswith("*") and attr.startswith(self.attribute[:-1]))


def compare(a: View, b: View, names: tuple[str, str], skip: tuple[Exception_, ...] = ()) -> list[str]:
    """Every difference between two views: a mount only one has, or an attribute of a mount
    whose values differ (with both values)."""
    diffs = []
    for key in sorted(set(a.mounts) | set(b.mounts)):
        ma, mb = a.mounts.get(key), b.mounts.get(key)
        where = f"mount {key[0]}" + (f" (level {key[1]})" if key[1] else "")
        if ma is None or mb is None:
            has = names[0] if ma is not None else names[1]
            diffs.append(f"{where}: only in {has}: {ma or mb}")
            continue
        for attr in sorted(set(ma) | set(mb)):
            va, vb = ma.get(attr, "absent"), mb.get(attr, "absent")
            rule = next((x for x in skip if x.covers(attr)), None)
            if rule is None and va != vb:
                diffs.append(f"{where}: {attr}: {names[0]} {va!r}, {names[1]} {vb!r}")
            elif rule is not None and rule.expect is not None and (va, vb) != rule.expect:
                diffs.append(f"{where}: {attr}: {names[0]} {va!r}, {names[1]} {vb!r} "
                             f"({rule.rule} expects {rule.expect[0]!r}, {rule.expect[1]!r})")
    return diffs
