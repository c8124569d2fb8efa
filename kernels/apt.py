"""A private apt configuration under the cache folder: index Debian's kernels, download packages.

/etc/apt is read (to learn the mirror this machine uses) but never changed.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from base import commands
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
# Debian's index for SUITES takes about 65 MB; apt needs room for the new files beside the old.
INDEX_MIN_FREE = 200 << 20
# Time limits: apt's own (Acquire::http::Timeout) ends a connection that stalls; these end an
# apt that stalls for any other reason (a full disk made apt-get update hang without a word).
QUICK_TIMEOUT = 60.0
UPDATE_TIMEOUT = 900.0
DOWNLOAD_TIMEOUT = 300.0
DOWNLOAD_MIN_RATE = 50_000  # bytes a second: slower than this, a download is given up


def system_mirrors() -> tuple[str, str | None]:
    """The (main, security) archive URIs the host's own apt uses; OTNS_DEBIAN_MIRROR overrides."""
    override = os.environ.get("OTNS_DEBIAN_MIRROR")
    if override:
        return override.rstrip("/") + "/", os.environ.get("OTNS_DEBIAN_SECURITY_MIRROR")
    r = commands.run(["apt-get", "indextargets", "--format", "$(REPO_URI)"], "read the host's apt configuration",
                     timeout=QUICK_TIMEOUT)
    if r.returncode != 0:
        raise InfraError(f"cannot read the host's apt configuration: apt-get exited {r.returncode}: "
                         f"{' '.join(r.stderr.split())[:200]}")
    out = r.stdout
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

    def update(self, max_age: float = INDEX_MAX_AGE, notice: Callable[[str], object] = print) -> None:
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
            free = shutil.disk_usage(self.root).free
            if free < INDEX_MIN_FREE:
                # apt-get update on a full disk hangs rather than fail (measured: no output, no end).
                reason: str | None = (f"not enough free disk in {self.root}: {free >> 20} MiB free, about "
                          f"{INDEX_MIN_FREE >> 20} MiB needed")
            else:
                try:
                    r = commands.run(["apt-get", *self.options(), "-q", "update"], "update Debian's index",
                                     timeout=UPDATE_TIMEOUT)
                    reason = _update_failure(r.stdout + r.stderr)
                    if r.returncode == 0 and reason is None:
                        (self.root / "updated").touch()
                        return
                    reason = reason or f"apt-get update exited {r.returncode}"
                except InfraError as e:
                    reason = str(e)
            if self._lists():
                notice(f"otns: cannot refresh Debian's index ({reason}); using the copy from "
                       f"{int((age or 0) / 3600)} h ago")
                return
            raise InfraError(f"cannot {'update' if free < INDEX_MIN_FREE else 'reach'} Debian's "
                             f"{'index' if free < INDEX_MIN_FREE else 'archive'}: {reason}")

    def indexes(self) -> dict[str, str]:
        """{suite codename: Packages text} for every suite in the private configuration."""
        result = {}
        for codename, path in self._lists():
            r = commands.run(["/usr/lib/apt/apt-helper", "cat-file", str(path)], "read Debian's index",
                             timeout=QUICK_TIMEOUT)
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
        limit = DOWNLOAD_TIMEOUT + sum(p.size for p in pkgs) / DOWNLOAD_MIN_RATE
        with tempfile.TemporaryFile() as log:
            try:
                proc = commands.start(cmd, "download from Debian's archive", cwd=dest, stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, pass_fds=(wfd,))
            finally:
                os.close(wfd)
            # The status lines come as long as apt writes them; the timer ends a download that stalls.
            timed_out = threading.Event()

            def stop() -> None:
                timed_out.set()
                os.killpg(proc.pid, signal.SIGKILL)
            timer = threading.Timer(limit, stop)
            timer.start()
            try:
                with os.fdopen(rfd) as status:
                    for line in status:
                        # dlstatus:ITEM:PERCENT:TEXT
                        parts = line.split(":", 3)
                        if progress and len(parts) >= 3 and parts[0] == "dlstatus":
                            try:
                                progress(float(parts[2]))
                            except ValueError:
                                pass
                proc.wait()
            finally:
                timer.cancel()
                commands.kill_group(proc)
            log.seek(0)
            out = log.read().decode("utf-8", "replace")
        if timed_out.is_set():
            raise InfraError(f"cannot download {', '.join(p.name for p in pkgs)}: apt-get did not finish within "
                             f"{limit:.0f} s (stopped)")
        rc = proc.returncode
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
