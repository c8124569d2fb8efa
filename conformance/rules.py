"""The rules the suite checks, as data: one row per rule of docs/semantics.md, with the feature it
belongs to, its text (the document's, word for word: tests/test_rules.py compares them), the kernel
functions that implement it in Debian's 7.2.13 source, and the known fixes that changed it
(conformance/references.py). Tests name their rules with `@pytest.mark.rule(ID)`; the host reads
this table too (otns/rules.py: faults, the bisect's ranking). Stands alone: it runs in the guest.
"""
from __future__ import annotations

from dataclasses import dataclass

OT, FM, EM = "open_tree_ns", "fsmount_ns", "empty_mntns"  # conformance/features.py's names


@dataclass(frozen=True)
class Rule:
    id: str
    feature: str
    text: str  # as docs/semantics.md states it (Markdown; a "|" is written "\|" there)
    source: tuple[str, ...]  # "file: function()" in Debian's linux-source-7.2 (7.2.13)
    fixes: tuple[str, ...] = ()  # references.FIXES entries that changed what the kernel does
    untested: str = ""  # why no conformance test names the rule; empty: some test must


RULES = (
    Rule("OT-FLAGS-UNKNOWN", OT,
         "a bit outside `AT_EMPTY_PATH, AT_NO_AUTOMOUNT, AT_RECURSIVE, AT_SYMLINK_NOFOLLOW, OPEN_TREE_CLONE, "
         "OPEN_TREE_CLOEXEC, OPEN_TREE_NAMESPACE`: EINVAL",
         ("fs/namespace.c: vfs_open_tree()",)),
    Rule("OT-FLAGS-RECURSIVE", OT,
         "`AT_RECURSIVE` without `OPEN_TREE_CLONE` or `OPEN_TREE_NAMESPACE`: EINVAL",
         ("fs/namespace.c: vfs_open_tree()",)),
    Rule("OT-FLAGS-EXCLUSIVE", OT,
         "`OPEN_TREE_CLONE` with `OPEN_TREE_NAMESPACE`: EINVAL",
         ("fs/namespace.c: vfs_open_tree()",)),
    Rule("OT-CAP", OT,
         "`OPEN_TREE_NAMESPACE` needs `CAP_SYS_ADMIN` in the caller's *current* user namespace (not the owner "
         "of its mount namespace): EPERM otherwise, before the path is looked up",
         ("fs/namespace.c: vfs_open_tree()",)),
    Rule("OT-LOOKUP", OT,
         "the path is looked up as for any open_tree: ENOENT, ENOTDIR for a non-directory prefix, ELOOP, "
         "ENAMETOOLONG, EACCES, EFAULT, EBADF; `AT_EMPTY_PATH`, `AT_SYMLINK_NOFOLLOW` as usual; an automount "
         "point is triggered (the automounted filesystem is copied) unless `AT_NO_AUTOMOUNT` is given (then "
         "the directory itself is copied)",
         ("fs/namespace.c: vfs_open_tree()",)),
    Rule("OT-DIR", OT,
         "the looked-up object must be a directory (`d_can_lookup()`): ENOTDIR for a file, an nsfs file, a "
         "symlink not followed, ... (Debian 7.0.12 and older lack this check)",
         ("fs/namespace.c: create_new_namespace()",), fixes=("ENOTDIR_TARGET",)),
    Rule("OT-LIMIT", OT,
         "the new namespace is charged to `max_mnt_namespaces` of the caller's user namespace: ENOSPC at the "
         "limit (after `OT-DIR`, before the copy's own checks); the charge is returned when the namespace dies",
         ("fs/namespace.c: alloc_mnt_ns()", "fs/namespace.c: inc_mnt_namespaces()", "fs/namespace.c: free_mnt_ns()")),
    Rule("OT-NOMEM", OT,
         "when an allocation inside the call fails (fault injection: each one in turn), the call fails with ENOMEM, returns no fd, leaves the caller's namespace as it was and gives back its `max_mnt_namespaces` charge; a call that succeeds all the same returns the whole copy, every mount as an unharmed call makes it",
         ("fs/namespace.c: create_new_namespace()", "fs/namespace.c: alloc_mnt_ns()", "fs/namespace.c: copy_tree()",
          "fs/namespace.c: clone_mnt()", "fs/nsfs.c: open_namespace_file()")),
    Rule("OT-SRC-UNBINDABLE", OT,
         "an unbindable source mount: EINVAL, for every caller (a foreign caller's copy keeps unbindable "
         "*children*, `OT-FOREIGN-UNBINDABLE`, but the source itself must be bindable)",
         ("fs/namespace.c: __do_loopback()",)),
    Rule("OT-SRC-OTHERNS", OT,
         "a source outside the caller's mount namespace (`may_copy_tree()`): EINVAL. That covers a mount of "
         "another *live* namespace and a detached tree cloned (`open_tree(OPEN_TREE_CLONE)`) from another "
         "namespace: a detached tree remembers the namespace it was cloned from and is accepted only from that"
         " one. A detached mount made by `fsmount()` has no such origin and is accepted from any namespace. "
         "nsfs and pidfs dentries are accepted too (they are not directories, so `OT-DIR` refuses them first)",
         ("fs/namespace.c: may_copy_tree()",)),
    Rule("OT-SRC-UNMOUNTED", OT,
         "a mount that is in no namespace any more (lazily unmounted, or left behind when its namespace died):"
         ' EINVAL, from the same `may_copy_tree()` (its "not mounted" test)',
         ("fs/namespace.c: may_copy_tree()",)),
    Rule("OT-SRC-NSFS-DETACHED", OT,
         "a bind mount of a namespace file that was lazily unmounted: `may_copy_tree()` accepts nsfs files "
         "wherever they are, so the sibling `open_tree(OPEN_TREE_CLONE)` clones it alone, but a recursive "
         "copy (`AT_RECURSIVE`) of a mount in no namespace is EINVAL (`__do_loopback()`); "
         "`OPEN_TREE_NAMESPACE` refuses the file first (`OT-DIR`)",
         ("fs/namespace.c: __do_loopback()", "fs/namespace.c: may_copy_tree()"), fixes=("UNMOUNTED_TREE_COPY",)),
    Rule("OT-SRC-PSEUDO", OT,
         "a pseudo file that no path leads to (a BPF token: its dentry is freed without an RCU delay) is no "
         "source: `open_tree(OPEN_TREE_CLONE)` of it is EINVAL (`__do_loopback()`), `OPEN_TREE_NAMESPACE` "
         "ENOTDIR (`OT-DIR`)",
         ("fs/namespace.c: __do_loopback()", "fs/namespace.c: create_new_namespace()"), fixes=("PSEUDO_DENTRY_ROOT",)),
    Rule("OT-NSFILE-NO-PROPAGATION", OT,
         "a binding of a mount namespace file is never copied (`copy_tree()` refuses one as a copy's root), so "
         "binding one on a mount with a peer, where propagation would copy it, fails: EINVAL, and no peer holds it",
         ("fs/namespace.c: copy_tree()", "fs/pnode.c: propagate_mnt()")),
    Rule("OT-FOREIGN-NONREC", OT,
         "a foreign caller's non-recursive copy of a mount with children *below the path* (at any depth): "
         "EINVAL (it would reveal what they cover); children elsewhere in the same mount do not count. Checked"
         ' before the copy\'s own checks below, with the same errno. Since stable 7.2.11 ("namespace: keep '
         'covered mounts covered in OPEN_TREE_NAMESPACE")',
         ("fs/namespace.c: create_new_namespace()",), fixes=("COVERED_MOUNTS",)),
    Rule("OT-SRC-LOCKEDCHILD", OT,
         "a non-recursive copy of a mount with *locked* children below the path: EINVAL; locked children "
         "elsewhere in the same mount do not count. This is what stops a caller that owns its mount namespace "
         "(not foreign) from copying a mount it inherited with its children",
         ("fs/namespace.c: __do_loopback()", "fs/namespace.c: __has_locked_children()")),
    Rule("OT-SUBDIR-ROOT", OT,
         "the copy's root is the looked-up directory, not the root of the mount that holds it",
         ("fs/namespace.c: __do_loopback()", "fs/namespace.c: clone_mnt()")),
    Rule("OT-NONREC-ONE", OT,
         "without `AT_RECURSIVE` the new namespace shows exactly one mount",
         ("fs/namespace.c: __do_loopback()", "fs/namespace.c: clone_mnt()")),
    Rule("OT-REC-BELOW", OT,
         "with `AT_RECURSIVE` it shows the source and the mounts below the path, and no others",
         ("fs/namespace.c: copy_tree()",)),
    Rule("OT-SKIP-UNBINDABLE", OT,
         "a recursive copy by a caller that is not foreign leaves out unbindable children (with everything "
         "below them) and copies the rest",
         ("fs/namespace.c: create_new_namespace()", "fs/namespace.c: copy_tree()")),
    Rule("OT-REC-LOCKED-SKIP", OT,
         "... but a child it would leave out that is also locked is not left out silently: the copy is refused"
         ' with EPERM (`copy_tree()`: "both unbindable and locked"). The same holds for a locked bind of a '
         "mount-namespace file; no way to make one from user space was found in 7.2.13 (every copy across user"
         " namespaces leaves those binds out: `unshare()` skips them, binding one on a mount that propagates "
         "into another user namespace's mount namespace is EINVAL, checked on 7.2.13; and `MOVE_MOUNT_BENEATH`"
         " refuses one under a locked mount), so only the unbindable case is tested. Observable since stable "
         '7.2.11 ("mount: keep a copied mount unbindable"): before it, the copy `unshare(CLONE_NEWUSER | '
         "CLONE_NEWNS)` made of an unbindable mount was bindable",
         ("fs/namespace.c: copy_tree()",), fixes=("COPIED_UNBINDABLE",)),
    Rule("OT-FOREIGN-UNBINDABLE", OT,
         "a foreign caller's copy keeps unbindable children (leaving them out would reveal what they cover)",
         ("fs/namespace.c: create_new_namespace()", "fs/namespace.c: copy_tree()")),
    Rule("OT-NO-MNTNS-BINDS", OT,
         "bind mounts of mount-namespace files are not copied (nor what is mounted on them); binds of other "
         "nsfs files (a net namespace) are",
         ("fs/namespace.c: create_new_namespace()", "fs/namespace.c: copy_tree()")),
    Rule("OT-FOREIGN-SLAVE", OT,
         "a foreign caller's copies are slaves of their source's peer group",
         ("fs/namespace.c: create_new_namespace()", "fs/namespace.c: clone_mnt()")),
    Rule("OT-PEER", OT,
         "a privileged caller's copy of a shared mount joins its peer group (propagation both ways)",
         ("fs/namespace.c: clone_mnt()",)),
    Rule("OT-SLAVE-KEEPS-MASTER", OT,
         "a copy of a slave mount is a slave of the same master (it receives what is mounted on the master)",
         ("fs/namespace.c: clone_mnt()",)),
    Rule("OT-FOREIGN-LOCK", OT,
         "a foreign caller's whole new tree, its top included, is locked: umount of any mount in it fails with"
         " EINVAL. A caller that owns its mount namespace is not foreign: nothing in its copy is locked but "
         "the top under `OT-ROOT-LOCK`",
         ("fs/namespace.c: create_new_namespace()", "fs/namespace.c: lock_mnt_tree()")),
    Rule("OT-FOREIGN-FLAGS", OT,
         "in a foreign caller's copy each mount's flags are locked (`lock_mnt_tree()`): read-only, nosuid, "
         "nodev and noexec where they are set, and the atime setting (noatime, relatime, strictatime, "
         "nodiratime) always, whatever it is. Clearing a locked flag, or changing the atime setting at all, by"
         " `mount_setattr()` or by a remount (`MS_REMOUNT`, with or without `MS_BIND`), is EPERM, although the"
         " caller owns the new namespace; setting more flags is allowed",
         ("fs/namespace.c: lock_mnt_tree()", "fs/namespace.c: can_change_locked_flags()")),
    Rule("OT-ROOT-LOCK", OT,
         "if a locked mount is stacked on the caller's namespace root, the top of the new tree is locked too",
         ("fs/namespace.c: create_new_namespace()",)),
    Rule("OT-OWNER", OT,
         "the new namespace is owned by the caller's current user namespace (`NS_GET_USERNS`, "
         "`NS_GET_OWNER_UID`)",
         ("fs/namespace.c: create_new_namespace()", "fs/nsfs.c: ns_ioctl()")),
    Rule("OT-FD", OT,
         "the result is an nsfs fd (`mnt:[INODE]`), close-on-exec exactly when `OPEN_TREE_CLOEXEC` is given",
         ("fs/namespace.c: open_new_namespace()", "fs/namespace.c: open_tree()")),
    Rule("OT-ID", OT,
         "`NS_GET_MNTNS_ID` gives an id different from the caller's; `listmount`/`statmount` on it show the "
         "copied mounts above a hidden root whose id differs; `NS_MNT_GET_INFO`'s `nr_mounts` (the namespace's"
         " mounts less its hidden root) equals the mounts in the copy",
         ("fs/namespace.c: alloc_mnt_ns()", "fs/namespace.c: listmount()", "fs/namespace.c: statmount()",
          "fs/nsfs.c: ns_ioctl()")),
    Rule("OT-SETNS", OT,
         "`setns(fd, CLONE_NEWNS)` enters it; root and cwd are the copy's root",
         ("fs/namespace.c: mntns_install()",)),
    Rule("OT-SETNS-PERM", OT,
         "entering the namespace (`setns(fd, CLONE_NEWNS)`) needs `CAP_SYS_ADMIN` over its owner and `CAP_SYS_CHROOT` and `CAP_SYS_ADMIN` in the caller's own user namespace: EPERM otherwise, and the caller stays where it was",
         ("fs/namespace.c: mntns_install()",)),
    Rule("OT-SETNS-SHARED-FS", OT,
         "a caller that shares its root and cwd (`fs_struct`) with another task, a thread, cannot enter it: EINVAL",
         ("fs/namespace.c: mntns_install()",)),
    Rule("OT-SETNS-TYPE", OT,
         "`setns()` checks the type asked for: the namespace fd with `CLONE_NEWPID` is EINVAL; with 0 (any type) it enters",
         ("kernel/nsproxy.c: sys_setns()",)),
    Rule("OT-SETNS-PIDFD", OT,
         "a process living in the namespace is entered through its pidfd (`setns(pidfd, CLONE_NEWNS)`) as through the namespace's fd; a pidfd with no type asked for is EINVAL",
         ("kernel/nsproxy.c: sys_setns()", "kernel/nsproxy.c: check_setns_flags()")),
    Rule("OT-NS-LIST", OT,
         "the namespaces `OPEN_TREE_NAMESPACE` and `FSMOUNT_NAMESPACE` make join the kernel's id-ordered list of mount namespaces: nsfs's `NS_MNT_GET_NEXT` from the one made before returns the new one (its id and mount count), `NS_MNT_GET_PREV` walks back, the newest has no next (ENOENT); walking needs `CAP_SYS_ADMIN` in the initial user namespace (EPERM)",
         ("fs/namespace.c: create_new_namespace()", "fs/nsfs.c: ns_ioctl()", "fs/namespace.c: get_sequential_mnt_ns()")),
    Rule("OT-NSFS-IOCTL", OT,
         "on the namespace's fd nsfs answers as for any mount namespace: `NS_GET_ID` equals `NS_GET_MNTNS_ID`, `NS_GET_NSTYPE` is `CLONE_NEWNS`, `NS_GET_USERNS` the owner's, `NS_GET_PARENT` is EINVAL (no parent), `NS_MNT_GET_INFO` without a buffer is EINVAL",
         ("fs/nsfs.c: ns_ioctl()",)),
    Rule("OT-LIFETIME", OT,
         "the namespace lives while an fd or a member process holds it, and is freed (no leak) after",
         ("fs/namespace.c: put_mnt_ns()", "fs/namespace.c: free_mnt_ns()")),
    Rule("OT-ATTR", OT,
         "`open_tree_attr()` accepts `OPEN_TREE_NAMESPACE` with no attributes (a NULL pointer, or all fields "
         "zero). Non-empty attributes are applied to the file it opened, here the namespace's nsfs file, which"
         " is no mount root: EINVAL, and no fd is returned (7.0.4 to 7.3.4 alike)",
         ("fs/namespace.c: open_tree_attr()", "fs/namespace.c: do_mount_setattr()")),
    Rule("OT-ATTR-IDMAP", OT,
         "the sibling `open_tree_attr(OPEN_TREE_CLONE)` may give the clone another idmapping than its source "
         "mount's (the clone was never visible); `mount_setattr()` on a mount that has one refuses to change it "
         "(EPERM)",
         ("fs/namespace.c: open_tree_attr()", "fs/namespace.c: can_idmap_mount()")),
    Rule("OT-MOUNTMAX", OT,
         "`fs.mount-max` is not charged for the copy",
         ("fs/namespace.c: create_new_namespace()",)),
    Rule("OR-OPEN-TREE", OT,
         "`open_tree(path, OPEN_TREE_NAMESPACE [| AT_RECURSIVE])` and the classic construction by the same "
         "caller, `unshare(CLONE_NEWNS)` then a bind mount (`MS_BIND [| MS_REC]`) of the same path, fail with "
         "the same errno or give trees that agree on every mount below their tops: the whole `statmount()` "
         "record (peer group and master ids as the mounts they name), its mountinfo line, whether it is "
         "locked, which flags are locked, whether it is bindable, and where mount events propagate to and "
         "from it; for every caller, except where an `OR-*` rule below says otherwise",
         ("fs/namespace.c: create_new_namespace()", "fs/namespace.c: copy_mnt_ns()", "fs/namespace.c: do_loopback()")),
    Rule("OR-TOP-LOCK", OT,
         "the top of the feature's tree is locked (umount EINVAL) for every caller but root in the "
         "initial namespaces: a foreign caller's by `OT-FOREIGN-LOCK`, and that of any caller in a user "
         "namespace by `OT-ROOT-LOCK` (its namespace's root is a locked copy); the classic bind is the "
         "caller's own new mount and is not locked. The same holds for `fsmount(FSMOUNT_NAMESPACE)` "
         "against `fsmount()` + `move_mount()`",
         ("fs/namespace.c: create_new_namespace()", "fs/namespace.c: lock_mnt_tree()")),
    Rule("OR-FOREIGN-UNBINDABLE", OT,
         "a foreign caller's recursive copy of a tree with an unbindable child succeeds and keeps the "
         "child (`OT-FOREIGN-UNBINDABLE`: `CL_COPY_UNBINDABLE`), where the classic bind is EPERM "
         "(`copy_tree()`: unbindable and locked). Where the path is the root of its mount, the tree then "
         "agrees with the classic `unshare(CLONE_NEWNS)` copy itself, seen from the path, its top locked "
         "in both; below a mount's root no classic construction gives the same top",
         ("fs/namespace.c: create_new_namespace()", "fs/namespace.c: copy_tree()")),
    Rule("OR-FSMOUNT", FM,
         "`fsmount(fs, FSMOUNT_NAMESPACE, attrs)` and the classic construction by the same caller, "
         "`unshare(CLONE_NEWNS)`, then `fsmount(fs, 0, attrs)` and `move_mount()` onto a private stage, "
         "fail with the same errno or give mounts that agree on everything `OR-OPEN-TREE` compares, but "
         "their superblocks' device numbers (two calls make two superblocks) and where an `OR-*` rule "
         "says otherwise",
         ("fs/namespace.c: fsmount()", "fs/namespace.c: create_new_namespace()")),
    Rule("OR-FM-FOREIGN", FM,
         "a foreign caller's new mount has its flags locked (`FM-FOREIGN-LOCK`: clearing a flag that is "
         "set, or changing the atime setting, is EPERM by `mount_setattr()` and by a bind remount), where "
         "the classic mount, made in a namespace the caller owns, lets it change them",
         ("fs/namespace.c: create_new_namespace()", "fs/namespace.c: lock_mnt_tree()")),
    Rule("OR-EMPTY", EM,
         "`unshare(UNSHARE_EMPTY_MNTNS)` and `clone3(CLONE_EMPTY_MNTNS)` give the same one mount for "
         "every caller, whatever its namespace holds; for root in the initial namespaces that mount also "
         "agrees with the classic construction, `unshare(CLONE_NEWNS)` then `umount2(\"/\", MNT_DETACH)`. A "
         "caller in a user namespace has no classic construction: what is mounted on its namespace's root "
         "is locked (umount EINVAL)",
         ("fs/namespace.c: copy_mnt_ns()", "kernel/nsproxy.c: unshare_nsproxy_namespaces()")),
    Rule("GB-OPEN-TREE", OT,
         "every way `open_tree(OPEN_TREE_NAMESPACE)` ends gives back what it took: after an unknown flag, "
         "EPERM, ENOENT, ENOTDIR, ENOSPC, an unbindable source, a source in another namespace, a foreign "
         "caller's non-recursive copy over children, locked children, a locked unbindable child (EPERM), "
         "and after a namespace it made is closed, the caller can make as many namespaces under "
         "`max_mnt_namespaces` as before, holds no new fd and the same mounts, and its source mount can "
         "be unmounted (no reference on it is left); over many cycles of every path that makes mounts, "
         "`mnt_cache` does not grow",
         ("fs/namespace.c: vfs_open_tree()", "fs/namespace.c: create_new_namespace()", "fs/namespace.c: free_mnt_ns()")),
    Rule("GB-FSMOUNT", FM,
         "every way `fsmount(FSMOUNT_NAMESPACE)` ends gives back what it took: after an unknown flag, "
         "EPERM, an unknown attribute or atime value, EBADF, an fd that is no fs context, a context "
         "without a superblock, a spent context (EBUSY), ENOSPC, and after a namespace it made is closed, "
         "the caller can make as many namespaces under `max_mnt_namespaces` as before and holds no new fd "
         "and the same mounts; over many cycles of every path that makes mounts, `mnt_cache` does not grow",
         ("fs/namespace.c: fsmount()", "fs/namespace.c: create_new_namespace()", "fs/namespace.c: free_mnt_ns()")),
    Rule("GB-FM-CONTEXT-SPENT", FM,
         "`fsmount(FSMOUNT_NAMESPACE)` spends its fs context once the mount is made, also when the "
         "namespace then cannot be (ENOSPC): `vfs_clean_context()` runs before `open_new_namespace()`, so "
         "`fsmount()` again on that context is EBUSY",
         ("fs/namespace.c: fsmount()",)),
    Rule("GB-EMPTY", EM,
         "every way `unshare(UNSHARE_EMPTY_MNTNS)` and `clone3(CLONE_EMPTY_MNTNS)` end gives back what "
         "they took: after EINVAL (`CLONE_FS`), EPERM, ENOSPC, and after the process in the new namespace "
         "exits, the caller can make as many namespaces under `max_mnt_namespaces` as before and holds no "
         "new fd and the same mounts (none of its failures makes a mount)",
         ("fs/namespace.c: copy_mnt_ns()", "kernel/nsproxy.c: unshare_nsproxy_namespaces()", "fs/namespace.c: free_mnt_ns()")),
    Rule("FM-FLAGS-UNKNOWN", FM,
         "a flag bit other than `FSMOUNT_CLOEXEC`, `FSMOUNT_NAMESPACE`: EINVAL. Checked first; then `FM-CAP`, "
         "then `FM-ATTR`, then the context fd (EBADF; EINVAL for an fd that is no fs context)",
         ("fs/namespace.c: fsmount()",)),
    Rule("FM-CAP", FM,
         "`FSMOUNT_NAMESPACE` needs `CAP_SYS_ADMIN` in the caller's current user namespace: EPERM",
         ("fs/namespace.c: fsmount()",)),
    Rule("FM-ATTR", FM,
         "unknown attribute bits or a bad atime value: EINVAL; the attribute flags become the new mount's "
         "flags",
         ("fs/namespace.c: fsmount()",)),
    Rule("FM-REVEALING", FM,
         'a proc or sysfs mount a user namespace may not see fully: EPERM ("mount too revealing")',
         ("fs/namespace.c: fsmount()", "fs/namespace.c: mount_too_revealing()",
          "fs/namespace.c: mnt_already_visible()")),
    Rule("FM-FD", FM,
         "the result is an nsfs fd, close-on-exec exactly when `FSMOUNT_CLOEXEC` is given",
         ("fs/namespace.c: fsmount()",)),
    Rule("FM-CONTENTS", FM,
         "the namespace shows exactly the new filesystem's mount above the hidden root; entering it shows the "
         "filesystem's contents",
         ("fs/namespace.c: create_new_namespace()",)),
    Rule("FM-OWNER", FM,
         "owned by the caller's current user namespace",
         ("fs/namespace.c: create_new_namespace()", "fs/nsfs.c: ns_ioctl()")),
    Rule("FM-LIMIT", FM,
         "charged to `max_mnt_namespaces`: ENOSPC at the limit, returned on close",
         ("fs/namespace.c: alloc_mnt_ns()", "fs/namespace.c: inc_mnt_namespaces()")),
    Rule("FM-NOMEM", FM,
         "when an allocation inside the call fails, fsmount fails with ENOMEM, returns no fd and gives back its `max_mnt_namespaces` charge; a call that succeeds all the same returns the whole namespace",
         ("fs/namespace.c: sys_fsmount()", "fs/namespace.c: create_new_namespace()", "fs/namespace.c: alloc_mnt_ns()")),
    Rule("FM-NOUSER", FM,
         "a kernel-internal file system (`SB_NOUSER`, e.g. pipefs) is never mounted for user space: `fsmount(FSMOUNT_NAMESPACE)` of it is EINVAL and returns no fd",
         ("fs/namespace.c: sys_fsmount()",)),
    Rule("FM-FOREIGN-LOCK", FM,
         "a foreign caller's new tree is locked (umount EINVAL; flags cannot be cleared)",
         ("fs/namespace.c: create_new_namespace()", "fs/namespace.c: lock_mnt_tree()")),
    Rule("FM-ROOT-LOCK", FM,
         "as `OT-ROOT-LOCK`",
         ("fs/namespace.c: create_new_namespace()",)),
    Rule("EM-FLAGS", EM,
         "`clone3` with unknown bits: EINVAL (unknown bits are derived from the kernel's own list, never a "
         'guessed "unused" bit); `unshare` with a bit outside its own list (bit 37 included): EINVAL; '
         "`UNSHARE_EMPTY_MNTNS` reuses `CLONE_PARENT_SETTID`'s bit for `unshare` only; `CLONE_EMPTY_MNTNS` "
         "implies `CLONE_NEWNS`, so with `CLONE_FS`: EINVAL; the calls' own checks stand beside the new flags: "
         "clone3's arguments (a cgroup fd past `INT_MAX`: EINVAL; an unreadable `set_tid` array: EFAULT; its struct read as without it: over a page or a non-zero tail E2BIG, under 64 bytes, a bad `set_tid` size or an `exit_signal` past `CSIGNAL`: EINVAL), and "
         "unshare's `CLONE_THREAD`, `CLONE_SIGHAND`, `CLONE_VM` (not implemented: accepted from a caller that shares "
         "nothing, EINVAL from one with a second thread, with `UNSHARE_EMPTY_MNTNS` too, and then nothing is made)",
         ("kernel/fork.c: clone3_args_valid()", "kernel/fork.c: copy_clone_args_from_user()",
          "kernel/fork.c: check_unshare_flags()", "kernel/fork.c: kernel_clone()",
          "kernel/nsproxy.c: unshare_nsproxy_namespaces()")),
    Rule("EM-CAP", EM,
         "needs `CAP_SYS_ADMIN` over the caller's user namespace, as `CLONE_NEWNS`: EPERM",
         ("kernel/nsproxy.c: copy_namespaces()", "kernel/nsproxy.c: unshare_nsproxy_namespaces()")),
    Rule("EM-ONLY-ROOT", EM,
         "the new namespace holds one mount: a copy of the root mount alone, nothing below it",
         ("fs/namespace.c: copy_mnt_ns()",)),
    Rule("EM-CWD", EM,
         "the caller's root and cwd are reset to that mount's root",
         ("fs/namespace.c: copy_mnt_ns()",)),
    Rule("EM-COUNT", EM,
         "`NS_MNT_GET_INFO` of the new namespace counts 0 mounts (its root is not counted, as in every "
         "namespace) and one more for each mount made in it; listmount shows the root too",
         ("fs/namespace.c: copy_mnt_ns()", "fs/nsfs.c: copy_ns_info_to_user()")),
    Rule("EM-OLD-ROOT-FREE", EM,
         "the caller's old root and cwd are let go: once the process in the new namespace has exited, the mount "
         "they lay on holds no reference from it (a plain umount succeeds)",
         ("fs/namespace.c: copy_mnt_ns()",)),
    Rule("EM-CLASSIC-CWD", EM,
         "the classic construction it replaces, `unshare(CLONE_NEWNS)`, moves the caller's cwd to the copy of the "
         "mount it was on, in the new namespace",
         ("fs/namespace.c: copy_mnt_ns()",)),
    Rule("EM-OTHERS", EM,
         "other namespaces are unaffected",
         ("fs/namespace.c: copy_mnt_ns()",)),
    Rule("EM-USERNS", EM,
         "works with a new user namespace in the same call (`CLONE_NEWUSER`), and then the tree is locked",
         ("fs/namespace.c: copy_mnt_ns()", "fs/namespace.c: lock_mnt_tree()")),
    Rule("EM-USERNS-FAIL", EM,
         "when `unshare(CLONE_NEWUSER | UNSHARE_EMPTY_MNTNS)` cannot make the empty namespace (ENOSPC at `max_mnt_namespaces`), nothing is installed: the caller keeps its user namespace, credentials and mount namespace",
         ("kernel/fork.c: ksys_unshare()", "kernel/nsproxy.c: create_new_namespaces()")),
    Rule("EM-UNWIND", EM,
         "when `unshare()` of a mount namespace (empty or copied) and other namespaces cannot make one of those made after it (ENOSPC at that type's `max_*_namespaces`), it fails with that error, the caller keeps every namespace it had, and every namespace the call had made is given back with its charge, the mount namespace first among them",
         ("kernel/nsproxy.c: create_new_namespaces()", "kernel/nsproxy.c: unshare_nsproxy_namespaces()")),
    Rule("EM-NOMEM", EM,
         "when an allocation inside the call fails, unshare fails with ENOMEM, the caller stays in its own namespace and the charge is given back; an unshare that succeeds all the same gives the whole empty namespace",
         ("fs/namespace.c: copy_mnt_ns()", "kernel/nsproxy.c: create_new_namespaces()", "fs/namespace.c: alloc_mnt_ns()")),
    Rule("EM-THREAD", EM,
         "a thread may empty its own mount namespace: `unshare(UNSHARE_EMPTY_MNTNS)` gives it a copy of the shared root and cwd first, so the new empty namespace, its root and cwd are the thread's alone; the other threads keep theirs",
         ("kernel/fork.c: ksys_unshare()", "fs/namespace.c: copy_mnt_ns()")),
    Rule("EM-COMPOSE", EM,
         "composes with `CLONE_NEWPID`, `CLONE_PIDFD`; setns into the child's namespace works",
         ("kernel/fork.c: kernel_clone()", "kernel/nsproxy.c: copy_namespaces()", "fs/namespace.c: mntns_install()")),
    Rule("EM-OVERMOUNT", EM,
         "a mount point overmounted several times resolves to its topmost mount: `chroot()` into it (how "
         "a process fills an empty namespace: mount on its root, then chroot) lands on the mount made last",
         ("fs/namei.c: traverse_mounts()", "fs/open.c: chroot()")),
    Rule("OT-AUTOMOUNT-LOCK", OT,
         "an automount gets the locks of the namespace it lands in, whoever triggers it: a caller in "
         "another mount namespace, owned by another user namespace, that crosses (through an fd) an "
         "automount point of a mount in a namespace of the initial user namespace mounts the automount "
         "there with no flag locked, so root there can still change its atime setting (`mount_setattr()`); "
         "mounts are locked only where they cross into a namespace of another user namespace",
         ("fs/namespace.c: attach_recursive_mnt()", "fs/namespace.c: finish_automount()",
          "fs/namespace.c: lock_mnt_tree()"), fixes=("AUTOMOUNT_LOCKING",)),
    Rule("FM-REMOUNT-INTERNAL", FM,
         "a kernel-internal superblock (`SB_NOUSER`: nullfs, the root of an empty mount namespace and of "
         "every other) is nobody's to reconfigure: `mount(MS_REMOUNT)` of it, and `umount()` of the "
         "caller's root when that is one (for any other root, `umount()` of it remounts its superblock "
         "read-only), are EINVAL",
         ("fs/fs_context.c: fs_context_for_reconfigure()", "fs/namespace.c: do_remount()",
          "fs/namespace.c: do_umount_root()"), fixes=("RECONFIGURE_INTERNAL",)),
    Rule("FM-FSPICK-INTERNAL", FM,
         "`fspick()` of a kernel-internal superblock (`SB_NOUSER`: nullfs, the root of an empty mount "
         "namespace): EINVAL, no fs context is made for it",
         ("fs/fsopen.c: sys_fspick()", "fs/fs_context.c: fs_context_for_reconfigure()"), fixes=("FSPICK_INTERNAL",)),
    Rule("EM-NULLFS-LOCK", EM,
         "a file lock on the root of an empty mount namespace (nullfs: one inode, shared by every "
         "namespace), by `flock()` or `fcntl(F_SETLK)`: ENOLCK",
         ("fs/nullfs.c: nullfs_nolock()",), fixes=("NULLFS_LOCKS",)),
    Rule("EM-NULLFS-ATIME", EM,
         "reading the root directory of an empty mount namespace (nullfs) leaves its access time as it "
         "was, also on a `strictatime` mount: the inode is shared by every namespace, and reading it "
         "leaves no trace",
         ("fs/nullfs.c: nullfs_fs_fill_super()",), fixes=("NULLFS_ATIME",)),
    # Mount trees, locks and propagation: fixes of Debian's 7.2 stable updates (test_stable_copy.py)
    Rule("OT-CLONE-NOT-UNMOUNTED", OT,
         "a clone is a new mount, whatever became of the mount it was made from: a clone of a lazily unmounted"
         " mount (a namespace file's bind, which may be cloned from anywhere) placed on a shared mount is "
         "unmounted with the copies propagation made of it",
         ("fs/namespace.c: clone_mnt()", "fs/pnode.c: propagate_umount()"), fixes=("CLONE_UMOUNT_FLAG",)),
    Rule("OT-RBIND-NSFS-LOOP", OT,
         "a recursive bind mount whose copy would hold a bind of a mount namespace file that is no newer than "
         "the caller's namespace (one mounted below or on the source, not only the source itself) is refused: "
         "EINVAL; the same tree holding a newer namespace's file is mounted",
         ("fs/namespace.c: do_loopback()", "fs/namespace.c: check_for_nsfs_mounts()"), fixes=("RBIND_NS_LOOP",)),
    Rule("OT-TUCK-MNTNS-TOP", OT,
         "where a propagated copy of an attached tree goes beneath a mount a receiver already has at that "
         "place, that mount is moved onto the top of the copy; when the tree ends in a mount namespace file "
         "(left out of the copies) it goes onto the shorter copy's top, and the receiver's path still leads to"
         " it",
         ("fs/namespace.c: attach_recursive_mnt()",), fixes=("TOPMOST_MNTNS_FILE",)),
    Rule("OT-BENEATH-MNTNS-LOCKED", OT,
         "`move_mount(MOVE_MOUNT_BENEATH)` of a mount namespace file's mount beneath a locked mount: EINVAL "
         "(the mount moved beneath takes over the lock, and every copy of the tree leaves a mount namespace "
         "file out); beneath an unlocked mount, or another mount beneath a locked one, is allowed",
         ("fs/namespace.c: can_move_mount_beneath()",), fixes=("BENEATH_MNTNS_LOCK",)),
    Rule("OT-TUCK-KEEPS-LOCK", OT,
         "a locked mount that a propagated copy is moved beneath stays locked (its umount in its namespace is "
         "EINVAL), and the copy beneath it is locked too",
         ("fs/namespace.c: attach_recursive_mnt()",), fixes=("PROPAGATED_BENEATH_LOCK",)),
    Rule("OT-SET-GROUP-UNBINDABLE", OT,
         "`move_mount(MOVE_MOUNT_SET_GROUP)` onto an unbindable mount: EINVAL (only a private mount joins a "
         "peer group)",
         ("fs/namespace.c: do_set_group()",), fixes=("SET_GROUP_UNBINDABLE",)),
    Rule("OT-STATMOUNT-BUFSIZE", OT,
         "`statmount()` asked for a string into a buffer with no room after `struct statmount` (512 bytes or "
         "fewer) is EOVERFLOW and writes nothing, even when the strings asked for are empty "
         "(`STATMOUNT_FS_SUBTYPE` of a tmpfs): the empty string it reserves for unset fields is not copied "
         "past the buffer (to offset 512 of a smaller one, as kernels without the fix did, succeeding)",
         ("fs/namespace.c: statmount_string()", "fs/namespace.c: copy_statmount_to_user()",
          "fs/namespace.c: prepare_kstatmount()"), fixes=("STATMOUNT_RESERVED_STRING",)),
    Rule("OT-LISTMOUNT-CURSOR", OT,
         "`listmount()` resuming after the mount id `U64_MAX` (its `param`, the last id listed) lists "
         "nothing: the walk does not wrap around to the first mount. `LISTMOUNT_REVERSE` from `U64_MAX` "
         "lists every mount, newest first",
         ("fs/namespace.c: do_listmount()", "fs/namespace.c: mnt_find_id_at()"), fixes=("LISTMOUNT_U64_MAX",)),
    Rule("OT-SETNS-SHARED-FS-PIDFD", OT,
         "as `OT-SETNS-SHARED-FS` through a pidfd: `setns(pidfd, CLONE_NEWNS | CLONE_NEWUTS)` (the mount "
         "namespace with another type, installed on a copy of the caller's fs_struct) from a thread is EINVAL "
         "and moves no thread's root; from a single thread it enters",
         ("kernel/nsproxy.c: prepare_nsset()", "fs/namespace.c: mntns_install()", "kernel/nsproxy.c: commit_nsset()"),
         fixes=("SETNS_SHARED_FS",)),
    Rule("EM-LISTNS-INACTIVE", EM,
         "`listns()` resuming after a namespace id goes on to the next *active* namespace: one that is alive "
         "but inactive (a network namespace only a socket keeps) is not listed and does not end the walk "
         "(ENOENT), whether it walks one type or one owner's namespaces",
         ("kernel/nstree.c: do_listns()", "kernel/nstree.c: lookup_ns_id_at()", "kernel/nstree.c: do_listns_userns()",
          "kernel/nstree.c: lookup_ns_owner_at()"), fixes=("LISTNS_INACTIVE",)),
    Rule("OT-PROC-NET-NOMOUNT", OT,
         "no entry below `/proc/<pid>/net` can be a mountpoint (each is looked up afresh, for the task's "
         "network namespace of the moment, which would drop a mount on it): a bind mount on "
         "`/proc/<pid>/net/dev` or `/proc/<pid>/net/unix` is ENOENT and adds no mount; `/proc/<pid>/net` "
         "itself and other proc files such as `/proc/version` take one",
         ("fs/namespace.c: do_lock_mount()",), fixes=("PROC_NET_MOUNTPOINT",)),
)
BY_ID = {r.id: r for r in RULES}
