"""Make the Rust virtiofsd available to virtme-ng, on Debian 12 and 13 alike.

Debian 13 packages it; Debian 12 has none, and trixie's build needs trixie's glibc. So we
unpack trixie's virtiofsd with the few libraries it links into the cache and put a wrapper
that runs it through that glibc's loader first on virtme-ng's PATH.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from base import cachedir, commands
from base.errors import InfraError
from base.safefs import new_folder
from kernels.apt import PrivateApt
from kernels.arch import host

_SYSTEM_PATHS = ("/usr/libexec/virtiofsd", "/usr/lib/virtiofsd/virtiofsd", "/usr/lib/virtiofsd")
# virtiofsd runs as root and does what the guest asks in the folders it shares. It keeps a
# list of capabilities; these are dropped: mknod (no device node is made on the host), setfcap
# (no file gets capabilities) and fsetid (a set-gid bit the guest's group does not entitle it
# to is cleared, as is a set-id bit on a file it writes to). A set-uid bit on a file root owns
# needs no capability: vm.share keeps such a file private until base.safefs.defuse clears it.
HARDENING = ("--modcaps=-mknod:-setfcap:-fsetid",)
TOOL_TIMEOUT = 600.0  # downloading and unpacking virtiofsd
_PACKAGES = ("virtiofsd", "libc6", "libcap-ng0", "libseccomp2", "libgcc-s1")
_SUITE = "trixie"


def _works(path: str) -> bool:
    """It runs, and takes the options otns gives it."""
    try:
        return subprocess.run([path, *HARDENING, "--version"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def system_virtiofsd() -> str | None:
    for path in (shutil.which("virtiofsd"), *_SYSTEM_PATHS):
        if path and os.access(path, os.X_OK) and _works(path):
            return path
    return None


def ready(cache_dir: Path) -> Path | None:
    """A working virtiofsd (the system's, or the one unpacked in the cache), fetching nothing."""
    system = system_virtiofsd()
    if system:
        return Path(system)
    wrapper = cache_dir / cachedir.TOOLS / "virtiofsd" / "bin" / "virtiofsd"
    if wrapper.exists() and _works(str(wrapper)):
        return wrapper
    return None


def ensure(cache_dir: Path, apt: PrivateApt) -> Path:
    """A working virtiofsd: the system's, or Debian's unpacked into the cache."""
    found = ready(cache_dir)
    if found:
        return found
    tool = cache_dir / cachedir.TOOLS / "virtiofsd"
    wrapper = tool / "bin" / "virtiofsd"
    try:
        with new_folder(tool, replace=True) as tmp:
            apt.update()
            names = [f"{p}/{_SUITE}" for p in _PACKAGES]
            debs = _download_names(apt, names, tmp / "debs")
            root = tmp / "root"
            for deb in debs:
                r = commands.run(["dpkg-deb", "-x", str(deb), str(root)], f"unpack {deb.name}", timeout=TOOL_TIMEOUT)
                if r.returncode != 0:
                    raise InfraError(f"cannot set up virtiofsd: dpkg-deb cannot unpack {deb.name}: "
                                     f"{' '.join(r.stderr.split())[:200]}")
            shutil.rmtree(tmp / "debs")
            (tmp / "bin").mkdir()
            (tmp / "bin" / "virtiofsd").write_text(wrapper_script(tool / "root"))
            (tmp / "bin" / "virtiofsd").chmod(0o755)
    except OSError as e:
        raise InfraError(f"cannot set up virtiofsd from Debian {_SUITE}: {e}") from None
    if not _works(str(wrapper)):
        raise InfraError(f"the virtiofsd unpacked into {tool} does not run")
    return wrapper


def hardened_script(real: Path) -> str:
    """The `virtiofsd` virtme-ng finds first on its PATH: the real one with HARDENING (the
    path is quoted for sh: the cache folder's path may hold any byte)."""
    return f"#!/bin/sh\nexec {shlex.quote(str(real))} {' '.join(HARDENING)} \"$@\"\n"


def wrapper_script(root: Path) -> str:
    """A virtiofsd that runs the unpacked one through its own glibc; root is quoted for sh
    (the cache folder's path may hold any byte)."""
    lib = f"$R/usr/lib/{host().multiarch}"
    return ("#!/bin/sh\n"
            f"R={shlex.quote(str(root))}\n"
            f'exec "{lib}/{host().loader}" '
            f'--library-path "{lib}" "$R/usr/libexec/virtiofsd" "$@"\n')


def _download_names(apt: PrivateApt, names: list[str], dest: Path) -> list[Path]:
    dest.mkdir(parents=True)
    r = commands.run(["apt-get", *apt.options(), "-q", "download", *names], "download virtiofsd", cwd=dest,
                     timeout=TOOL_TIMEOUT)
    if r.returncode != 0:
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("E:")]
        raise InfraError(f"cannot download virtiofsd: {lines[0] if lines else r.returncode}")
    return sorted(dest.glob("*.deb"))
