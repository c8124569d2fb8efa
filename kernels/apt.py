"""A private apt configuration under the cache folder: index Debian's kernels, download packages.

/etc/apt is read (to learn the mirror this machine uses) but never changed.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from base.errors import InfraError
from base.locks import locked
from base.safefs import write_atomic

from .arch import host
from .debian import PackageRef

# Suites that carry Debian's kernels from 6.1 to the newest release candidate.
SUITES = ("sid", "experimental", "trixie", "trixie-backports", "trixie-security",
          "bookworm", "bookworm-backports", "bookworm-security")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
INDEX_MAX_AGE = 6 * 3600


def system_mirrors() -> tuple[str, str | None]:
    """The (main, security) archive URIs the host's own apt uses; OTNS_DEBIAN_MIRROR overrides."""
    override = os.environ.get("OTNS_DEBIAN_MIRROR")
    if override:
        return override.rstrip("/") + "/", os.environ.get("OTNS_DEBIAN_SECURITY_MIRROR")
    try:
        out = subprocess.run(["apt-get", "indextargets", "--format", "$(REPO_URI)"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise InfraError(f"cannot read the host's apt configuration: {e}") from None
    uris = sorted(set(out.split()))
    main = next((u for u in uris if "security" not in u), None)
    security = next((u for u in uris if "security" in u), None)
    if main is None:
        raise InfraError("the host's apt has no Debian source to learn the mirror from; "
                         "set OTNS_DEBIAN_MIRROR")
    return main, security


def _update_failure(output: str) -> str | None:
    """The first failure apt-get update reported, with its cause, or None."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Err:"):
            cause = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].startswith(" ") else ""
            return f"{line.split(' ', 1)[-1]}: {cause}" if cause else line
        if line.startswith("E:"):
            return line[2:].strip()
    return None


class PrivateApt:
    def __init__(self, root: Path):
        self.root = root
        self.sources = root / "sources.list"
        self.state = root / "state"
        self.cache = root / "cache"

    def _ensure_layout(self) -> None:
        for d in (self.state / "lists" / "partial", self.cache / "archives" / "partial",
                  self.root / "preferences.d"):
            d.mkdir(parents=True, exist_ok=True)
        main, security = system_mirrors()
        lines = []
        for suite in SUITES:
            uri = security if suite.endswith("-security") else main
            if uri:
                lines.append(f"deb [arch={host().debian} signed-by={KEYRING}] {uri} {suite} main")
        text = "\n".join(lines) + "\n"
        if not self.sources.exists() or self.sources.read_text() != text:
            write_atomic(self.sources, text)

    def options(self) -> list[str]:
        opts = {
            "Dir::Etc::SourceList": str(self.sources),
            "Dir::Etc::SourceParts": str(self.root / "none.d"),
            "Dir::Etc::Preferences": str(self.root / "preferences"),
            "Dir::Etc::PreferencesParts": str(self.root / "preferences.d"),
            "Dir::State": str(self.state),
            "Dir::State::status": str(self.root / "status"),
            "Dir::Cache": str(self.cache),
            "Acquire::Languages": "none",
            "APT::Architecture": host().debian,
            "APT::Architectures": host().debian,
            "APT::Sandbox::User": "root",
            "Debug::NoLocking": "1",  # our own flock below serialises otns runs
            "Acquire::Retries": "2",
            "Acquire::http::Timeout": "20",
        }
        return [x for k, v in opts.items() for x in ("-o", f"{k}={v}")]

    def _lists(self) -> list[tuple[str, Path]]:
        """(suite, Packages file) pairs, read off the list folder: asking apt-get would make it
        rebuild its cache from all indexes, which costs seconds on every run."""
        found = []
        arch = host().debian
        list_name = re.compile(rf"_dists_(?P<suite>[^_]+)_main_binary-{re.escape(arch)}_Packages")
        for path in sorted((self.state / "lists").glob(f"*_dists_*_binary-{arch}_Packages*")):
            m = list_name.search(path.name)
            if m and not path.name.endswith((".diff_Index", ".IndexDiff")):
                found.append((m["suite"], path))
        return found

    def age(self) -> float | None:
        stamp = self.root / "updated"
        return time.time() - stamp.stat().st_mtime if stamp.exists() else None

    def update(self, max_age: float = INDEX_MAX_AGE, notice: Callable[[str], None] = print) -> None:
        """Refresh the index if it is older than max_age; a stale index beats none."""
        age = self.age()
        if age is not None and age < max_age and self._lists():
            return  # fresh: no lock, no apt-get, no look at the host's configuration
        with locked(self.root / "lock"):
            self._ensure_layout()
            age = self.age()
            if age is not None and age < max_age:
                return
            (self.root / "status").touch()
            r = subprocess.run(["apt-get", *self.options(), "-q", "update"],
                               capture_output=True, text=True)
            reason = _update_failure(r.stdout + r.stderr)
            if r.returncode == 0 and reason is None:
                (self.root / "updated").touch()
                return
            reason = reason or f"apt-get update exited {r.returncode}"
            if self._lists():
                notice(f"otns: cannot refresh Debian's index ({reason}); using the copy from "
                       f"{int((age or 0) / 3600)} h ago")
                return
            raise InfraError(f"cannot reach Debian's archive: {reason}")

    def indexes(self) -> dict[str, str]:
        """{suite codename: Packages text} for every suite in the private configuration."""
        result = {}
        for codename, path in self._lists():
            r = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", str(path)],
                               capture_output=True, text=True)
            if r.returncode == 0:
                result[codename] = r.stdout
        return result

    def index_signature(self) -> str:
        """Changes whenever any list file changes: the key for caching the parsed index."""
        return ";".join(f"{p.name}:{p.stat().st_mtime_ns}" for _, p in sorted(self._lists()))

    def download(self, pkgs: list[PackageRef], dest: Path,
                 progress: Callable[[float], None] | None = None) -> list[Path]:
        """Download exact package versions into dest; progress gets 0..100."""
        dest.mkdir(parents=True, exist_ok=True)
        self._ensure_layout()
        rfd, wfd = os.pipe()
        cmd = ["apt-get", *self.options(), "-o", f"APT::Status-Fd={wfd}", "-q", "download",
               *[f"{p.name}={p.version}" for p in pkgs]]
        proc = subprocess.Popen(cmd, cwd=dest, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, pass_fds=(wfd,))
        os.close(wfd)
        with os.fdopen(rfd) as status:
            for line in status:
                # dlstatus:ITEM:PERCENT:TEXT
                parts = line.split(":", 3)
                if progress and len(parts) >= 3 and parts[0] == "dlstatus":
                    try:
                        progress(float(parts[2]))
                    except ValueError:
                        pass
        out = proc.stdout.read() if proc.stdout else ""
        rc = proc.wait()
        if rc != 0:
            lines = [ln for ln in out.splitlines() if ln.startswith(("E:", "Err:"))]
            reason = lines[0] if lines else out.strip().splitlines()[-1:] or [f"exit {rc}"]
            if "No space left" in out:
                raise InfraError(f"disk full while downloading into {dest}")
            raise InfraError(f"cannot download {', '.join(p.name for p in pkgs)}: "
                             f"{reason if isinstance(reason, str) else reason[0]}")
        files = []
        for p in pkgs:
            matches = sorted(dest.glob(f"{p.name}_*.deb"))
            if not matches:
                raise InfraError(f"apt-get reported success but {p.name} is not in {dest}")
            files.append(matches[0])
        return files
