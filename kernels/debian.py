"""Debian's kernel packages: parse the archive index into kernels, order and resolve them.

Pure functions over Packages text; fetching the index is kernels/apt.py's job.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from debian.deb822 import Packages
from debian.debian_support import Version

from .arch import KERNEL_KINDS, OTHER_KINDS, flavour_names, host

FLAVOURS = flavour_names()
# Bumped when parse_index reads the same index differently: the cached parse is then redone.
PARSER_VERSION = 2

# An old-layout linux-image package smaller than this is a metapackage (e.g. linux-image-6.12-amd64).
_MIN_IMAGE_KB = 5000


@dataclass(frozen=True)
class PackageRef:
    name: str
    version: str
    filename: str
    size: int


@dataclass
class DebianKernel:
    """One bootable kernel of the archive: a flavour of one ABI at one package version."""

    upstream: str  # 7.2.13, 7.3-rc7, 6.1.192
    debian_version: str  # package version: 7.2.13-1, 7.3~rc7-1~exp1
    abi: str  # 7.2.13+deb14, 6.1.0-56
    flavour: str  # a Flavour.name of kernels/arch.py: cloud | amd64
    layout: str  # image | split
    kernel_pkg: PackageRef
    base_pkg: PackageRef | None = None
    modules_pkg: PackageRef | None = None
    suites: list[str] = field(default_factory=list)

    @property
    def release(self) -> str:
        """What `uname -r` prints in the booted kernel."""
        return f"{self.abi}-{host().flavour(self.flavour).suffix}"

    @property
    def ident(self) -> str:
        """A file-name-safe unique key, used for the cache folder."""
        return f"{self.release}_{self.debian_version}".replace("~", "_").replace(":", "_")

    @property
    def version(self) -> Version:
        return Version(self.debian_version)

    def packages(self) -> list[PackageRef]:
        """What to download: the kernel, its config, and modules only where the guest needs them."""
        pkgs = [self.kernel_pkg]
        if self.base_pkg:
            pkgs.append(self.base_pkg)
        if host().flavour(self.flavour).needs_modules and self.modules_pkg:
            pkgs.append(self.modules_pkg)
        return pkgs

    def to_json(self) -> dict:
        return {
            "upstream": self.upstream, "debian_version": self.debian_version, "abi": self.abi,
            "flavour": self.flavour, "layout": self.layout, "suites": self.suites,
            "kernel_pkg": vars(self.kernel_pkg),
            "base_pkg": vars(self.base_pkg) if self.base_pkg else None,
            "modules_pkg": vars(self.modules_pkg) if self.modules_pkg else None,
        }

    @classmethod
    def from_json(cls, d: dict) -> DebianKernel:
        ref = lambda x: PackageRef(**x) if x else None  # noqa: E731
        return cls(d["upstream"], d["debian_version"], d["abi"], d["flavour"], d["layout"],
                   PackageRef(**d["kernel_pkg"]), ref(d["base_pkg"]), ref(d["modules_pkg"]), list(d["suites"]))


def upstream_version(debian_version: str) -> str:
    """7.2.13-1 -> 7.2.13; 7.3~rc7-1~exp1 -> 7.3-rc7; 6.12.43-1~bpo12+1 -> 6.12.43."""
    v = debian_version.split(":", 1)[-1]
    if "-" in v:
        v = v.rsplit("-", 1)[0]
    return v.replace("~rc", "-rc")


def upstream_key(upstream: str) -> Version:
    """Order upstream versions as Debian would: 7.3-rc7 sorts before 7.3 and 7.3.4."""
    return Version(upstream.replace("-rc", "~rc"))


def kernel_stanzas(text: str):
    """Yield the stanzas of a Packages file that belong to kernel packages, cheaply.

    A suite's index holds ~60k stanzas; parsing only those named linux-* keeps this fast.
    """
    for chunk in text.split("\n\n"):
        if chunk.startswith("Package: linux-"):
            yield Packages(chunk)


def parse_index(indexes: dict[str, str]) -> list[DebianKernel]:
    """Build the list of bootable kernels from {suite: Packages text}."""
    arch = host()
    kernel_pkg, other_pkg = arch.package_pattern(KERNEL_KINDS), arch.package_pattern(OTHER_KINDS)
    kernels: dict[tuple[str, str, str], DebianKernel] = {}
    extras: dict[tuple[str, str, str, str], PackageRef] = {}
    for suite, text in indexes.items():
        for st in kernel_stanzas(text):
            fields = _checked(st)
            if fields is None:
                continue  # a stanza apt itself would not use: no kernel of ours
            name, version, size, installed = fields
            ref = PackageRef(name, version, st.get("Filename", ""), size)
            m = kernel_pkg.match(name)
            if m:
                kind, abi, flav = m["kind"], m["abi"], arch.flavour_named_by(m["flav"]).name
                if kind == "image" and installed < _MIN_IMAGE_KB:
                    continue  # metapackage, or the empty linux-image of the split layout
                key = (abi, flav, version)
                k = kernels.get(key)
                if k is None:
                    k = kernels[key] = DebianKernel(
                        upstream=upstream_version(version), debian_version=version, abi=abi,
                        flavour=flav, layout="split" if kind == "binary" else "image", kernel_pkg=ref)
                if suite not in k.suites:
                    k.suites.append(suite)
                continue
            m = other_pkg.match(name)
            if m:
                extras[(m["kind"], m["abi"], arch.flavour_named_by(m["flav"]).name, version)] = ref
    for (abi, flav, version), k in kernels.items():
        if k.layout == "split":
            k.base_pkg = extras.get(("base", abi, flav, version))
            k.modules_pkg = extras.get(("modules", abi, flav, version))
    return sort_kernels(list(kernels.values()))


def _checked(st: Packages) -> tuple[str, str, int, int] | None:
    """(name, version, size, installed size) of a well-formed stanza, else None."""
    name, version = st.get("Package", ""), st.get("Version", "")
    try:
        Version(version)
        size, installed = int(st.get("Size", 0)), int(st.get("Installed-Size", 0))
    except ValueError:
        return None
    if not name or size < 0 or installed < 0:
        return None
    return name, version, size, installed


def sort_kernels(kernels: list[DebianKernel]) -> list[DebianKernel]:
    """Oldest first, as Debian orders package versions."""
    return sorted(kernels, key=lambda k: (k.version, k.abi, k.flavour))


def newest_per_upstream(kernels: list[DebianKernel], flavour: str) -> list[DebianKernel]:
    """One kernel of the flavour per upstream version: its newest package (kernels are oldest
    first, so the last one wins), in the order the upstream versions first appear."""
    newest: dict[str, DebianKernel] = {}
    for k in kernels:
        if k.flavour == flavour:
            newest[k.upstream] = k
    return list(newest.values())


class UnknownVersion(LookupError):
    def __init__(self, query: str, near: list[str]):
        self.query, self.near = query, near
        hint = f"; near: {', '.join(near)}" if near else ""
        super().__init__(f"no Debian kernel matches version {query!r}{hint}")


def resolve(kernels: list[DebianKernel], query: str, flavour: str) -> DebianKernel:
    """Pick the kernel for a query: 'latest', '7.2' (newest 7.2.x), '7.0.12' (exact), '7.3-rc7',
    or a package version ('7.2.13-1', '7.0.12-2~bpo13+1': that very package)."""
    pool = [k for k in kernels if k.flavour == flavour]
    if not pool:
        raise UnknownVersion(query, [])
    if query == "latest":
        return max(pool, key=lambda k: k.version)
    exact = [k for k in pool if k.debian_version == query]
    if exact:
        return exact[0]
    matches = [k for k in pool if k.upstream == query or k.upstream.startswith(query + ".")]
    if matches:
        return max(matches, key=lambda k: k.version)
    raise UnknownVersion(query, nearby_versions(pool, query))


def nearby_versions(kernels: list[DebianKernel], query: str, n: int = 3) -> list[str]:
    """The upstream versions on either side of where the query would sort."""
    ups = sorted({k.upstream for k in kernels}, key=upstream_key)
    try:
        q = upstream_key(query)
    except ValueError:
        return ups[-n:]
    below = [u for u in ups if upstream_key(u) < q][-n:]
    above = [u for u in ups if upstream_key(u) > q][:n]
    return below + above
