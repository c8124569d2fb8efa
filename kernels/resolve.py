"""Kernel spec -> kernel on disk: the one way every command takes.

resolve() fetches a Debian kernel the cache lacks; plan() fetches nothing (dry runs and the checks
before a matrix): it says which Debian package a spec names and whether it is in the cache. A
Resolver reads the archive's index once, for as many specs as a command has.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from base.errors import BadInput

from . import catalog, fetch
from .apt import PrivateApt
from .debian import DebianKernel, UnknownVersion
from .debian import resolve as pick
from .local import LocalKernel
from .spec import KernelSpec, Kind, local_kernel


@dataclass(frozen=True)
class Planned:
    """What a spec names, nothing fetched: kernel is None for a Debian kernel not in the cache."""

    spec: KernelSpec
    kernel: LocalKernel | None
    debian: DebianKernel | None = None

    @property
    def to_fetch(self) -> bool:
        return self.kernel is None


def identity(k: DebianKernel) -> dict:
    """What summary.json records of a Debian kernel, so a later bisect finds the very same one."""
    return {"upstream": k.upstream, "debian_version": k.debian_version, "flavour": k.flavour, "release": k.release}


class Resolver:
    def __init__(self, cache_dir: Path, notice: Callable[[str], object]) -> None:
        self.cache_dir, self.notice = cache_dir, notice
        self._index: tuple[PrivateApt, list[DebianKernel]] | None = None

    def index(self) -> tuple[PrivateApt, list[DebianKernel]]:
        """The archive's index (refreshed when stale), read at the first Debian spec only."""
        if self._index is None:
            self._index = catalog.load(self.cache_dir, notice=self.notice)
        return self._index

    def debian(self, spec: KernelSpec) -> DebianKernel:
        """The Debian package a debian:VERSION spec names (BadInput, with near versions, if none)."""
        try:
            return pick(self.index()[1], spec.value, spec.flavour)
        except UnknownVersion as e:
            raise BadInput(str(e)) from None

    def plan(self, spec: KernelSpec) -> Planned:
        if spec.kind is not Kind.DEBIAN:
            return Planned(spec, local_kernel(spec))
        chosen = self.debian(spec)
        return Planned(spec, fetch.cached(self.cache_dir, chosen), chosen)

    def resolve(self, spec: KernelSpec, show_progress: bool = False) -> LocalKernel:
        if spec.kind is not Kind.DEBIAN:
            return local_kernel(spec)
        start = time.monotonic()
        chosen = self.debian(spec)
        if not fetch.is_cached(self.cache_dir, chosen):
            self.notice(f"otns: fetching Debian {chosen.debian_version} {chosen.flavour} ({chosen.release})")
        local = fetch.fetch(self.cache_dir, self.index()[0], chosen, show_progress=show_progress, notice=self.notice)
        local.fetch_seconds = time.monotonic() - start
        local.extra["debian"] = identity(chosen)
        return local


def resolve(spec: KernelSpec, cache_dir: Path, notice: Callable[[str], object], show_progress: bool = False) -> LocalKernel:
    return Resolver(cache_dir, notice).resolve(spec, show_progress)


def plan(spec: KernelSpec, cache_dir: Path, notice: Callable[[str], object]) -> Planned:
    return Resolver(cache_dir, notice).plan(spec)
