"""Hand virtme-ng only values that no shell and no kernel command line can misread.

vng joins its virtme-run command line into one string and runs it with /bin/sh, with the
kernel image, --rwdir, --memory and --qemu-opts unquoted; virtme-run then puts mount paths
and its own install path on the guest's kernel command line and starts virtiofsd with
os.system. A path with a space, a quote or `$(...)` in it would be split, refused or run.

So every path otns gives vng is a safe-named link in a private stage folder (random name,
mode 0700, removed after the boot): the kernel image, the results folder, the Python
environment that holds virtme-ng, the PATH folders, vng's HOME and its TMPDIR (where
virtme-ng leaves its sockets and scripts, so nothing stays in /tmp). Other option values
are checked against a strict alphabet; what fails is refused (BadInput, exit 2).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import sys
import tempfile
from pathlib import Path

from base import cachedir
from base.errors import BadInput
from kernels.arch import host

from . import guest_init as guest_tools
from .virtiofsd import hardened_script

# Bytes that mean nothing to sh, to the kernel command line (space-separated, '=' splits)
# and to virtme-run's own mount-path check.
_SAFE_PATH = re.compile(r"/[A-Za-z0-9_./+-]*")
_SAFE_WORD = re.compile(r"[A-Za-z0-9_./+=,:-]+")
# A guest smaller than this cannot boot Debian's kernels with the suite's Python.
MIN_MEMORY_MIB = 256
_MEMORY = re.compile(r"([1-9][0-9]{0,8})([KMGT]?)", re.I)
_UNIT_MIB = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}
# Where the guest sees the results folder: a fixed path in the guest's own /run (a fresh
# tmpfs), so neither the host path's bytes nor a host link decides where the mount lands,
# and a tmpfs the guest mounts on /tmp cannot hide it.
GUEST_RESULTS = Path("/run/otns-results")
# Used when the cache folder's own path is not safe to show vng.
FALLBACK_BASE = Path("/var/tmp")
STAGE_PREFIX = "otns-stage-"


def memory_mib(text: str) -> int:
    """--memory as QEMU reads it (a number of MiB, or with a K/M/G/T suffix), checked."""
    m = _MEMORY.fullmatch(text.strip())
    if not m:
        raise BadInput(f"--memory {text!r}: give a size such as 1G or 1536M")
    mib = int(int(m.group(1)) * _UNIT_MIB[m.group(2).upper()])
    if mib < MIN_MEMORY_MIB:
        raise BadInput(f"--memory {text!r}: a guest needs at least {MIN_MEMORY_MIB}M")
    most = host_memory_mib()
    if mib > most:
        raise BadInput(f"--memory {text!r}: more than this machine's {most}M of memory")
    return mib


def host_memory_mib() -> int:
    """The machine's memory: no guest gets more (QEMU would fail, or the host would swap)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20


def is_safe_path(path: str | Path) -> bool:
    return bool(_SAFE_PATH.fullmatch(str(path))) and "/../" not in f"{path}/"


def _check_word(word: str) -> str:
    if not _SAFE_WORD.fullmatch(word):
        raise BadInput(f"refusing to pass {word!r} to virtme-ng: it runs its options through a shell")
    return word


def _rootfs(image: Path) -> Path | None:
    """The folder virtme-ng takes modules from for this image (its own rule: the nearest
    ancestor with lib/modules or usr/lib/modules), None when that is the host's root."""
    path = Path(os.path.abspath(image)).parent
    while path != path.parent:
        if (path / "lib" / "modules").exists() or (path / "usr" / "lib" / "modules").exists():
            return path
        path = path.parent
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(base: Path) -> None:
    """Stage folders of otns processes that died without cleaning up (SIGKILL)."""
    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    for e in entries:
        if not e.name.startswith(STAGE_PREFIX):
            continue
        try:
            pid = int(e.name[len(STAGE_PREFIX):].split("-", 1)[0])
            st = e.stat(follow_symlinks=False)
        except (ValueError, OSError):
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and pid != os.getpid() and not _alive(pid):
            shutil.rmtree(e.path, ignore_errors=True)


