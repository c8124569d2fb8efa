"""Errors that end a command with one clear line and a documented exit code."""
from __future__ import annotations

# Exit codes (README.md documents them; `git bisect run` understands 0/1/125).
EXIT_CONFORMS = 0
EXIT_NONCONFORMING = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_CRASH = 4
# Commands that check something other than conformance: as expected, or not.
EXIT_OK = EXIT_CONFORMS
EXIT_NOT_AS_EXPECTED = EXIT_NONCONFORMING
EXIT_BISECT_SKIP = 125  # `git bisect run`: this commit cannot be tested
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM, as a shell reports a SIGINT


class OtnsError(Exception):
    """A failure the user should see as one line, not a traceback."""

    exit_code = EXIT_INFRA


class BadInput(OtnsError):
    """The user asked for something that cannot work: bad spec, missing file, not a kernel."""

    exit_code = EXIT_USAGE


class InfraError(OtnsError):
    """The machine could not do its part: no network, disk full, QEMU would not start."""

    exit_code = EXIT_INFRA


class DiskFull(InfraError, OSError):
    """A write that found the disk full (or over quota), naming the file. Still an OSError, so a
    best-effort writer that skips an OSError (a cache of bytecode) skips this one too."""
