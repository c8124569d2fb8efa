"""The otns command line: parse, dispatch to the command's module (otns.commands), turn errors
into one line and an exit code."""
from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
from pathlib import Path

from base.errors import EXIT_INFRA, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, BadInput, OtnsError
from vm.boot import GuestStopped

from .commands import COMMANDS
from .commands.common import err, to_devnull
from .paths import default_cache_dir

# An OSError about a path the user gave (absent, forbidden, not a folder, a folder) is bad usage.
USAGE_ERRNOS = (errno.ENOENT, errno.EACCES, errno.ENOTDIR, errno.EISDIR)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("otns")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="otns", description="Conformance suite for Linux OPEN_TREE_NAMESPACE.")
    p.add_argument("--version", action="version", version=f"otns {_version()}")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="where kernels, the Debian index and tools are cached (default: $XDG_CACHE_HOME/otns)")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_parser(sub)
    return p


def _make_cache(cache_dir: Path, given_by: str) -> None:
    """The cache folder, created if absent: a path that cannot be one is bad usage (exit 2),
    whether it came from --cache-dir or $XDG_CACHE_HOME."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError, PermissionError) as e:
        raise BadInput(f"cannot use {cache_dir} as the cache folder (from {given_by}): "
                       f"{e.strerror or e}") from None


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _sigterm)
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    cache_dir = (args.cache_dir or default_cache_dir()).resolve()
    try:
        _make_cache(cache_dir, "--cache-dir" if args.cache_dir else "$XDG_CACHE_HOME" if
                    os.environ.get("XDG_CACHE_HOME") else "the default cache folder")
        return COMMANDS[args.command].handle(args, cache_dir)
    except OtnsError as e:
        err.print(f"otns: error: {e}", markup=False)
        return e.exit_code
    except BrokenPipeError:
        # `otns kernels list | head`: the reader has what it wanted; not an error of otns.
        to_devnull(sys.stdout)
        return EXIT_OK
    except KeyboardInterrupt as e:
        stopped = "; the guest was stopped" if isinstance(e, GuestStopped) else ""
        err.print(f"otns: interrupted{stopped}", markup=False)
        return EXIT_INTERRUPTED
    except OSError as e:
        err.print(f"otns: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), markup=False)
        return EXIT_USAGE if e.errno in USAGE_ERRNOS else EXIT_INFRA


if __name__ == "__main__":
    sys.exit(main())
