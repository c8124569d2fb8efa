"""The few options of the kernel's build configuration that some tests need, as the host read
them from the kernel's config (Debian's config file, a tree's .config) and handed to the guest.

A test that skips because the kernel lacks an option makes a claim; this is what checks it: the
option is off in the kernel's own config. Where the host knew no config, the claim is unchecked
and the skip says so. Stands alone: it runs in the guest.
"""
from __future__ import annotations

import os

# The options the suite asks about (the host passes these only).
ASKED = ("CONFIG_FAULT_INJECTION", "CONFIG_FAILSLAB", "CONFIG_FAULT_INJECTION_DEBUG_FS", "CONFIG_BPF_SYSCALL")
FILE = "kernel-config"  # in the guest's results folder: NAME=value lines, "n" for an option that is off
ENV = "OTNS_KERNEL_CONFIG"  # the file's path in the guest
MAX_BYTES = 4096


def render(config: dict[str, str]) -> bytes:
    """The file the host writes: each asked option and its value, "n" where the config lacks it."""
    return "".join(f"{name}={config.get(name, 'n')}\n" for name in ASKED).encode()


def parse(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name in ASKED:
            out[name] = value.strip()
    return out


def known() -> dict[str, str] | None:
    """The asked options of the booted kernel's config; None when the host had no config to read."""
    path = os.environ.get(ENV)
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return parse(f.read(MAX_BYTES).decode("ascii", "replace"))
    except OSError:
        return None


def built_with(options: dict[str, str] | None, *names: str) -> bool | None:
    """Whether every option is built in (y), by the config; None when the config is unknown."""
    if options is None:
        return None
    return all(options.get(n) == "y" for n in names)


__all__ = ["ASKED", "ENV", "FILE", "built_with", "known", "parse", "render"]
