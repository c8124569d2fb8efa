"""Build a kernel from a source tree as virtme-ng would, with the project's config fragment and ccache.

A tree is a git checkout, Debian's linux-source-X.Y tarball (unpacked into the cache once)
or what `apt-get source linux` leaves (a folder holding linux-X.Y.Z/). Never `vng --commit`:
it runs `git reset --hard`, which would wreck a `git bisect`.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from base import cachedir
from base.errors import EXIT_INFRA, EXIT_INTERRUPTED, BadInput, OtnsError
from base.locks import locked
from base.safefs import new_folder, write_atomic

from . import faults, provenance, source
from .arch import host
from .image import read_config

FRAGMENT = Path(__file__).with_name("otns.config")
# The compiler the build is given: gcc through ccache, but never for an input ccache cannot see.
COMPILER = Path(__file__).with_name("bin") / "otns-cc"
# In a tree otns unpacked into its cache: which fragment its .config was made from.
STAMP = ".otns-fragment"


class BuildFailed(OtnsError):
    exit_code = EXIT_INFRA


@dataclass
class Built:
    tree: Path
    image: Path
    seconds: float
    log: Path
    banner: str  # the version banner of the kernel inside the image, proven to be vmlinux's


def _is_tree(p: Path) -> bool:
    return (p / "Makefile").is_file() and (p / "arch" / host().kernel).is_dir() and (p / "kernel").is_dir()


def find_tree(path: Path, cache_dir: Path) -> Path:
    """The kernel source tree a user named: a tree, a folder holding one, a tarball, or
    `debian-source:X.Y` (Debian's linux-source-X.Y, fetched into the cache)."""
    if source.is_source_spec(str(path)):
        return _unpack(source.fetch(str(path), cache_dir), cache_dir)
    path = path.expanduser().resolve()
    if not path.exists():
        raise BadInput(f"no such kernel tree: {path}")
    if path.is_file() and path.name.startswith("linux") and ".tar" in path.name:
        return _unpack(path, cache_dir)
    if path.is_dir():
        if _is_tree(path):
            return path
        inner = [d for d in path.iterdir() if d.is_dir() and _is_tree(d)]
        if len(inner) == 1:  # apt-get source linux: the tree is linux-X.Y.Z/ inside
            return inner[0]
        tarballs = sorted(path.glob("linux-source-*.tar.*"))
        if len(tarballs) == 1:
            return _unpack(tarballs[0], cache_dir)
    raise BadInput(f"{path} is not a kernel source tree (no Makefile, arch/{host().kernel} and kernel/)")


def _unpack(tarball: Path, cache_dir: Path) -> Path:
    """Unpack a source tarball into the cache once; atomic, so a killed unpack is never reused."""
    dest = cache_dir / cachedir.TREES / tarball.name.split(".tar")[0]
    if _is_tree(dest) or any(_is_tree(d) for d in dest.glob("*") if d.is_dir()):
        return dest if _is_tree(dest) else next(d for d in dest.iterdir() if _is_tree(d))
    with new_folder(dest) as tmp, tarfile.open(tarball) as tf:
        tf.extractall(tmp, filter="tar")
    return find_tree(dest, cache_dir)


def _settings(path: Path) -> dict[str, str]:
    """A config file as {CONFIG_X: value}, "n" for `# CONFIG_X is not set`."""
    unset = {line[2:-len(" is not set")]: "n" for line in path.read_text(errors="replace").splitlines()
             if line.startswith("# CONFIG_") and line.endswith(" is not set")}
    return {**read_config(path), **unset}


def fragment() -> dict[str, str]:
    return _settings(FRAGMENT)


def required() -> set[str]:
    """The options of the fragment's "[required]" groups: without them the guest cannot come up."""
    found, inside = set(), False
    for line in FRAGMENT.read_text().splitlines():
        if line.startswith("## "):
            inside = line.rstrip().endswith("[required]")
        elif inside and line.startswith("CONFIG_"):
            found.add(line.split("=", 1)[0])
    return found


class BuildStopped(OtnsError):
    """A build in the background was asked to stop (its caller was interrupted)."""

    exit_code = EXIT_INTERRUPTED


def _run(cmd: list[str], tree: Path, env: dict[str, str], log, stop: threading.Event | None = None) -> int:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    if stop is None:  # in the foreground: Ctrl-C reaches make with the rest of the terminal's group
        return subprocess.run(cmd, cwd=tree, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    # In the background beside a boot (otns mutate): at a lower priority, so the emulated guest
    # keeps its core, and in a session of its own, so it can be stopped as one.
    proc = subprocess.Popen(cmd, cwd=tree, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                            preexec_fn=lambda: os.nice(10))
    while True:
        try:
            return proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            if stop.is_set():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise BuildStopped(f"the build in {tree} was stopped") from None


def _unmet(dotconfig: Path, want: dict[str, str]) -> list[str]:
    have = read_config(dotconfig)
    return [k for k, v in want.items() if have.get(k, "n") != v]


def _fragment_id() -> str:
    return hashlib.sha256(FRAGMENT.read_bytes()).hexdigest()[:16]


def ensure_config(tree: Path, env: dict[str, str], log, own: bool = False,
                  stop: threading.Event | None = None, extra: dict[str, str] | None = None) -> list[str]:
    """Make .config hold the fragment; return the options this tree's config cannot take.

    A tree with no .config gets `make allnoconfig` with the fragment as KCONFIG_ALLCONFIG:
    only what the fragment names (and what that selects) is built. An existing .config (the
    user's own) is kept, with the fragment's settings applied over it and `make
    olddefconfig` settling the rest; one that already holds them all is left untouched, so
    nothing is rebuilt. In a tree otns unpacked itself (own) nobody else writes .config, so
    one made from another fragment (an older otns) is made anew.
    """
    dotconfig, stamp = tree / ".config", tree / STAMP
    if own and dotconfig.is_file() and (not stamp.is_file() or stamp.read_text().strip() != _fragment_id()):
        os.replace(dotconfig, tree / ".config.old")
    if not dotconfig.is_file():
        rc = _run(["make", "allnoconfig", f"KCONFIG_ALLCONFIG={FRAGMENT}"], tree, env, log, stop)
        if rc != 0 or not dotconfig.is_file():
            raise BuildFailed(f"kernel build failed in {tree}: `make allnoconfig` failed (log: {log.name})")
        if own:
            stamp.write_text(_fragment_id() + "\n")
    want = {**fragment(), **(extra or {})}
    wrong = _unmet(dotconfig, want)
    if not wrong:
        return []
    args: list[str] = []
    for key in wrong:
        name, value = key.removeprefix("CONFIG_"), want[key]
        args += ["--disable", name] if value == "n" else \
            ["--enable", name] if value == "y" else ["--set-val", name, value]
    if _run(["scripts/config", "--file", ".config", *args], tree, env, log, stop) != 0 or \
            _run(["make", "olddefconfig"], tree, env, log, stop) != 0:
        raise BuildFailed(f"kernel build failed in {tree}: `make olddefconfig` failed (log: {log.name})")
    return _unmet(dotconfig, want)


def check_config(tree: Path, unmet: list[str], extra: dict[str, str] | None = None) -> None:
    """Say which of the fragment's options the tree's config could not take; stop on a required one.

    An option missing from the final .config is unknown to this tree's Kconfig (an older
    or newer kernel) or hidden by a dependency the tree has and the fragment lacks. The
    caller's extra options (a coverage build's gcov) are required too.
    """
    if not unmet:
        return
    want, must = {**fragment(), **(extra or {})}, required() | set(extra or {})
    have = _settings(tree / ".config")
    print("otns: this tree's config did not take these options of kernels/otns.config:", file=sys.stderr)
    for key in unmet:
        got = have.get(key)
        why = ("not in this tree's Kconfig, or hidden by an unmet dependency" if got is None
               else "it is not set" if got == "n" else f"it is {got}")
        print(f"otns:   {key}={want[key]} ({why}){'  [required]' if key in must else ''}", file=sys.stderr)
    fatal = [k for k in unmet if k in must]
    if fatal:
        raise BuildFailed(f"the guest cannot work without {', '.join(fatal)}, which this tree's "
                          f"config ({tree / '.config'}) does not have")
    print(f"otns: (remove {tree / '.config'} to build from kernels/otns.config alone)", file=sys.stderr)


def compiler_dir(cache_dir: Path) -> Path:
    """A folder holding otns-cc, executable, for PATH (make splits CC on spaces: no path in it)."""
    folder = cache_dir / cachedir.TOOLS / "cc"
    target, text = folder / COMPILER.name, COMPILER.read_bytes()
    if not target.is_file() or target.read_bytes() != text or not os.access(target, os.X_OK):
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(target, text, 0o755)
    return folder


def _env(tree: Path, cache_dir: Path, ccache: str) -> dict[str, str]:
    for tool in ("make", "gcc", "ccache", "flex", "bison", "bc"):
        if shutil.which(tool) is None:
            raise BadInput(f"{tool} is not installed: run scripts/setup --build")
    # CCACHE_BASEDIR makes paths relative to the tree, so a second checkout of the same
    # source (a git clone, apt-get source, the tarball) hits the cache. Depend mode takes the
    # headers from the compiler's own -MD output instead of running the preprocessor a second
    # time: on an empty cache that is 30% less CPU (docs/environment.md).
    return {**os.environ, "CCACHE_DIR": str(cache_dir / ccache), "CCACHE_BASEDIR": str(tree), "CCACHE_DEPEND": "1",
            "PATH": os.pathsep.join([str(compiler_dir(cache_dir)), str(Path(sys.executable).parent),
                                     os.environ.get("PATH", "")])}


def _make(targets: list[str], make_args: list[str] | None) -> list[str]:
    # What `vng --build --skip-modules` runs (the same image name and release suffix), called
    # directly so that make's output reaches the log (vng keeps it quiet).
    return ["make", *targets, "LOCALVERSION=-virtme", f"CC={COMPILER.name}", *(make_args or []),
            "-j", str(os.cpu_count() or 1)]


def tree_locked(tree: Path):
    """One build at a time in a tree: two makes in one tree overwrite each other's objects (seen:
    fixdep finding another make's .o.d gone) and the image then holds neither's code."""
    return locked(tree / ".otns-build.lock", f"otns: waiting for another otns build in {tree}")


def compile_object(tree: Path, cache_dir: Path, rel: str, log: Path, stop: threading.Event | None = None) -> None:
    """Make one object of a configured tree (with the variables of a whole build, so that the
    next whole build finds it up to date); BuildFailed if it does not compile."""
    with tree_locked(tree), open(log, "w") as f:
        rc = _run(_make([rel], None), tree, _env(tree, cache_dir, cachedir.CCACHE), f, stop)
    if rc != 0 or not (tree / rel).is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise BuildFailed(f"{rel} does not compile in {tree} (exit {rc}): {tail[0]} (log: {log})")


def build(tree: Path, cache_dir: Path, log: Path | None = None, applied_fault: bool = False,
          stop: threading.Event | None = None, extra_options: dict[str, str] | None = None,
          make_args: list[str] | None = None, ccache: str = cachedir.CCACHE, append_log: bool = False) -> Built:
    """Config, then make in the tree (incremental: make redoes what changed; ccache the
    rest), then the proof that the image carries what was linked (kernels/provenance.py).

    With stop, the build runs in the background (niced; BuildStopped once stop is set).
    extra_options (required config settings beyond kernels/otns.config), make_args and a ccache
    folder of its own serve builds of another kind (a coverage build, kernels/coverage.py)."""
    with tree_locked(tree):
        return _build(tree, cache_dir, log, applied_fault, stop, extra_options, make_args, ccache, append_log)


def _build(tree: Path, cache_dir: Path, log: Path | None, applied_fault: bool, stop: threading.Event | None,
           extra_options: dict[str, str] | None, make_args: list[str] | None, ccache: str,
           append_log: bool) -> Built:
    env = _env(tree, cache_dir, ccache)
    log = log or cache_dir / cachedir.BUILDS / f"{tree.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    restored = [] if applied_fault else faults.restore(tree, faults.load())
    if restored:
        print(f"otns: {', '.join(restored)} still held an `otns mutate` fault (a killed run): restored",
              file=sys.stderr)
    start = time.monotonic()
    with open(log, "a" if append_log else "w") as f:
        own = (cache_dir / cachedir.TREES).resolve() in tree.resolve().parents
        check_config(tree, ensure_config(tree, env, f, own=own, stop=stop, extra=extra_options), extra_options)
        rc = _run(_make([Path(host().image).name], make_args), tree, env, f, stop)
    image = tree / host().image
    if rc != 0 or not image.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise BuildFailed(f"kernel build failed in {tree} (exit {rc}): {tail[0]} (log: {log})")
    try:
        proof = provenance.prove(tree)
    except provenance.StaleImage as e:
        raise BuildFailed(f"the build in {tree} made an image that does not hold its code: {e}") from None
    return Built(tree, image, time.monotonic() - start, log, proof.banner)
