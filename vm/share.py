"""The guest's read-write folder: shared from inside a private folder, swept before the host uses it.

What the guest writes there, virtiofsd (or QEMU, for 9p) creates on the host as root. So the
guest is not given the results folder itself but RESULTS/.otns-guest/rw, whose parent is
mode 0700 and out of the guest's reach: whatever slips through virtiofsd's limits
(vm.virtiofsd) no other user can reach while the guest runs, even if the guest opens up the
mode of the folder it sees. Once the VM has stopped, base.safefs.defuse sweeps the share, and
only then is what it holds moved into the results folder.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

from base import fdtree, safefs
from base.filenames import GUEST_SHARE, HOST_WRITTEN

_SHARE = "rw"


def folder(results: Path) -> Path:
    """The folder the guest gets for `results` (vng's --rwdir)."""
    return results / GUEST_SHARE / _SHARE


def create(results: Path) -> Path:
    """A fresh, empty share for `results`; whatever an earlier, killed run left is removed first."""
    dfd = os.open(results, fdtree.DIR_FLAGS)
    try:
        fdtree.remove(dfd, GUEST_SHARE)
        os.mkdir(GUEST_SHARE, 0o700, dir_fd=dfd)
        hfd = os.open(GUEST_SHARE, fdtree.DIR_FLAGS, dir_fd=dfd)
        try:
            os.fchmod(hfd, 0o700)  # exactly, whatever the umask
            os.mkdir(_SHARE, 0o755, dir_fd=hfd)
        finally:
            os.close(hfd)
    finally:
        os.close(dfd)
    return folder(results)


def collect(results: Path) -> list[safefs.Unsafe]:
    """After the VM stopped: sweep the share, move what it holds into `results` (a name the host
    writes stays the host's: the guest's is dropped), remove the share. Returns what the sweep
    found. Nothing is moved when the sweep fails: the share stays private until the next run."""
    share = folder(results)
    if not os.path.lexists(share):
        return []
    found = safefs.defuse(share)
    dfd = os.open(results, fdtree.DIR_FLAGS)
    try:
        sfd = os.open(share, fdtree.DIR_FLAGS)
        try:
            for name in sorted(os.listdir(sfd)):
                if name in HOST_WRITTEN:
                    fdtree.remove(sfd, name)
                    continue
                try:
                    os.rename(name, name, src_dir_fd=sfd, dst_dir_fd=dfd)
                except OSError as e:
                    if e.errno not in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST):
                        raise
                    fdtree.remove(dfd, name)  # an earlier round's file or folder of that name
                    os.rename(name, name, src_dir_fd=sfd, dst_dir_fd=dfd)
        finally:
            os.close(sfd)
        fdtree.remove(dfd, GUEST_SHARE)
    finally:
        os.close(dfd)
    return found
