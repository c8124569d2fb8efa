"""Debian's kernel source as a tree to build: `debian-source:7.2` names the newest
linux-source-7.2 package in the archive (its tarball, kept in the cache once fetched).

So a CI job (or a newcomer) can build, mutate or measure coverage on a real tree with one
spec, as `debian:7.2` names a binary kernel.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from debian.deb822 import Packages
from debian.debian_support import Version

from base import cachedir
from base.errors import BadInput, InfraError
from base.locks import locked

from .apt import PrivateApt
from .debian import PackageRef

PREFIX = "debian-source:"
_SERIES = re.compile(r"\d+\.\d+")


def is_source_spec(text: str) -> bool:
    return text.startswith(PREFIX)


def newest(indexes: dict[str, str], series: str) -> PackageRef | None:
    """The highest version of linux-source-SERIES in {suite: Packages text}."""
    name, best = f"linux-source-{series}", None
    for text in indexes.values():
        for chunk in text.split("\n\n"):
            if f"Package: {name}\n" not in chunk + "\n":
                continue
            st = Packages(chunk)
            if st.get("Package") != name:
                continue
            try:
                ref = PackageRef(name, st["Version"], st["Filename"], int(st["Size"]))
            except (KeyError, ValueError):
                continue
            if best is None or Version(ref.version) > Version(best.version):
                best = ref
    return best


def fetch(spec: str, cache_dir: Path) -> Path:
    """The tarball of `debian-source:X.Y` in the cache (cache/sources/linux-source-X.Y.tar.xz),
    fetched through the private apt when missing; renamed into place whole."""
    series = spec.removeprefix(PREFIX)
    if not _SERIES.fullmatch(series):
        raise BadInput(f"{spec!r}: debian-source: takes a kernel series, e.g. debian-source:7.2")
    dest = cache_dir / cachedir.SOURCES
    tarball = dest / f"linux-source-{series}.tar.xz"
    dest.mkdir(parents=True, exist_ok=True)
    with locked(dest / f"linux-source-{series}.lock", f"otns: waiting for another run fetching linux-source-{series}"):
        if tarball.is_file():
            return tarball
        apt = PrivateApt(cache_dir / cachedir.APT)
        apt.update()
        ref = newest(apt.indexes(), series)
        if ref is None:
            raise BadInput(f"Debian's archive has no linux-source-{series} (see `otns kernels list --all` "
                           f"for the series it holds)")
        # A scratch folder beside the tarball: a killed fetch leaves no tarball, only scratch.
        with tempfile.TemporaryDirectory(prefix=f".fetch-linux-source-{series}-", dir=dest) as scratch:
            tmp = Path(scratch)
            deb = apt.download([ref], tmp)[0]
            member = f"./usr/src/linux-source-{series}.tar.xz"
            extract = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
            r = subprocess.run(["tar", "-x", "-C", str(tmp), "--strip-components=3", member], stdin=extract.stdout,
                               capture_output=True, text=True)
            extract.stdout.close()  # type: ignore[union-attr]
            if extract.wait() != 0 or r.returncode != 0:
                raise InfraError(f"cannot unpack {deb.name}: {r.stderr.strip()[:200] or 'dpkg-deb failed'}")
            (tmp / tarball.name).replace(tarball)
    return tarball
