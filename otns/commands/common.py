"""What every command shares: the consoles, the VM options (add_vm_opts -> VmSettings), help texts, table widths."""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

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

err = Console(stderr=True, highlight=False, soft_wrap=True)
# Tables printed to a pipe or a CI log: wide enough that whole test ids are never folded.
PIPE_WIDTH = 400


def notice(msg: str) -> None:
    err.print(msg, markup=False)


def stdout(pipe_width: int = PIPE_WIDTH) -> Console:
    """stdout as a console: the terminal's width, or pipe_width when it is not a terminal."""
    return Console(width=None if sys.stdout.isatty() else pipe_width)


def int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise BadInput(f"{what} takes comma-separated numbers, not {text!r}") from None