class Stage:
    """A private folder of safe-named links to what vng needs; removed on exit."""

    def __init__(self, cache_dir: Path | None):
        cache = Path(os.path.abspath(cache_dir)) if cache_dir else None
        self.base = cache / cachedir.STAGE if cache and is_safe_path(cache) else FALLBACK_BASE
        self.root = Path()

    def __enter__(self) -> Stage:
        self.base.mkdir(parents=True, exist_ok=True)
        remove_stale(self.base)
        self.root = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=self.base))
        if not is_safe_path(self.root):  # the base is checked above; this guards the random part
            raise BadInput(f"cannot make a safe stage folder for virtme-ng in {self.base}")
        (self.root / "tmp").mkdir()
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def link(self, name: str, target: Path) -> Path:
        p = self.root / name
        p.symlink_to(Path(os.path.abspath(target)))
        return p

    def kernel(self, image: Path) -> Path:
        """The image under a safe name, with the modules virtme-ng would find beside it."""
        image = Path(os.path.abspath(image))
        tree_suffix = Path(host().image)
        if image.parts[-4:] == tree_suffix.parts and (image.parents[3] / ".config").exists():
            # A build tree: virtme-ng then takes its config and modules from the tree.
            return self.link("tree", image.parents[3]) / tree_suffix
        folder = self.root / "kernel"
        folder.mkdir()
        root = _rootfs(image)
        if root is not None:
            # Only the folder virtme-ng's walk stops at: it looks at lib/modules first.
            sub = "lib" if (root / "lib" / "modules").exists() else "usr"
            (folder / sub).symlink_to(root / sub)
        (folder / "vmlinuz").symlink_to(image)
        return folder / "vmlinuz"

    def python(self) -> Path:
        """The interpreter that runs virtme-ng, reached through a safe path: virtme-run puts
        its own install folder on the kernel command line and on virtiofsd's shell line."""
        exe = Path(sys.executable)
        venv = exe.parent.parent
        if (venv / "pyvenv.cfg").is_file():
            return self.link("venv", venv) / "bin" / exe.name
        if not is_safe_path(exe):
            raise BadInput(f"virtme-ng cannot run from {exe}: move Python to a path of plain characters")
        return exe

    def wrapper(self, name: str, module: str, python: Path, prelude: str = "") -> None:
        """An executable `name` on PATH that runs module.main() with the staged Python,
        after `prelude` (Python source)."""
        code = f"{prelude}import sys; from {module} import main; sys.argv[0] = {name!r}; sys.exit(main())"
        self.script(name, f"#!/bin/sh\nexec {shlex.quote(str(python))} -c {shlex.quote(code)} \"$@\"\n")

    def script(self, name: str, text: str) -> None:
        """An executable `name` on PATH (the stage's bin/, first) with this content."""
        bin_dir = self.root / "bin"
        bin_dir.mkdir(exist_ok=True)
        script = bin_dir / name
        script.write_text(text)
        script.chmod(0o755)


def staged(cmd: list[str], env: dict[str, str], stage: Stage, path_prefix: list[str],
           vng_home: Path | None, guest_init: str = "otns",
           virtiofsd: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run `cmd` (a `vng ...` list as a user would type it)
    with every path swapped for a safe link and every other value checked. Run it in
    stage.root: vng puts its working folder on the kernel command line too. With
    guest_init "otns" the guest boots into vm/guest_init.sh instead of virtme-ng's init.
    With virtiofsd, the virtiofsd vng finds first runs that one with vm.virtiofsd.HARDENING."""
    python = stage.python()
    prelude = ""
    if guest_init == "otns":
        prelude = guest_tools.prelude(guest_tools.stage_guest_tools(stage.root / "guest"))
    stage.wrapper("virtme-run", "virtme.commands.run", python, prelude)
    if virtiofsd is not None:
        stage.script("virtiofsd", hardened_script(virtiofsd))
    out = [str(python), "-c", "import sys; from virtme_ng.run import main; sys.argv[0] = 'vng'; sys.exit(main())"]
    args = iter(cmd[1:])
    for a in args:
        if a == "-r":
            out += [a, str(stage.kernel(Path(next(args))))]
        elif a == "--rwdir":  # GUEST=HOST
            guest, _, host = next(args).partition("=")
            if not is_safe_path(guest):
                raise BadInput(f"refusing guest path {guest!r} for virtme-ng")
            out += [a, f"{guest}={stage.link('results', Path(host))}"]
        elif a == "--memory":
            out += [a, f"{memory_mib(next(args))}M"]
        elif a in ("--exec", "--append"):
            out += [a, next(args)]  # vng quotes these itself (shlex.quote, shlex.join)
        else:
            out.append(" ".join(_check_word(w) for w in a.split(" ")))
    folders = [stage.root / "bin", python.parent]
    for i, p in enumerate(path_prefix):
        folders.append(stage.link(f"path{i}", Path(p)))
    env = dict(env)
    env["PATH"] = os.pathsep.join([*map(str, folders), env.get("PATH", "")])
    home = stage.link("home", vng_home) if vng_home else stage.root / "home"
    if not vng_home:
        home.mkdir()
    env["HOME"] = str(home)
    env.pop("XDG_CONFIG_HOME", None)
    env.pop("XDG_CACHE_HOME", None)
    env["TMPDIR"] = str(stage.root / "tmp")
    return out, env
