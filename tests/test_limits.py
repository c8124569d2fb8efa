"""Every wait has a limit: a silent suite on the host, a command otns runs that never answers,
hostile input files; every size has a bound. No boot here."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from base import commands, safefs
from base.errors import InfraError
from kernels.spec import parse_spec
from otns.options import VmSettings
from otns.paths import REPO_ROOT
from otns.run import execute as otns_run
from vm.boot import BootStatus

from .test_bad_input import assert_one_line_error


def test_a_silent_suite_on_the_host_is_stopped_at_the_timeout(tmp_path, monkeypatch):
    # The output loop used to block on a suite that printed nothing, past any --timeout.
    monkeypatch.setattr(otns_run, "guest_command", lambda results, args, announce=False:
                        ["sh", "-c", "echo started; exec sleep 60"])
    opts = otns_run.RunOptions(spec=parse_spec("host"), cache_dir=tmp_path, vm=VmSettings(timeout=1.5))
    seen: list[str] = []
    start = time.monotonic()
    res = otns_run._run_host(opts, tmp_path, seen.append)
    assert time.monotonic() - start < 10
    assert res.status is BootStatus.HUNG and seen == ["started\n"] and res.guest_output == "started\n"


def test_a_suite_on_the_host_that_ends_is_exited(tmp_path, monkeypatch):
    monkeypatch.setattr(otns_run, "guest_command", lambda results, args, announce=False: ["sh", "-c", "echo x; exit 3"])
    opts = otns_run.RunOptions(spec=parse_spec("host"), cache_dir=tmp_path, vm=VmSettings(timeout=30))
    res = otns_run._run_host(opts, Path(tmp_path), lambda line: None)
    assert res.status is BootStatus.EXITED and res.exit_code == 3 and res.guest_output == "x\n"


def test_a_command_that_hangs_is_stopped_with_one_line(tmp_path):
    start = time.monotonic()
    with pytest.raises(InfraError, match=r"cannot wait for it: sleep did not finish within 1 s"):
        commands.run(["sleep", "30"], "wait for it", timeout=1)
    assert time.monotonic() - start < 10
    with pytest.raises(InfraError, match="not installed"):
        commands.run([str(tmp_path / "nothing")], "run nothing", timeout=5)


def test_a_helper_left_behind_does_not_hold_otns(tmp_path):
    # apt's fetch methods may outlive apt-get with its output: otns neither waits for them nor leaves them.
    marker = tmp_path / "alive"
    start = time.monotonic()
    r = commands.run(["sh", "-c", f"(sleep 31.25; touch {marker}) & echo started"], "start a helper", timeout=20)
    assert r.returncode == 0 and r.stdout == "started\n" and time.monotonic() - start < 10
    deadline = time.monotonic() + 10  # killed at once; its /proc entry may take a moment to go
    while any("sleep 31.25" in p for p in _processes()):
        assert time.monotonic() < deadline, "the helper it left was not stopped"
        time.sleep(0.1)


def _processes() -> list[str]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                out.append((d / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                pass
    return out


def test_apt_update_on_a_full_disk_says_so_at_once(otns, tmp_path, host_mount_table):
    # It hung without a word for as long as it was let run (apt-get update on a full disk).
    cache = tmp_path / "cache"
    cache.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "otns-test-full", str(cache)], check=True)
    try:
        start = time.monotonic()
        r = otns("kernels", "list", cache=cache, results=False)
        assert time.monotonic() - start < 30
        assert_one_line_error(r, 3, "not enough free disk", str(cache / "apt"))
    finally:
        subprocess.run(["umount", str(cache)], check=True)


def test_a_killed_fetch_leaves_neither_apt_nor_its_folder(tmp_path):
    # otns killed with -9 mid-fetch: the command it ran dies with it (PR_SET_PDEATHSIG)...
    code = ("import sys, time; from base import commands\n"
            "p = commands.start(['sleep', '77.5'], 'sleep'); print(p.pid, flush=True); time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and b"77.5" in Path(f"/proc/{child}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the command outlived otns"
        time.sleep(0.1)
    # ... and the next fill of that cache folder removes the half-filled one it left.
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f".tmp-k-{dead.pid}-abc123" / "debs").mkdir(parents=True)
    (tmp_path / ".tmp-k-2-1-xyz").mkdir()  # another folder's ("k-2-1"): not ours to judge
    with safefs.new_folder(tmp_path / "k") as fill:
        (fill / "meta.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-k-2-1-xyz", "k"]


def _path_without_qemu(tmp_path: Path) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for entry in Path("/usr/bin").iterdir():
        if not entry.name.startswith("qemu-system-"):
            (bin_dir / entry.name).symlink_to(entry)
    return f"{bin_dir}:/usr/sbin"


def test_no_qemu_is_named_not_taken_for_a_guest_that_ran(otns, tmp_path, cached_image, monkeypatch):
    path = _path_without_qemu(tmp_path)
    for args in (["--dry-run"], []):
        r = otns("run", "--kernel", str(cached_image), *args, "-k", "test_recursive_alone_is_einval",
                 env={"PATH": path})
        assert_one_line_error(r, 3, "qemu-system-x86_64 is not on PATH")
        assert not r.results.exists(), "a results folder for a run that could not boot"
    # Past that check, vng's own failure is a boot that never happened, with vng's reason.
    from kernels.local import LocalKernel
    from vm.boot import BootRequest, boot_once
    monkeypatch.setenv("PATH", path)
    results = safefs.prepare_results(tmp_path / "r")
    res = boot_once(BootRequest(kernel=LocalKernel(image=cached_image, release="x", source="test"), command="true",
                                rwdir=results, console_log=results / "console.log", vng_home=tmp_path / "home"))
    assert res.status is BootStatus.NO_BOOT and "cannot find qemu" in res.reason, (res.status, res.reason)


def _alias_bomb(width: int) -> str:
    """9 levels of `width` aliases each of the level below: about 1 KB that stands for width**9 strings."""
    lines = [f'a0: &a0 [{", ".join(["x"] * width)}]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\njobs: {conformance: {strategy: {matrix: {include: [*a8]}}}}\n"


@pytest.mark.parametrize("name, text, needle", [
    ("bomb", _alias_bomb(9), "it is a list"),  # 72 aliases: read, never expanded
    ("bigger-bomb", _alias_bomb(13), "aliases"),
    ("deep", "[" * 50_000 + "]" * 50_000, "nests deeper"),
    ("merge", "x: &x {a: 1}\njobs: {<<: *x}\n", "merge key"),
    ("include-of-lists", "jobs: {conformance: {strategy: {matrix: {include: [[1, 2]]}}}}\n", "it is a list"),
])
def test_hostile_workflow_files_are_refused_quickly(otns, tmp_path, name, text, needle):
    path = tmp_path / f"{name}.yml"
    path.write_text(text)
    start = time.monotonic()
    r = otns("matrix", "--from", str(path), results=False)
    assert time.monotonic() - start < 20
    assert_one_line_error(r, 2, str(path), needle)


def test_a_workflow_fifo_is_refused_not_waited_for(otns, tmp_path):
    fifo = tmp_path / "ci.yml"
    os.mkfifo(fifo)
    start = time.monotonic()
    assert_one_line_error(otns("matrix", "--from", str(fifo), results=False), 2, "not a regular file")
    assert time.monotonic() - start < 20
