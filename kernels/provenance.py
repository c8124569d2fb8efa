"""Prove that a built tree's bootable image carries the kernel the tree just linked.

A make that succeeds is no proof: ccache once handed back an old `piggy.o` (the object that
pulls the compressed kernel into the bzImage with `.incbin`, which ccache cannot see), and
the image then booted an earlier build's kernel while `vmlinux` held the new code. So the
image itself is read: the compressed kernel inside it is unpacked and must be, byte for byte,
what the build made of the tree's `vmlinux` (x86: `arch/x86/boot/compressed/vmlinux.bin`,
the stripped kernel, then `vmlinux.relocs`), made after that vmlinux was linked; its version
banners, build number and link time included, must be vmlinux's; and the image's own header
must name the same build. The byte comparison holds even for reproducible builds
(KBUILD_BUILD_TIMESTAMP fixed), where two builds' banners are the same.
"""
from __future__ import annotations

import bz2
import lzma
import mmap
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

from base.errors import OtnsError

from .arch import host

BANNER = b"Linux version "
# A banner is one line; anything longer is not one.
_BANNER_MAX = 1024
# The x86 boot protocol's setup header fields (Documentation/arch/x86/boot.rst).
_SETUP_SECTS, _VERSION_PTR, _PAYLOAD_OFFSET, _PAYLOAD_LENGTH = 0x1F1, 0x20E, 0x248, 0x24C
# Compressed formats the kernel can use for its payload: their leading bytes and a reader.
# zstd, lz4 (legacy frames, `lz4 -l`) and lzo have no reader in Python's standard library;
# their command-line tools do it (scripts/setup --build installs them).
_CLI = {"zstd": ["zstd", "-dcq"], "lz4": ["lz4", "-dcq"], "lzo": ["lzop", "-dcq"]}
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"BZh", "bzip2"), (b"\x5d\x00\x00", "lzma"),
          (b"\x28\xb5\x2f\xfd", "zstd"), (b"\x02\x21\x4c\x18", "lz4"), (b"\x89LZO", "lzo"))


class StaleImage(OtnsError):
    """The image does not carry the kernel the tree linked: booting it would judge another kernel."""


@dataclass(frozen=True)
class Proof:
    banner: str  # the banner shared by vmlinux and the kernel inside the image
    compression: str


def banners_of(data: bytes | mmap.mmap) -> tuple[bytes, ...]:
    """Every `Linux version ...` line in a kernel's bytes, without its newline, in order.

    There are two since Linux 6.1: init/version.o's, compiled once with no build number
    (`# SMP ...`), and the one init/version-timestamp.c gets at each link (`#101 SMP ... DATE`),
    which the kernel prints at boot.
    """
    found, start = [], data.find(BANNER)
    while start != -1:
        end = data.find(b"\n", start, start + _BANNER_MAX)
        # linux_banner ends in a newline and a NUL; a format string ("%s version %s") does not.
        if end != -1 and data[end + 1:end + 2] == b"\0":
            found.append(bytes(data[start:end]))
        start = data.find(BANNER, start + 1)
    return tuple(dict.fromkeys(found))


def _file_banners(path: Path) -> tuple[bytes, ...]:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return banners_of(m)


def bzimage_payload(image: bytes) -> bytes:
    """The compressed kernel inside an x86 bzImage (boot protocol 2.08 and later)."""
    if len(image) < 0x260 or image[0x202:0x206] != b"HdrS":
        raise StaleImage("not an x86 bzImage (no setup header)")
    setup = ((image[_SETUP_SECTS] or 4) + 1) * 512
    offset, length = struct.unpack_from("<II", image, _PAYLOAD_OFFSET)
    start = setup + offset
    if not length or start + length > len(image):
        raise StaleImage("the bzImage's header names no payload inside the file")
    return image[start:start + length]


def header_version(image: bytes) -> str:
    """The bzImage header's kernel_version string: RELEASE (USER@HOST) #BUILD ... DATE."""
    (ptr,) = struct.unpack_from("<H", image, _VERSION_PTR)
    if not ptr:
        return ""
    raw = image[ptr + 0x200:ptr + 0x200 + 512]
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def decompress(payload: bytes) -> tuple[bytes, str]:
    """The kernel a payload holds, and the name of its compression."""
    kind = next((name for magic, name in _MAGIC if payload.startswith(magic)), None)
    if kind is None:
        raise StaleImage(f"the image's payload is in no compression the kernel uses (starts {payload[:6].hex()})")
    try:
        if kind == "gzip":
            # One member: older kernels append the size after it, which is no second member.
            return zlib.decompressobj(wbits=31).decompress(payload), kind
        if kind == "xz":
            # The kernel's xz payload carries a 4-byte size after the stream: read the stream alone.
            return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload), kind
        if kind == "lzma":
            return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(payload), kind
        if kind == "bzip2":
            return bz2.BZ2Decompressor().decompress(payload), kind
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as e:
        raise StaleImage(f"the image's {kind} payload does not unpack: {e}") from None
    tool = _CLI[kind]
    if shutil.which(tool[0]) is None:
        raise StaleImage(f"the image's payload is {kind}-compressed and {tool[0]} is not installed to read it: "
                         f"run scripts/setup --build")
    # The tools stop at the end of their frame and may complain about the size the kernel appends.
    r = subprocess.run(tool, input=payload, capture_output=True, timeout=120)
    if not r.stdout:
        raise StaleImage(f"the image's {kind} payload does not unpack: "
                         f"{r.stderr.decode(errors='replace').strip()[:200]}")
    return r.stdout, kind


