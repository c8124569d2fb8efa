"""Untrusted paths and a hostile guest, with real boots: odd bytes in every path work and run
nothing; a guest that plants links, fifos, device nodes and huge files in the shared results
folder gets a verdict and no host write outside it; an interrupted run says so and leaves no
virtme-ng files behind."""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from base import safefs
from otns.paths import REPO_ROOT

from .conftest import otns_argv
from .test_run_boot import start_hanging_guest
from .test_untrusted import ODD, marker  # noqa: F401 - marker: the autouse fixture that sets $OTNS_MARK

pytestmark = pytest.mark.boot

ONE_TEST = ["--", "conformance/test_core.py", "-k", "recursive_alone"]


def test_odd_kernel_results_cache_and_checkout_paths_boot(cached_image, cache_dir, tmp_path):
    image = tmp_path / f"k{ODD}" / "vmlinuz"
    image.parent.mkdir()
    shutil.copyfile(cached_image, image)
    cache = tmp_path / f"cache{ODD}"
    cache.mkdir()
    if (cache_dir / "tools").is_dir():  # the unpacked virtiofsd (Debian 12): reached through the odd path
        shutil.copytree(cache_dir / "tools", cache / "tools", symlinks=True)
    results = tmp_path / f"r{ODD} --rwdir=" / "root"
    # The checkout too: a copy, not a link (a link resolves to this checkout's plain path, which
    # hid that pytest expands $NAME in --rootdir); the same .venv runs it.
    checkout = tmp_path / f"checkout{ODD}"
    _copy_checkout(checkout)
    r = subprocess.run([sys.executable, "-m", "otns.cli", *otns_argv("run", "--accel", "tcg", "--kernel", str(image),
                                                                     "--results", str(results), *ONE_TEST, cache=cache)],
                       cwd=checkout, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "MARK").exists(), "a command in a path was run"
    summary = json.loads((results / "summary.json").read_text())
    assert summary["verdict"] == "CONFORMS" and summary["counts"]["pass"] == 1
    assert (results / "junit.xml").is_file() and (results / "ktap.txt").is_file()
    assert not (results / safefs.INCOMPLETE).exists()


def _copy_checkout(dest: Path) -> None:
    """The packages and pyproject.toml of this checkout at dest: `python -m otns.cli` run there
    imports them (the working folder comes first on sys.path)."""
    dest.mkdir()
    for name in ("base", "kernels", "vm", "otns", "conformance", "tests"):
        shutil.copytree(REPO_ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", dest)


def test_a_matrix_out_folder_with_a_dollar_works(otns, tmp_path):
    # pytest expands $NAME in --rootdir and --junitxml: "$HOME" in --out was read as /root.
    out = tmp_path / "m$HOME"
    r = otns("matrix", "debian:latest", "--accel", "tcg", "-k", "test_recursive_alone_is_einval", "--out", str(out),
             results=False)
    assert r.code == 0, r.stderr[-2000:]
    assert (out / "matrix-runs.xml").is_file() and (out / "debian_latest-cloud" / "summary.json").is_file()
    assert not (Path(os.environ["HOME"]) / "matrix-runs.xml").exists()


@pytest.mark.parametrize("junit", ["link", "huge"])
def test_hostile_guest_gets_a_verdict_and_writes_nothing_outside(otns, tmp_path, junit, no_stray_vms):
    start = time.monotonic()
    outside = tmp_path / "outside"
    outside.mkdir()
    r = otns("run", "--accel", "tcg", "--timeout", "240", *ONE_TEST, "-p", "tests.guest_plugins.hostile",
             f"--hostile-junit={junit}", f"--hostile-outside={outside}")
    assert time.monotonic() - start < 240, "the host blocked"
    assert "otns-test: hostile files planted" in r.stdout, r.stdout[-2000:]
    assert r.code == 3, r.stderr
    summary = json.loads((r.results / "summary.json").read_text())
    assert summary["verdict"] == "HARNESS_ERROR", summary
    # The planted links, fifos and nodes are named; a huge junit.xml is refused by size.
    assert "unsafe entries" in summary["detail"] and "set-uid file" in summary["detail"], summary["detail"]
    assert junit == "link" or ("junit.xml" in summary["detail"] and "more than" in summary["detail"])
    # Nothing beside the results folder: no host write went through a planted link.
    assert os.listdir(outside) == []
    assert sorted(os.listdir(tmp_path)) == sorted([r.results.name, "outside"])
    shadow = Path("/etc/shadow").read_bytes()
    for entry in os.scandir(r.results):
        st = entry.stat(follow_symlinks=False)
        assert stat.S_ISREG(st.st_mode), f"{entry.name} left in the results folder"
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID | stat.S_IWOTH), entry.name
        if st.st_size < 1 << 20:
            assert shadow not in Path(entry.path).read_bytes() or not shadow.strip(), entry.name
    assert not (r.results / "junit.xml").exists()  # set aside (a link set aside is then removed)
    assert (r.results / "junit.xml.rejected").exists() == (junit == "huge")
    for name in ("ktap.txt", "summary.json", "console.log"):
        assert (r.results / name).is_file()


# Where the guest plants (tests/guest_plugins/plant.py): deep and long as in the attack seen
# (20 folders of 250 characters, a path of 5,020), and far deeper (2,500: a path of 627,500
# characters, past os.walk's silent skip and any recursion limit).
PLANTED = ("disk", "mem", "fifo", "shadow", "all-bits", "id", "born-suid", "sgid-dir", "caps")


