"""otns's own init for the guest, in place of virtme-ng's (the init is vm/guest_init.sh).

virtme-ng boots the kernel with `init=GUEST_TOOLS/bin/virtme-ng-init`, GUEST_TOOLS being
the `guest` folder of its own package. Its init spends most of a TCG boot on what otns
does not use: overlay mounts, systemd-tmpfiles, udev coldplug and settle (docs/environment.md,
"Where a guest's time goes"). otns gives virtme-run a staged copy of that folder (links to
every entry) whose bin/virtme-ng-init is vm/guest_init.sh, which keeps vng's contract with
the host (command, ports, exit status, init mounts); vng itself is unchanged.
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

SCRIPT = Path(__file__).with_name("guest_init.sh")
# Which init the guest runs: ours, or virtme-ng's own (slower; for comparison or debugging).
INITS = ("otns", "virtme-ng")
INIT_NAME = "virtme-ng-init"  # the file virtme-run looks for under GUEST_TOOLS/bin


def vng_guest_tools() -> Path:
    """virtme-ng's own guest-tools folder, found without importing virtme."""
    spec = importlib.util.find_spec("virtme")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("virtme-ng is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "guest"


def stage_guest_tools(folder: Path) -> Path:
    """`folder`, made a guest-tools folder whose init is otns's; returns it."""
    folder.mkdir()
    for entry in vng_guest_tools().iterdir():
        if entry.name not in ("bin", "__pycache__"):
            (folder / entry.name).symlink_to(entry)
    (folder / "bin").mkdir()
    # A copy, not a link: the installed file may have lost its mode bits; the guest runs it.
    init = folder / "bin" / INIT_NAME
    shutil.copyfile(SCRIPT, init)
    init.chmod(0o755)
    return folder


def prelude(folder: Path) -> str:
    """Python run before virtme-run's main(): its guest tools are `folder`."""
    return f"import virtme.resources as _r; _r.find_guest_tools = lambda: {str(folder)!r}; "
