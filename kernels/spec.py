"""Kernel specs as users type them, and a local one's kernel on disk (kernels/resolve.py
resolves every kind, fetching Debian's).

debian:latest | debian:7.2 | debian:7.0.12 | debian:7.3-rc7   (with a flavour)
PATH to a bzImage/vmlinuz | PATH to a kernel build tree | an installed release name | host
"""
from __future__ import annotations

import enum
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from base.errors import BadInput

from .arch import host
from .image import inspect_image, read_config
from .local import LocalKernel, config_for

DEFAULT_FLAVOUR = "cloud"


class Kind(str, enum.Enum):
    DEBIAN = "debian"  # debian:VERSION, fetched from the archive
    IMAGE = "image"  # a kernel image file (or an installed release's)
    TREE = "tree"  # a built kernel tree
    HOST = "host"  # the running kernel, no VM


def label(kernel: str, flavour: str) -> str:
    """A kernel as otns names it to the user: the spec, and its flavour when not the default."""
    return kernel + ("" if flavour == DEFAULT_FLAVOUR else f" ({flavour})")


@dataclass(frozen=True)
class KernelSpec:
    kind: Kind
    value: str  # version query, path, or ""
    flavour: str = DEFAULT_FLAVOUR

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Kind(self.kind))  # "debian" as typed in a test is Kind.DEBIAN

    def __str__(self) -> str:
        if self.kind is Kind.DEBIAN:
            return label(f"debian:{self.value}", self.flavour)
        return self.value or self.kind.value


def parse_spec(text: str, flavour: str = DEFAULT_FLAVOUR) -> KernelSpec:
    arch = host()  # first: on a host otns does not support, that is the one thing to say
    flavours = [f.name for f in arch.flavours]
    if flavour not in flavours:
        raise BadInput(f"unknown flavour {flavour!r}; choose one of {', '.join(flavours)}")
    text = text.strip()
    if not text:
        raise BadInput("empty kernel spec")
    if text == "host":
        return KernelSpec(Kind.HOST, "")
    if text.startswith("debian:"):
        query = text.split(":", 1)[1]
        if not query:
            raise BadInput("debian: needs a version, e.g. debian:latest or debian:7.2")
        return KernelSpec(Kind.DEBIAN, query, flavour)
    path = Path(os.path.expanduser(text))  # ~user that does not exist stays as typed
    if path.is_dir():
        if (path / arch.image).is_file():
            return KernelSpec(Kind.TREE, str(path.resolve()))
        raise BadInput(f"{text} is a folder but not a built kernel tree (no {arch.image})")
    if path.exists():
        return KernelSpec(Kind.IMAGE, str(path.resolve()))
    installed = installed_image(text)
    if installed is not None:
        return KernelSpec(Kind.IMAGE, str(installed))
    if "/" in text or text.startswith("."):
        raise BadInput(f"kernel file not found: {text}")
    raise BadInput(f"unknown kernel spec {text!r}: not a file, a build tree, an installed release, "
                   "'host' or debian:VERSION")


def installed_image(release: str) -> Path | None:
    for cand in (Path("/boot") / f"vmlinuz-{release}", Path("/usr/lib/modules") / release / "vmlinuz",
                 Path("/lib/modules") / release / "vmlinuz"):
        if cand.is_file():
            return cand
    return None


def local_kernel(spec: KernelSpec) -> LocalKernel:
    """Resolve a non-Debian spec to a kernel on disk (Debian specs go through kernels.fetch)."""
    if spec.kind is Kind.HOST:
        return LocalKernel(image=None, release=platform.release(), source="host")
    if spec.kind is Kind.TREE:
        tree = Path(spec.value)
        info = inspect_image(tree / host().image)
        cfg_path = tree / ".config"
        config = read_config(cfg_path) if cfg_path.is_file() else None
        return LocalKernel(image=info.path, release=info.release, source=f"tree {tree}",
                           config=config, extra={"tree": str(tree)})
    if spec.kind is Kind.IMAGE:
        path = Path(spec.value)
        if not os.access(path, os.R_OK):
            raise BadInput(f"cannot read kernel file {path}")
        info = inspect_image(path)
        config, moddir = config_for(path, info.release)
        return LocalKernel(image=path, release=info.release, source=f"image {path}",
                           config=config, moddir=moddir)
    raise BadInput(f"cannot resolve {spec} locally")