# What the build compresses into an x86 image, in order, relative to the tree.
_X86_PAYLOAD_PARTS = ("arch/x86/boot/compressed/vmlinux.bin", "arch/x86/boot/compressed/vmlinux.relocs")


def _kernel_in_image(image: Path) -> tuple[bytes, str, str]:
    """(the kernel the image boots, its compression, the header's version string)."""
    data = image.read_bytes()
    if host().image_format != "bzImage":  # an uncompressed Image is the kernel itself
        return data, "none", ""
    kernel, kind = decompress(bzimage_payload(data))
    return kernel, kind, header_version(data)


def prove(tree: Path) -> Proof:
    """The tree's image carries the kernel of the tree's vmlinux; StaleImage (naming both) if not."""
    image, vmlinux = tree / host().image, tree / "vmlinux"
    if not vmlinux.is_file():
        raise StaleImage(f"{tree} has no vmlinux, so what {image.name} holds cannot be checked")
    want = _file_banners(vmlinux)
    if not want:
        raise StaleImage(f"{vmlinux} carries no version banner")
    kernel, kind, version = _kernel_in_image(image)
    _same_bytes_as_the_link(tree, kernel, image, vmlinux)
    got = banners_of(kernel)
    if got != want:
        raise StaleImage(f"{image} does not carry the kernel the tree linked: it boots "
                         f"{_show(got)}, vmlinux is {_show(want)}")
    # The last banner is the one the kernel prints; the header, from the setup code built apart
    # from the payload, must name that build too.
    banner = want[-1].decode("ascii", "replace")
    if version and not same_build(version, banner):
        raise StaleImage(f"{image}'s header names another build ({version!r}) than its kernel ({_show(want)})")
    return Proof(banner, kind)


def _same_bytes_as_the_link(tree: Path, kernel: bytes, image: Path, vmlinux: Path) -> None:
    parts = [tree / p for p in _X86_PAYLOAD_PARTS if (tree / p).is_file()] if host().kernel == "x86" else []
    if not parts:
        return  # another architecture or layout: the banners below still compare
    stripped = parts[0]
    if stripped.stat().st_mtime_ns < vmlinux.stat().st_mtime_ns:
        raise StaleImage(f"{stripped} is older than {vmlinux}: the build did not remake it from the kernel it linked")
    made = b"".join(p.read_bytes() for p in parts)
    if kernel != made:
        at = next((i for i, (a, b) in enumerate(zip(kernel, made, strict=False)) if a != b), min(len(kernel), len(made)))
        raise StaleImage(f"{image} does not carry the kernel the tree linked: the kernel inside it "
                         f"({len(kernel)} bytes) differs from {stripped.relative_to(tree)} and the rest "
                         f"({len(made)} bytes) from byte {at} on")


def _show(banners: tuple[bytes, ...]) -> str:
    if not banners:
        return "a kernel with no version banner"
    text = banners[-1].decode("ascii", "replace")
    # RELEASE ... #BUILD ... DATE: the release and what follows the compiler's parenthesis.
    release = text.removeprefix("Linux version ").split(" ", 1)[0]
    return f"{release} {text.rsplit(') ', 1)[-1]!r}"


def same_build(header: str, banner: str) -> bool:
    """Does a kernel's version banner (what it prints first) name the build an image's header names?

    The header is `RELEASE (USER@HOST) #BUILD ... DATE`; the banner adds the compiler:
    `Linux version RELEASE (USER@HOST) (COMPILER) #BUILD ... DATE`.
    """
    release, _, rest = header.partition(" ")
    uts = rest.split(") ", 1)[1] if ") " in rest else ""
    return bool(uts) and banner.startswith(f"Linux version {release} ") and banner.endswith(uts)


def newer_source(tree: Path, image: Path) -> Path | None:
    """A C, header, assembler, Kconfig or Makefile of the tree changed after the image was built."""
    tree = tree.resolve()
    # Absolute paths: find never reads one as an option.
    cmd = ["find", str(tree), "-path", str(tree / ".git"), "-prune", "-o", "-type", "f", "-newer", str(image.resolve()),
           "(", "-name", "*.[chS]", "-o", "-name", "Kconfig*", "-o", "-name", "Makefile", ")", "-print", "-quit"]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    first = r.stdout.split(b"\n", 1)[0]
    return Path(first.decode(errors="surrogateescape")) if first else None
