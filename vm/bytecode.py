"""The guest's bytecode in one file: every module the guest imports at start-up, read at once.

The guest reads each .pyc over virtiofs: an open, a read and a close, each a round trip to
the host's virtiofsd, about 2-4 ms a file under TCG (docs/environment.md). Python and pytest
import about 250 modules before the first test. So the host's collection of the suite
(otns.run.preflight, with this module as a pytest plugin) also writes the .pyc files it just
left in the bytecode folder (vm.pycache) into one bundle there, and the guest (vm.guest,
first thing) reads that one file and imports those modules from it.

Nothing is trusted blindly: each bundled .pyc keeps its header, and the guest's loader is
CPython's own SourceFileLoader, which checks it against the source file's size and mtime as
it does for any .pyc; a stale one is recompiled from the source. A module the bundle lacks is
imported from disk as always.

The guest's half uses only what a bare interpreter has loaded (sys, os, marshal and the
import system's own modules; hence no `from __future__`, itself a module to read): it runs
before anything else is imported.
"""
import marshal
import os
import sys
from _frozen_importlib_external import SourceFileLoader, cache_from_source, spec_from_file_location

FORMAT = 1


def _fnv1a(text: str) -> str:
    """A stable short hash with nothing but builtins (hash() of a str changes per process)."""
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8", "surrogateescape"):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


# One bundle per install of otns (a checkout, or site-packages), in the bytecode folder
# (vm.pycache.folder) that every checkout using one cache shares: another checkout's bundle
# would hand the guest that checkout's modules.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = f"bundle.{sys.implementation.cache_tag}.{_fnv1a(ROOT)}"
# What the guest's own entry imports before pytest: part of the bundle too.
GUEST_ENTRY = "vm.guest"


def path(prefix: "str | os.PathLike[str]") -> str:
    return os.path.join(prefix, NAME)


# --- host: written by the collection's pytest process --------------------------------------

def entries(modules: dict) -> dict[str, tuple[str, bytes]]:
    """name -> (source file, .pyc bytes) for each loaded module that came from a .py file
    through the usual loader and has a .pyc in the bytecode folder. pytest's rewritten test
    modules and conftest have their own loader and stay out (pytest reads them itself)."""
    out = {}
    for name, module in list(modules.items()):
        spec = getattr(module, "__spec__", None)
        if name == "__main__" or spec is None or type(spec.loader) is not SourceFileLoader or not spec.cached:
            continue
        try:
            with open(spec.cached, "rb") as f:
                out[name] = (spec.origin, f.read())
        except OSError:
            continue
    return out


def write(prefix: str) -> None:
    """Bundle what this process imported (and the guest's entry point) into prefix. Best effort,
    atomic: a missing or old bundle only costs the guest time."""
    try:
        __import__(GUEST_ENTRY)
        data = marshal.dumps({"format": FORMAT, "modules": entries(sys.modules)})
        target = path(prefix)
        try:
            with open(target, "rb") as f:
                if f.read() == data:
                    return
        except OSError:
            pass
        from pathlib import Path  # the host's half: not at the top, where only builtins may be

        from base.safefs import write_atomic
        write_atomic(Path(target), data)
    except (OSError, ImportError, ValueError):
        pass


def pytest_unconfigure(config) -> None:
    """pytest hook: the host's collection (otns.run.preflight) loads this module with -p."""
    if sys.pycache_prefix:
        write(sys.pycache_prefix)


# --- guest ---------------------------------------------------------------------------------

class _Loader(SourceFileLoader):
    """CPython's loader for a .py file, handed the .pyc's bytes instead of reading them."""

    def __init__(self, fullname: str, source: str, pyc: bytes) -> None:
        super().__init__(fullname, source)
        self._pyc: bytes | None = pyc

    def get_data(self, path: str) -> bytes:
        if self._pyc is not None and path == cache_from_source(self.path):
            pyc, self._pyc = self._pyc, None  # once: a reload reads the file
            return pyc
        return super().get_data(path)


class Finder:
    """A meta path finder, placed just before the path finder, for the bundle's modules."""

    def __init__(self, modules: dict[str, tuple[str, bytes]]) -> None:
        self.modules = modules
        self.served: list[str] = []

    def find_spec(self, fullname: str, path=None, target=None):
        # Taken out of the bundle: the test process forks hundreds of times, and every page it
        # holds is one more to copy at each fork (about 8 MB of .pyc bytes otherwise kept).
        entry = self.modules.pop(fullname, None)
        if entry is None:
            return None
        source, pyc = entry
        if not _on_path(fullname, source) or not os.path.isfile(source):
            return None  # not where the usual search looks, or gone since: the usual search decides
        self.served.append(fullname)
        return spec_from_file_location(fullname, source, loader=_Loader(fullname, source, pyc))

    def invalidate_caches(self) -> None:
        pass


def _on_path(fullname: str, source: str) -> bool:
    """Is source the file of module fullname under one of sys.path's folders, as the usual search
    would find it (a module or a package's __init__)?"""
    rel = fullname.replace(".", os.sep)
    roots = {os.path.abspath(p or os.curdir) for p in sys.path if isinstance(p, str)}
    for tail in (rel + ".py", os.path.join(rel, "__init__.py")):
        if source.endswith(os.sep + tail) and source[:-len(tail) - 1] in roots:
            return True
    return False


def install() -> "Finder | None":
    """In the guest, with PYTHONPYCACHEPREFIX set by the host: import from the bundle there."""
    if not sys.pycache_prefix:
        return None
    try:
        with open(path(sys.pycache_prefix), "rb") as f:
            data = marshal.loads(f.read())
        if data.get("format") != FORMAT:
            return None
        finder = Finder(data["modules"])
    except (OSError, EOFError, ValueError, TypeError, AttributeError, KeyError):
        return None
    from _frozen_importlib_external import PathFinder
    at = next((i for i, f in enumerate(sys.meta_path) if f is PathFinder), len(sys.meta_path))
    sys.meta_path.insert(at, finder)
    return finder
