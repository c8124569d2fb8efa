"""KVM or TCG: decided by a real tiny boot, once per machine.

/dev/kvm can exist and KVM_CREATE_VM succeed while every real guest dies (broken nested
virtualisation), so only a boot tells. The verdict is cached per host kernel, QEMU and CPU.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from base import cachedir
from base.filenames import CONSOLE
from base.safefs import BadFile, read_json_object, write_atomic
from kernels.arch import host

from .boot import BootRequest, BootStatus, boot_once

PROBE_TIMEOUT = 90.0


def _machine_key() -> str:
    try:
        qemu = subprocess.run([host().qemu, "--version"], capture_output=True, stdin=subprocess.DEVNULL,
                              text=True, timeout=30).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        qemu = "no-qemu"
    cpu = ""
    try:
        cpu = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return hashlib.sha256(f"{platform.release()}|{qemu}|{cpu}".encode()).hexdigest()[:16]


def kvm_usable(cache_dir: Path, template: BootRequest, notice: Callable[[str], object] = print) -> bool:
    """Whether KVM really boots guests here; probes with the kernel about to be used."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    cache = cache_dir / cachedir.KVM_PROBE
    key = _machine_key()
    data = _probe_record(cache)
    if data.get("key") == key and isinstance(data.get("kvm"), bool):
        return data["kvm"]
    with tempfile.TemporaryDirectory(prefix="otns-kvm-probe-", dir=cache_dir) as tmp:
        probe = replace(template, command="true", accel="kvm", timeout=PROBE_TIMEOUT, stream=None,
                        rwdir=Path(tmp), console_log=Path(tmp) / CONSOLE)
        start = time.monotonic()
        result = boot_once(probe)
    ok = result.status is BootStatus.EXITED and result.exit_code == 0
    text = result.console + result.guest_output
    kvm_fault = any(s in text for s in ("KVM", "kvm", "MSR"))
    if ok or kvm_fault or result.status is BootStatus.HUNG:
        write_atomic(cache, json.dumps({"key": key, "kvm": ok, "seconds": time.monotonic() - start,
                                        "when": time.time()}))
    if not ok:
        notice("otns: KVM is present but a test boot failed; using TCG (software emulation, slower)")
    return ok


def cached_verdict(cache_dir: Path) -> bool:
    """The last probe's verdict on this machine, without probing (False when unknown)."""
    data = _probe_record(cache_dir / cachedir.KVM_PROBE)
    return data.get("key") == _machine_key() and data.get("kvm") is True


def _probe_record(path: Path) -> dict:
    """The last probe's record; {} when there is none or it is damaged (then it is probed again)."""
    try:
        return read_json_object(path)
    except (OSError, BadFile):
        return {}
