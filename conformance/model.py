"""A small explicit reference model of open_tree()'s flag and error rules (docs/semantics.md: OT-FLAGS-* to OT-DIR).

Given the flags, what the caller may do and what the path is, it says what a conforming
kernel returns: an errno, or the kind of fd, and the rule (conformance/rules.py) that decides
it. Kept apart from the tests that use it so it can be checked on its own
(tests/test_flag_model.py) and read as the specification it encodes.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field

from .syscalls import (
    AT_EMPTY_PATH,
    AT_NO_AUTOMOUNT,
    AT_RECURSIVE,
    AT_SYMLINK_NOFOLLOW,
    OPEN_TREE_CLOEXEC,
    OPEN_TREE_CLONE,
    OPEN_TREE_NAMESPACE,
)

# The bits open_tree() knew before OPEN_TREE_NAMESPACE existed.
BASE_FLAGS = (OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT
              | AT_EMPTY_PATH | AT_RECURSIVE)


@dataclass(frozen=True)
class Caller:
    has_feature: bool = True  # the kernel implements OPEN_TREE_NAMESPACE
    cap_current_userns: bool = True  # CAP_SYS_ADMIN in the caller's current user namespace
    may_mount: bool = True  # CAP_SYS_ADMIN over the user namespace owning the caller's mount namespace


@dataclass(frozen=True)
class Target:
    """What path lookup finds, as the flags would resolve it."""

    lookup_errno: int = 0  # ENOENT, ELOOP, ... from the lookup itself
    is_dir: bool = True
    empty_path: bool = False  # the path string is "" (valid only with AT_EMPTY_PATH)
    symlink: bool = False  # the path names a symlink (to a directory)
    unbindable: bool = False  # the mount at the path is unbindable
    foreign_mount: bool = False  # the mount belongs to another mount namespace


@dataclass(frozen=True)
class Expect:
    errno: int  # 0 for success
    kind: str = ""  # mntns | detached | opath, on success
    # The rule that decides the result. An fd without OPEN_TREE_NAMESPACE is OT-FLAGS-UNKNOWN's
    # other side (the known bits are accepted); OPEN_TREE_CLONE's own refusals are no rule here.
    rule: str = field(default="", compare=False)

    def __str__(self) -> str:
        return errno.errorcode.get(self.errno, str(self.errno)) if self.errno else f"an fd ({self.kind})"


def known_flags(caller: Caller) -> int:
    return BASE_FLAGS | (OPEN_TREE_NAMESPACE if caller.has_feature else 0)


def expected(flags: int, caller: Caller = Caller(), target: Target = Target()) -> Expect:
    """The result a conforming kernel gives, applying the rules in the kernel's order."""
    # 1. Unknown bits (on a kernel without the feature, OPEN_TREE_NAMESPACE is one).
    if flags & ~known_flags(caller) & 0xFFFFFFFF:
        return Expect(errno.EINVAL, rule="OT-FLAGS-UNKNOWN")
    copy = flags & (OPEN_TREE_CLONE | OPEN_TREE_NAMESPACE)
    # 2. AT_RECURSIVE needs something to copy.
    if flags & AT_RECURSIVE and not copy:
        return Expect(errno.EINVAL, rule="OT-FLAGS-RECURSIVE")
    # 3. Clone and namespace exclude each other.
    if copy == OPEN_TREE_CLONE | OPEN_TREE_NAMESPACE:
        return Expect(errno.EINVAL, rule="OT-FLAGS-EXCLUSIVE")
    # 4. OPEN_TREE_NAMESPACE: CAP_SYS_ADMIN in the current user namespace, before any lookup.
    if flags & OPEN_TREE_NAMESPACE and not caller.cap_current_userns:
        return Expect(errno.EPERM, rule="OT-CAP")
    # OPEN_TREE_CLONE: may_mount(), also before the lookup.
    if flags & OPEN_TREE_CLONE and not caller.may_mount:
        return Expect(errno.EPERM)
    # 5. Path lookup.
    if target.empty_path and not flags & AT_EMPTY_PATH:
        return Expect(errno.ENOENT, rule="OT-LOOKUP")
    if target.lookup_errno:
        return Expect(target.lookup_errno, rule="OT-LOOKUP")
    if not copy:
        return Expect(0, "opath", rule="OT-FLAGS-UNKNOWN")
    # With AT_SYMLINK_NOFOLLOW the symlink itself is the source: not a directory.
    is_dir = target.is_dir and not (target.symlink and flags & AT_SYMLINK_NOFOLLOW)
    if flags & OPEN_TREE_NAMESPACE:
        # 6. The namespace's root must be a directory.
        if not is_dir:
            return Expect(errno.ENOTDIR, rule="OT-DIR")
        # 7. The source must be copyable.
        if target.unbindable:
            return Expect(errno.EINVAL, rule="OT-SRC-UNBINDABLE")
        if target.foreign_mount:
            return Expect(errno.EINVAL, rule="OT-SRC-OTHERNS")
        return Expect(0, "mntns", rule="OT-FD")
    if target.unbindable or target.foreign_mount:
        return Expect(errno.EINVAL)
    return Expect(0, "detached", rule="OT-FLAGS-UNKNOWN")
