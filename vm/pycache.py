"""Bytecode for the guest, compiled on the host.

The guest sees the checkout read-only: left alone, its Python compiles every module of the
checkout and pytest rewrites the asserts of every test module at every boot, seconds under TCG.
The host's own collection of the suite (otns.run.preflight, before a boot) writes that bytecode into
a folder of otns's cache instead (Python's PYTHONPYCACHEPREFIX: one .pyc tree for every module
imported, the interpreter's own included), and the guest reads it from there. Python checks each
.pyc against its source (size and mtime; pytest's rewritten ones by a hash of the source), so a
stale one is recompiled in memory, never used.
"""
from __future__ import annotations

import os
import py_compile
import sys
from pathlib import Path

from base import cachedir

# Written when a collection has filled the folder: before that, pointing the guest at it would
# make it compile even the interpreter's own modules, whose usual .pyc files it then ignores.
READY = "ready"
# What the guest imports before pytest does (vm.guest and what it imports of the checkout),
# relative to the checkout.
_GUEST_ENTRY = ("vm/__init__.py", "vm/guest.py", "vm/progress.py", "base/__init__.py", "base/filenames.py")


def folder(cache_dir: Path) -> Path:
    return (cache_dir / cachedir.PYCACHE).absolute()  # used from other working folders (the checkout's)


def writer_env(cache_dir: Path, env: dict[str, str]) -> dict[str, str]:
    """env for a host Python that is to fill the folder as it imports."""
    out = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out["PYTHONPYCACHEPREFIX"] = str(folder(cache_dir))
    return out


def _pyc_path(prefix: Path, source: Path) -> Path:
    # Where CPython looks under a prefix: the source's absolute path, its root dropped.
    return prefix / source.parent.relative_to(source.anchor) / f"{source.stem}.{sys.implementation.cache_tag}.pyc"


def mark_ready(cache_dir: Path) -> None:
    """After a collection filled the folder: compile what the guest imports before pytest, then
    mark the folder usable. Best effort: a cache that cannot be written only costs guest time."""
    prefix = folder(cache_dir)
    try:
        for name in _GUEST_ENTRY:
            source = Path(__file__).resolve().parent.parent / name
            py_compile.compile(str(source), cfile=str(_pyc_path(prefix, source)), doraise=True)
        (prefix / READY).touch()
    except (OSError, py_compile.PyCompileError):
        pass


def guest_prefix(cache_dir: Path) -> Path | None:
    """The folder for the guest's PYTHONPYCACHEPREFIX, when a collection has filled it."""
    prefix = folder(cache_dir)
    return prefix if (prefix / READY).is_file() and os.access(prefix, os.R_OK | os.X_OK) else None