@pytest.mark.parametrize("depth", [20, 2500])
def test_planted_devices_and_set_id_files_never_stay_on_the_host(otns, tmp_path, depth, no_stray_vms):
    r = otns("run", "--accel", "tcg", "--timeout", "400", *ONE_TEST, "-p", "tests.guest_plugins.plant",
             f"--plant-depth={depth}", "--plant-name=250", timeout=900)
    assert f"otns-test: planted at depth {depth}" in r.stdout, r.stdout[-3000:]
    attempts = dict(line.removeprefix("otns-test: plant ").rsplit(": ", 1) for line in r.stdout.splitlines()
                    if line.startswith("otns-test: plant ") and ": " in line.removeprefix("otns-test: plant "))
    # First line: virtiofsd, without CAP_MKNOD, makes no device node for the guest at all.
    for where in ("top", "bottom"):
        assert attempts[f"{where}/disk"] == "EPERM" and attempts[f"{where}/mem"] == "EPERM", attempts
        assert attempts[f"{where}/id"] == "ok" and attempts[f"{where}/fifo"] == "ok", attempts  # these the sweep meets
    # Second line: the sweep, at every depth, fails the run and names what it found.
    assert r.code == 3 and "Traceback" not in r.stderr, r.stderr[-3000:]
    summary = r.summary
    assert summary["verdict"] == "HARNESS_ERROR" and "unsafe entries" in summary["detail"], summary["detail"]
    assert "set-uid file" in summary["detail"] and f"({depth - 1} folders)" in summary["detail"]
    # An oracle of its own, GNU find (no path length limit): no device node, fifo, socket, link or
    # set-id bit anywhere in the folder, and the planted files themselves did arrive, defused.
    unsafe = subprocess.run(["find", str(r.results), "(", "-type", "b", "-o", "-type", "c", "-o", "-type", "p", "-o",
                             "-type", "s", "-o", "-type", "l", "-o", "-perm", "/6000", ")", "-print0"],
                            capture_output=True, check=True).stdout
    assert unsafe == b"", unsafe.split(b"\0")[:3]
    ids = subprocess.run(["find", str(r.results), "-name", "id", "-type", "f", "-print0"], capture_output=True,
                         check=True).stdout.split(b"\0")[:-1]
    assert len(ids) == 2 and max(map(len, ids)) > depth * 251, [len(i) for i in ids]
    assert not os.path.lexists(r.results / ".otns-guest"), "the private share was left behind"
    # The next run into the folder empties it whatever its depth.
    safefs.prepare_results(r.results)
    assert os.listdir(r.results) == [safefs.MARKER]


def _stages(cache_dir: Path, pid: int) -> list[Path]:
    return sorted((cache_dir / "stage").glob(f"otns-stage-{pid}-*"))


def test_sigterm_marks_the_folder_incomplete_and_removes_the_stage(cache_dir, tmp_path, no_stray_vms):
    p = start_hanging_guest(cache_dir, tmp_path)
    assert _stages(cache_dir, p.pid), "no stage folder while the guest runs"
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 130
    assert p.stderr is not None and "otns: interrupted; the guest was stopped" in p.stderr.read()
    assert (tmp_path / "r" / safefs.INCOMPLETE).is_file() and not (tmp_path / "r" / "summary.json").exists()
    assert not _stages(cache_dir, p.pid), "the stage folder (vng's TMPDIR) was left behind"
    # What the guest had written is kept, out of its private share (which is gone).
    assert (tmp_path / "r" / "progress.jsonl").is_file() and not (tmp_path / "r" / ".otns-guest").exists()


def test_sigkill_leaves_an_incomplete_folder_and_the_next_run_cleans_up(otns, cache_dir, tmp_path, no_stray_vms):
    p = start_hanging_guest(cache_dir, tmp_path)
    stage = _stages(cache_dir, p.pid)[0]
    # virtme-ng's sockets and scripts are in the stage, not in /tmp.
    assert [f for f in os.listdir(stage / "tmp") if f.startswith("virtme")], os.listdir(stage / "tmp")
    p.kill()
    p.wait(30)
    assert (tmp_path / "r" / safefs.INCOMPLETE).is_file() and not (tmp_path / "r" / "summary.json").exists()
    r = otns("report", str(tmp_path / "r"), "--out", str(tmp_path / "rep"), results=False)
    assert r.code == 2 and "interrupted" in r.stderr
    # Any later boot removes dead stages (a dry run stages in a scratch folder and touches no cache).
    later = otns("run", "-k", "test_recursive_alone_is_einval", results=True)
    assert later.code == 0, later.stderr
    assert not stage.exists(), "the killed run's stage folder is still there"


def test_a_full_disk_under_the_results_names_the_path_and_keeps_the_log(otns, tmp_path, host_mount_table,
                                                                        no_stray_vms):
    # The console thread died with a traceback and the run ended naming no path.
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "otns-test-full", str(disk)], check=True)
    try:
        results = disk / "r"
        r = otns("run", "--accel", "tcg", "--results", str(results), *ONE_TEST, "-p", "tests.guest_plugins.fill",
                 results=False)
        assert "otns-test: disk filled" in r.stdout, r.stdout[-2000:]
        assert "Traceback" not in r.stderr and "Exception in thread" not in r.stderr, r.stderr
        assert r.code == 3, r.stderr
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("otns: error:")]
        assert len(errors) == 1 and "disk full" in errors[0] and str(results) in errors[0], r.stderr
        log = results / "console.log"
        assert log.is_file() and log.stat().st_size > 0, "what was written of the console log is gone"
        assert (results / safefs.INCOMPLETE).exists() and not (results / ".otns-guest").exists()
    finally:
        subprocess.run(["umount", str(disk)], check=True)
