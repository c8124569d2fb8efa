"""What every command shares: the consoles, the VM options (add_vm_opts -> VmSettings), help texts, table widths."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from typing import IO, TextIO

from rich.console import Console

from base.errors import BadInput
from kernels.arch import Arch, UnsupportedArch, host

from ..options import ACCELS, MAX_CPUS, VmSettings

DEFAULT_KERNEL = "debian:latest"
ACCEL_HELP = "auto (default): KVM if a test boot works on this machine, else TCG; kvm or tcg to force one"
CPUS_HELP = f"guest CPUs, 1 to {MAX_CPUS} (default: %(default)s)"
# run and matrix: one vCPU under TCG, two under KVM (otns.options.default_cpus)
RUN_CPUS_HELP = f"guest CPUs, 1 to {MAX_CPUS} (default: 1 under TCG, 2 under KVM)"
MEMORY_HELP = "guest memory, as for QEMU's -m: 1G, 2048M (default: %(default)s)"
TIMEOUT_HELP = "seconds before a guest counts as hung (default: %(default)s)"


def flavour_help(entry: Arch | None = None) -> str:
    """--flavour's help, from the architecture's entry (kernels/arch.py): its flavours, the default first."""
    try:
        flavours = (entry or host()).flavours
    except UnsupportedArch:
        return "Debian kernel flavour"  # every command that needs it stops with one line anyway
    kinds = " or ".join(f"{f.name} ({'generic, drivers as modules' if f.needs_modules else 'virtio built in'})"
                        for f in flavours)
    return f"Debian kernel flavour: {kinds} (default: {flavours[0].name})"


FLAVOUR_HELP = flavour_help()


DEFAULT_VM = VmSettings()


def add_vm_opts(parser: argparse.ArgumentParser, defaults: VmSettings = DEFAULT_VM, *, machine: bool = True,
                per_kernel: bool = False, per_vm: bool = False) -> None:
    """--timeout, and with machine --cpus, --memory and --accel: the command's VmSettings (vm_settings)."""
    vm = ", per VM" if per_vm else ""
    if machine:
        parser.add_argument("--cpus", type=int, default=defaults.cpus,
                            help=(RUN_CPUS_HELP if defaults.cpus is None else CPUS_HELP) + vm)
        parser.add_argument("--memory", default=defaults.memory, help=MEMORY_HELP + vm)
    parser.add_argument("--timeout", type=float, default=defaults.timeout,
                        help=TIMEOUT_HELP + (", per kernel" if per_kernel else ""))
    if machine:
        parser.add_argument("--accel", choices=ACCELS, default=defaults.accel, help=ACCEL_HELP)


def vm_settings(args: argparse.Namespace) -> VmSettings:
    """The VmSettings of the options add_vm_opts added (BadInput, one line, when they cannot work)."""
    return VmSettings(**{f.name: getattr(args, f.name) for f in fields(VmSettings) if hasattr(args, f.name)})

class PipeConsole(Console):
    """A rich Console whose reader may go away (`otns kernels list | head`): rich would exit 1
    then; this one stops writing and lets the command end with its own exit code."""

    def on_broken_pipe(self) -> None:
        to_devnull(self.file)


err = PipeConsole(stderr=True, highlight=False, soft_wrap=True)
# Tables printed to a pipe or a CI log: wide enough that whole test ids are never folded.
PIPE_WIDTH = 400


def notice(msg: str) -> None:
    err.print(msg, markup=False)


def stdout(pipe_width: int = PIPE_WIDTH) -> Console:
    """stdout as a console: the terminal's width, or pipe_width when it is not a terminal."""
    return PipeConsole(width=None if sys.stdout.isatty() else pipe_width)


def int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise BadInput(f"{what} takes comma-separated numbers, not {text!r}") from None


def to_devnull(stream: IO[str]) -> None:
    """The reader of `stream` went away (`otns run | head`): what is still written goes nowhere,
    so the command finishes and exits with its own code, not a broken pipe's."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def writer(stream: TextIO):
    """A write-and-flush function for `stream` that survives its reader going away."""
    def write(text: str) -> None:
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            to_devnull(stream)
    return write


def print_lines(stream: TextIO, lines: list[str], bold_last: bool = False) -> None:
    """Lines on `stream` as they are (a guest's text is never markup); the last in bold on a
    terminal (the verdict). Survives the reader going away."""
    if not lines:
        return
    try:
        console = PipeConsole(file=stream, highlight=False, soft_wrap=True)
        for i, line in enumerate(lines):
            console.print(line, markup=False, style="bold" if bold_last and i == len(lines) - 1 else None)
        stream.flush()
    except BrokenPipeError:
        to_devnull(stream)


def plural(n: int, word: str) -> str:
    """"1 kernel", "2 kernels" (the word as given, upper case included: "2 KERNELS")."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word}{'S' if word.isupper() else 's'}"
