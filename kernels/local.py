"""A kernel on disk, ready to boot: the end of the kernels/ stage and the input of vm/."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .image import read_config, root_transport


@dataclass
class LocalKernel:
    image: Path | None  # None for the host kernel
    release: str
    source: str  # how the user named it, resolved: "debian 7.2.13-1 cloud (sid)", a path, "host"
    config: dict[str, str] | None = None
    moddir: Path | None = None
    fetch_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def is_host(self) -> bool:
        return self.image is None

    def has_module(self, name: str) -> bool:
        if self.moddir is None or not self.moddir.is_dir():
            return False
        variants = {name, name.replace("_", "-"), name.replace("-", "_")}
        return any(True for v in variants for _ in self.moddir.rglob(f"{v}.ko*"))

    def transport(self) -> str | None:
        """virtiofs or 9p when the config is known (BadInput if neither works); None if unknown."""
        if self.config is None:
            return None
        return root_transport(self.config, self.has_module)


def config_for(image: Path, release: str) -> tuple[dict[str, str] | None, Path | None]:
    """Find the config and modules that sit beside an image in a Debian-style or build tree."""
    candidates = [image.parent / f"config-{release}", image.parent / "config"]
    moddirs = []
    # .../boot/vmlinuz-R -> .../lib/modules/R ; .../lib/modules/R/vmlinuz -> that folder
    root = image.parent.parent
    for base in (root, root / "usr"):
        moddirs.append(base / "lib" / "modules" / release)
    if image.parent.name == release:
        moddirs.insert(0, image.parent)
    moddir = next((m for m in moddirs if m.is_dir()), None)
    if moddir:
        candidates.append(moddir / "config")
    cfg_path = next((c for c in candidates if c.is_file()), None)
    return (read_config(cfg_path) if cfg_path else None), moddir
