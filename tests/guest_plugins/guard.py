"""Refuse to run anywhere but inside a virtme-ng guest: these plugins break the kernel."""
from __future__ import annotations

from pathlib import Path


def inside_virtme_guest() -> bool:
    return "virtme" in Path("/proc/cmdline").read_text()


def require_guest(what: str) -> None:
    if not inside_virtme_guest():
        raise SystemExit(f"refusing to {what} outside a virtme-ng guest")
