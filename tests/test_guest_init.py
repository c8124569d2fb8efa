"""otns's guest init (vm/guest_init.sh) in place of virtme-ng's, without a boot: vng's dry run
boots into the chosen init and gives it what it reads; virtme-ng's init is refused for a kernel
without ACPI. Its contract in a real guest (output, errors, exit status, the suite's outcomes
under either init): test_guest_init_boot.py."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from kernels.spec import parse_spec
from otns.run.execute import RunOptions, boot_request, resolve_kernel
from vm import share
from vm.boot import run_dry, staged_vng, vng_command
from vm.guest_init import INIT_NAME, SCRIPT, vng_guest_tools

from .conftest import DEFAULT_SPEC


def _request(cache_dir: Path, results: Path, guest_init: str, command: str = "true"):
    opts = RunOptions(spec=parse_spec(DEFAULT_SPEC), cache_dir=cache_dir, show_progress=False,
                      guest_init=guest_init)
    req = boot_request(opts, resolve_kernel(opts, lambda _: None), results, lambda _: None, None)
    req.command = command
    return req


def _dry_run_qemu(req) -> str:
    share.create(req.rwdir)  # vng --dry-run checks that the folder exists
    with staged_vng(vng_command(req, dry_run=True), req) as (argv, env, cwd):
        code, out, err = run_dry(argv, env, cwd)
        assert code == 0, err
        qemu = [ln for ln in out.splitlines() if "qemu-system" in ln][-1]
        init = Path(re.search(r"init=([^\s']+)", qemu).group(1))
        # Read while the stage exists: the staged init is removed with it.
        content, resolved = init.read_bytes(), init.resolve()
        executable = init.stat().st_mode & 0o111
    return qemu, init, content, resolved, executable, cwd


@pytest.mark.parametrize("which", ["otns", "virtme-ng"])
def test_vng_boots_into_the_chosen_init(cache_dir, tmp_path, which):
    qemu, init, content, resolved, executable, stage = _dry_run_qemu(_request(cache_dir, tmp_path, which))
    assert init.name == INIT_NAME and init.is_relative_to(stage) and executable
    if which == "otns":
        assert content == SCRIPT.read_bytes()
    else:
        assert resolved == (vng_guest_tools() / "bin" / INIT_NAME).resolve() and content.startswith(b"\x7fELF")


def test_vng_gives_what_the_init_reads(cache_dir, tmp_path):
    """The parts of vng's kernel command line and QEMU devices that vm/guest_init.sh relies on:
    a virtme-ng upgrade that renames one fails here, not in a guest."""
    qemu, *_ = _dry_run_qemu(_request(cache_dir, tmp_path, "otns"))
    script = SCRIPT.read_text()
    assert re.search(r"virtme\.exec=`[A-Za-z0-9+/=]+`", qemu) and "virtme.exec=`" in script
    for key in ("virtme_initmount0=/run/otns-results", "virtme_initmount0_fstype=virtiofs",
                "virtme_initmount0_access=rw", "virtme_link_mods=", "virtme_chdir=", "virtme_hostname="):
        assert key in qemu, key
        assert key.split("=")[0].replace("0", "") in script.replace("$n", "").replace("${n}", ""), key
    for port in ("virtme.stdin", "virtme.stdout", "virtme.stderr", "virtme.ret"):
        assert f"virtserialport,name={port}," in qemu and f"{port})" in script, port
    # The init ends the guest with reboot(2): only -no-reboot makes that stop QEMU.
    assert "-no-reboot" in qemu.split()


def test_virtme_ng_init_is_refused_for_a_kernel_without_acpi(cache_dir, tmp_path):
    """virtme-ng's init powers off; a kernel without ACPI (otns build's) halts instead and
    QEMU would wait for the timeout: refused before anything boots."""
    from dataclasses import replace

    from base.errors import BadInput
    opts = RunOptions(spec=parse_spec(DEFAULT_SPEC), cache_dir=cache_dir, show_progress=False, dry_run=True,
                      guest_init="virtme-ng")
    kernel = resolve_kernel(opts, lambda _: None)
    assert kernel.config and kernel.config.get("CONFIG_ACPI") == "y"
    boot_request(opts, kernel, tmp_path, lambda _: None, None)  # Debian's kernel has ACPI: fine
    no_acpi = replace(kernel, config={k: v for k, v in kernel.config.items() if k != "CONFIG_ACPI"})
    with pytest.raises(BadInput, match="has no ACPI.*--guest-init otns"):
        boot_request(opts, no_acpi, tmp_path, lambda _: None, None)
    boot_request(replace(opts, guest_init="otns"), no_acpi, tmp_path, lambda _: None, None)
