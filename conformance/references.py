"""Known fixes the tests guard, as data, so a failure names the fix the kernel lacks in the
kernel's own line of stable releases.

A test names the fix it guards with `@pytest.mark.fix(NAME)`; the rules a fix changed name it in
conformance/rules.py. Versions are Debian's kernels as otns booted them (`otns run --kernel
debian:VERSION`): per stable line, the first one that has the fix and the newest one that lacks
it. Where every Debian kernel of a line has it, the fix came with that line or earlier. The
subjects are the lines of Debian's changelogs that name the change, where one does.
(OPEN_TREE_NAMESPACE itself came with merge 1bce1a664ac2 in Linux 7.0.)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .features import kernel_version


@dataclass(frozen=True)
class Fix:
    name: str
    subject: str  # the changelog line that names the change; else what it does, in our words
    # stable line "7.0" -> the first Debian kernel of that line found with it; without an entry in
    # `lacking` for the line, Debian's oldest kernel of the line, so the fix came with it or earlier
    fixed: dict[str, str]
    lacking: dict[str, str] = field(default_factory=dict)  # stable line -> the newest found without it
    commit: str = ""  # the upstream commit, where otns has identified it
    named_in_changelog: bool = True  # False: `subject` is our description, no changelog line names it

    def where_fixed(self, release: str) -> str:
        """Where the fix is, said for the line of `release` (a `uname -r`): "fixed in 7.0.13"."""
        version = kernel_version(release)
        line = "{}.{}".format(*version) if version else ""
        if line in self.fixed:
            first = self.fixed[line]
            if line in self.lacking:
                return f"fixed in {first} ({self.lacking[line]} lacks it)"
            return f"fixed in {first} or earlier ({first} is Debian's oldest {line} kernel)"
        elsewhere = "fixed in " + ", ".join(self.fixed.values())
        if line in self.lacking:
            return f"not in Debian's {line} kernels up to {self.lacking[line]}; {elsewhere}"
        return f"not known on the {line} line; {elsewhere}" if line else f"{elsewhere}"

    def describe(self, release: str) -> str:
        """What the fix is and where, for the line of `release`."""
        what = f'"{self.subject}"' if self.named_in_changelog else self.subject
        ident = f", upstream commit {self.commit}" if self.commit else ", upstream commit not identified"
        return f"{what}{ident}; {self.where_fixed(release)}"


FIXES = {f.name: f for f in (
    Fix("ENOTDIR_TARGET", "ENOTDIR for a source that is not a directory (OT-DIR), a check that came after the feature",
        fixed={"7.0": "7.0.13", "7.1": "7.1.3", "7.2": "7.2.6", "7.3": "7.3-rc7"},
        lacking={"7.0": "7.0.12"}, named_in_changelog=False),
    Fix("COVERED_MOUNTS", "namespace: keep covered mounts covered in OPEN_TREE_NAMESPACE",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("COPIED_UNBINDABLE", "mount: keep a copied mount unbindable",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("UNMOUNTED_TREE_COPY", "namespace: don't copy an unmounted mount tree",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("PSEUDO_DENTRY_ROOT", "namespace: don't let a pseudo dentry become the root of a mount",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("AUTOMOUNT_LOCKING", "namespace: handle mount locking for automounts correctly",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("RECONFIGURE_INTERNAL", "namespace: don't reconfigure internal superblocks via remount and umount",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("FSPICK_INTERNAL", "fs: refuse fspick() on internal superblocks",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("NULLFS_LOCKS", "nullfs: refuse file locks",
        fixed={"7.2": "7.2.12", "7.3": "7.3-rc7"}, lacking={"7.1": "7.1.13", "7.2": "7.2.11"}),
    Fix("NULLFS_ATIME", "nullfs: don't update the access time",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("CLONE_UMOUNT_FLAG", "namespace: don't inherit MNT_UMOUNT in clone_mnt()",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("RBIND_NS_LOOP", "namespace: check a recursive bind mount for mount namespace loops",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("TOPMOST_MNTNS_FILE", "namespace: look at the topmost mount for a mount namespace file",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("BENEATH_MNTNS_LOCK", "namespace: a mount that copy_tree() leaves out can't take over a lock",
        fixed={"7.2": "7.2.13", "7.3": "7.3.4"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.12", "7.3": "7.3-rc7"}),
    Fix("PROPAGATED_BENEATH_LOCK", "namespace: keep the lock on a mount that a propagated copy is moved beneath",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("SET_GROUP_UNBINDABLE", "mount: refuse MOVE_MOUNT_SET_GROUP on an unbindable mount",
        fixed={"7.2": "7.2.11", "7.3": "7.3-rc7"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.9"}),
    Fix("STATMOUNT_RESERVED_STRING", "statmount: don't copy the reserved empty string past the buffer",
        fixed={"7.3": "7.3.4"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.13", "7.3": "7.3-rc7"}),
    Fix("LISTMOUNT_U64_MAX", "listmount: don't wrap around with a U64_MAX cursor",
        fixed={"7.3": "7.3.4"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.13", "7.3": "7.3-rc7"}),
    Fix("SETNS_SHARED_FS", "mount: refuse setns() with a shared fs_struct again",
        fixed={"7.3": "7.3.4"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.13", "7.3": "7.3-rc7"}),
    Fix("LISTNS_INACTIVE", "nstree: don't end listns() at an inactive namespace",
        fixed={"7.3": "7.3.4"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.13", "7.3": "7.3-rc7"}),
    Fix("PROC_NET_MOUNTPOINT", "proc: don't let an entry below /proc/<pid>/net be a mountpoint",
        fixed={"7.3": "7.3.4"}, lacking={"7.0": "7.0.13", "7.1": "7.1.13", "7.2": "7.2.13", "7.3": "7.3-rc7"}),
)}
