"""Inspect a kernel before booting it: is it an image of the host's architecture (an x86 bzImage
on amd64), whole, and can the guest boot on it?"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from base.errors import BadInput

from .arch import host


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    release: str  # first word of the header's version string, what `uname -r` prints
    version: str = ""  # the whole string: RELEASE (USER@HOST) #BUILD ... DATE


def inspect_image(path: Path) -> ImageInfo:
    """Read the image's header (the format of the host's architecture); reject what is not a
    whole image of that format."""
    version_of = _HEADER_READERS[host().image_format]
    try:
        with open(path, "rb") as f:
            head = f.read(0x4000)
            size = f.seek(0, 2)
    except FileNotFoundError:
        raise BadInput(f"kernel file not found: {path}") from None
    except IsADirectoryError:
        raise BadInput(f"{path} is a directory, not a kernel image") from None
    except OSError as e:
        raise BadInput(f"cannot read kernel file {path}: {e.strerror}") from None
    version = version_of(path, head, size)
    return ImageInfo(path, version.split(" ", 1)[0], version)


def _bzimage_version(path: Path, head: bytes, size: int) -> str:
    """The version string of an x86 boot protocol header; BadInput unless a whole bzImage."""
    if len(head) < 0x260 or head[0x202:0x206] != b"HdrS" or head[0x1FE:0x200] != b"\x55\xaa":
        raise BadInput(f"{path} is not an x86 Linux kernel image (no bzImage header)")
    setup_sects = head[0x1F1] or 4
    (syssize,) = struct.unpack_from("<I", head, 0x1F4)
    expected = (setup_sects + 1) * 512 + syssize * 16
    if size < expected:
        raise BadInput(f"{path} is truncated: {size} bytes, its header says {expected}")
    (ver_ptr,) = struct.unpack_from("<H", head, 0x20E)
    version = ""
    if ver_ptr:
        off = ver_ptr + 0x200
        with open(path, "rb") as f:
            f.seek(off)
            raw = f.read(512)
        version = raw.split(b"\0", 1)[0].decode("ascii", "replace")
    if not version.split(" ", 1)[0]:
        raise BadInput(f"{path}: the bzImage header carries no version string")
    return version


# Arch.image_format -> the reader of that format's header.
_HEADER_READERS = {"bzImage": _bzimage_version}


_CONFIG_LINE = re.compile(r"^(CONFIG_[A-Z0-9_]+)=(.*)$")


def read_config(path: Path) -> dict[str, str]:
    cfg = {}
    for line in path.read_text(errors="replace").splitlines():
        m = _CONFIG_LINE.match(line)
        if m:
            cfg[m[1]] = m[2]
    return cfg


def root_transport(cfg: dict[str, str], has_module) -> str:
    """How the guest can mount the host's root: 'virtiofs' or '9p'; BadInput if neither.

    has_module(name) says whether a loadable module of that name ships with the kernel,
    since an =m option without its module is as good as absent.
    """
    def avail(opt: str, mod: str) -> bool:
        v = cfg.get(opt)
        return v == "y" or (v == "m" and has_module(mod))

    missing = [opt for opt, mod in (("CONFIG_VIRTIO_PCI", "virtio_pci"),
                                    ("CONFIG_VIRTIO_CONSOLE", "virtio_console"))
               if not avail(opt, mod)]
    if missing:
        raise BadInput(f"the kernel lacks {', '.join(missing)}, which the virtme-ng guest needs")
    if avail("CONFIG_FUSE_FS", "fuse") and avail("CONFIG_VIRTIO_FS", "virtiofs"):
        return "virtiofs"
    if avail("CONFIG_9P_FS", "9p") and avail("CONFIG_NET_9P_VIRTIO", "9pnet_virtio"):
        return "9p"
    raise BadInput("the kernel has neither virtiofs (CONFIG_VIRTIO_FS) nor 9p (CONFIG_9P_FS) "
                   "usable, so the guest cannot mount the host's root")
