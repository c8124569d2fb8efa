"""What otns knows about a CPU architecture and its Debian kernels, as data: one `Arch` entry
per architecture, the host's own chosen by `host()`. Every file that needs such a fact (the
image's name and header, Debian's package names and flavours, apt's architecture, the QEMU
binary and options, virtiofsd's loader, KCIDB's architecture name) reads it from here.

A second architecture is a new entry in ARCHES, e.g. arm64: machine "aarch64", debian "arm64",
kernel "arm64", image "arch/arm64/boot/Image" (image_format "Image", with its own header check in
kernels.image), flavours cloud-arm64 and arm64, qemu-system-aarch64, multiarch aarch64-linux-gnu,
loader ld-linux-aarch64.so.1. The QEMU machine (virt) and the console (ttyAMA0) need no entry:
virtme-ng picks both from the architecture itself, as it picks pc and ttyS0 on amd64.
"""
from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from functools import cache

from base.errors import InfraError

# Debian names a kernel package linux-image-ABI-FLAVOUR (one package, old layout) or
# linux-binary-ABI-FLAVOUR (split layout, with linux-modules-* and linux-base-* beside it).
# An ABI is 7.2.13+deb14, 6.1.0-56 or 7.3: after its first hyphen only a number may follow, so the
# PREEMPT_RT packages (linux-image-6.1.0-56-rt-amd64, linux-binary-7.2.13+deb14-rt-amd64) match no
# flavour. They are left out on purpose: the generic config plus PREEMPT_RT, the same mount code,
# never tried under virtme-ng here; read as ABI "...-rt" of the amd64 flavour, they would replace
# the generic kernels in `otns kernels list --flavour amd64` and in bisect ranges.
ABI = r"(?P<abi>\d+\.\d+[\w.+~]*(?:-\d[\w.+~]*)*)"
KERNEL_KINDS = ("image", "binary")  # the package that holds the kernel image
OTHER_KINDS = ("modules", "base")  # the split layout's other packages


@dataclass(frozen=True)
class Flavour:
    name: str  # otns's name for it (--flavour)
    suffix: str  # Debian's: the end of the package names and of `uname -r`
    needs_modules: bool  # virtio, 9p, FUSE and overlayfs are modules: linux-modules-* is fetched too


@dataclass(frozen=True)
class Arch:
    machine: str  # what `uname -m` says on such a host
    debian: str  # Debian's architecture name: its package lists, apt's APT::Architecture
    kernel: str  # the kernel's name: the folder under arch/ in a source tree
    image: str  # the bootable image in a built tree, relative to the tree
    image_format: str  # which header kernels.image checks
    flavours: tuple[Flavour, ...]  # Debian's kernel flavours otns boots, the default first
    qemu: str  # the QEMU system emulator
    tcg_qemu_opts: str  # QEMU options under TCG (given to vng as --qemu-opts)
    multiarch: str  # Debian's multiarch triplet: the folder libc and the loader are in
    loader: str  # the dynamic loader's file name, in /usr/lib/MULTIARCH
    kcidb: str  # KCIDB's name for the architecture (build.architecture)

    def flavour(self, name: str) -> Flavour:
        return {f.name: f for f in self.flavours}[name]

    def flavour_named_by(self, suffix: str) -> Flavour:
        return {f.suffix: f for f in self.flavours}[suffix]

    def package_pattern(self, kinds: tuple[str, ...]) -> re.Pattern[str]:
        """linux-KIND-ABI-FLAVOUR for these kinds and this architecture's flavours."""
        return _package_pattern(kinds, tuple(f.suffix for f in self.flavours))


@cache
def _package_pattern(kinds: tuple[str, ...], suffixes: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(s) for s in sorted(suffixes, key=len, reverse=True))
    return re.compile(rf"^linux-(?P<kind>{'|'.join(kinds)})-{ABI}-(?P<flav>{alternatives})$")


AMD64 = Arch(
    machine="x86_64",
    debian="amd64",
    kernel="x86",
    image="arch/x86/boot/bzImage",
    image_format="bzImage",
    # cloud has virtio, FUSE and virtiofs built in (or, on 6.1, inside the image package).
    flavours=(Flavour("cloud", "cloud-amd64", needs_modules=False),
              Flavour("amd64", "amd64", needs_modules=True)),
    qemu="qemu-system-x86_64",
    # Multi-threaded TCG (QEMU's default) mis-emulates the kernel's live text patching
    # across vCPUs: seen here as "Oops: int3" in sched_clock_cpu and as boots stuck after
    # SMP bring-up, about 1 boot in 10. One TCG thread for all vCPUs keeps SMP and is exact.
    tcg_qemu_opts="-accel tcg,thread=single",
    multiarch="x86_64-linux-gnu",
    loader="ld-linux-x86-64.so.2",
    kcidb="x86_64",
)

ARCHES = (AMD64,)


class UnsupportedArch(InfraError):
    """otns has no entry for the host's architecture."""


def host(machine: str | None = None) -> Arch:
    """The entry for this host (or for `machine`); UnsupportedArch, one line, when there is none."""
    machine = platform.machine() if machine is None else machine
    for arch in ARCHES:
        if arch.machine == machine:
            return arch
    raise UnsupportedArch(f"otns runs on {', '.join(a.machine for a in ARCHES)} hosts only; this one is "
                          f"{machine or 'of an unknown architecture'} (kernels/arch.py has no entry for it)")


def flavour_names() -> tuple[str, ...]:
    """The --flavour choices on this host; none on a host otns does not support (where every
    command that needs the architecture says so through host())."""
    try:
        return tuple(f.name for f in host().flavours)
    except UnsupportedArch:
        return ()
