"""Untrusted input reaching vng, untrusted files in results folders: no injection, no write
outside the folder, no blocking, a clear exit 2. No boot here (see test_untrusted_boot.py)."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from base import safefs
from otns.results.files import parse_junit, read_summary
from otns.results.guest import load as load_guest_files
from vm import share, virtiofsd
from vm.boot import BootRequest, run_dry, staged_vng, vng_command
from vm.virtiofsd import wrapper_script
from vm.vngsafe import GUEST_RESULTS, Stage, is_safe_path, memory_mib, remove_stale

from .test_bad_input import assert_one_line_error

# Every byte a shell reads specially; an injected command creates $OTNS_MARK.
ODD = ' $(touch "$OTNS_MARK") `touch "$OTNS_MARK"`;touch "$OTNS_MARK";\'"é'


@pytest.fixture(autouse=True)
def marker(tmp_path, monkeypatch):
    monkeypatch.setenv("OTNS_MARK", str(tmp_path / "MARK"))  # inherited by otns, vng and its shell


def _odd(base: Path, name: str) -> Path:
    return base / (name + ODD)


def _no_marker(base: Path) -> None:
    assert not (base / "MARK").exists(), "a command in a path was run"


# --- 1. values that reach vng -------------------------------------------------------------

@pytest.mark.parametrize("memory", ["abc", "1K", "-5G", "0", '1G;touch "$OTNS_MARK";#', "1G --rwdir=/root", "", "255M"])
def test_bad_memory_is_refused_before_anything_runs(otns, tmp_path, memory):
    r = otns("run", "--dry-run", f"--memory={memory}")
    assert_one_line_error(r, 2, "--memory")
    _no_marker(tmp_path)


@pytest.mark.parametrize("memory", ["999999999T", "100T", "9999G"])
def test_memory_beyond_the_machine_is_refused(otns, memory):
    assert_one_line_error(otns("run", "--dry-run", f"--memory={memory}"), 2, "--memory", "of memory")


def test_memory_sizes():
    assert memory_mib("1G") == 1024 and memory_mib("1536M") == 1536 and memory_mib("2048") == 2048
    assert memory_mib("2g") == 2048 and memory_mib("262144K") == 256


def test_matrix_checks_memory_first(otns):
    assert_one_line_error(otns("matrix", "debian:7.2.13", "--memory=1G;true", results=False), 2, "--memory")


def test_odd_kernel_and_results_paths_run_nothing(otns, cached_image, tmp_path):
    kdir = _odd(tmp_path, "k")
    kdir.mkdir()
    image = kdir / "vmlinuz"
    shutil.copyfile(cached_image, image)
    results = _odd(tmp_path, "r") / "x --rwdir=/root --rwdir=/tmp"
    r = otns("run", "--dry-run", "--kernel", str(image), "--results", str(results), results=False)
    assert r.code == 0, r.stderr
    _no_marker(tmp_path)
    qemu = r.stdout.splitlines()[1]
    # One read-write mount (the results folder), and it is not /root.
    assert "virtme_initmount0=" in qemu and "virtme_initmount1" not in qemu
    assert "/root " not in qemu.split("virtme_initmount0=")[1].split()[0]


def test_odd_cache_dir_runs_nothing(otns, cached_image, cache_dir, tmp_path):
    cache = _odd(tmp_path, "cache")
    cache.mkdir()
    if (cache_dir / "tools").is_dir():  # the unpacked virtiofsd (Debian 12), so nothing is downloaded
        shutil.copytree(cache_dir / "tools", cache / "tools", symlinks=True)
    r = otns("run", "--dry-run", "--kernel", str(cached_image), cache=cache)
    assert r.code == 0, r.stderr
    _no_marker(tmp_path)
    assert not list((cache / "stage").glob("*")) if (cache / "stage").exists() else True


def _request(tmp_path: Path, image: Path, results: Path, cache: Path, virtiofsd: Path | None = None) -> BootRequest:
    from kernels.local import LocalKernel
    return BootRequest(kernel=LocalKernel(image=image, release="x", source="test"), command="true",
                       rwdir=results, console_log=results / "console.log", vng_home=cache / "vng-home",
                       path_prefix=[str(_odd(tmp_path, "bin"))], virtiofsd=virtiofsd)


def test_every_value_vng_gets_is_safe(tmp_path):
    root = _odd(tmp_path, "root")
    modules = root / "usr" / "lib" / "modules" / "7.0.0"
    modules.mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    image = modules / "vmlinuz"
    image.write_bytes(b"kernel")
    results, cache = _odd(tmp_path, "results"), _odd(tmp_path, "cache")
    results.mkdir()
    _odd(tmp_path, "bin").mkdir()
    req = _request(tmp_path, image, results, cache)
    with staged_vng(vng_command(req), req) as (argv, env, cwd):
        values = iter(argv[3:])
        for a in values:
            if a in ("--exec", "--append"):
                next(values)  # vng quotes these two itself
                continue
            assert all(is_safe_path(w) or not w.startswith("/") for w in a.replace("=", " ").split(" ")), a
            assert not set(a) & set(" $`;'\"\\é") or a.startswith("--qemu-opts="), a
        kimg = Path(argv[argv.index("-r") + 1])
        assert is_safe_path(kimg) and kimg.resolve() == image.resolve()
        assert (kimg.parent / "lib" / "modules" / "7.0.0").resolve() == modules.resolve()  # modules still found
        guest, _, rw = argv[argv.index("--rwdir") + 1].partition("=")
        assert guest == str(GUEST_RESULTS) and is_safe_path(rw) and Path(rw).resolve() == share.folder(results).resolve()
        for key in ("HOME", "TMPDIR"):
            assert is_safe_path(env[key]) and env[key].startswith(str(cwd))
        assert Path(env["HOME"]).resolve() == (cache / "vng-home").resolve()
        assert all(is_safe_path(p) for p in env["PATH"].split(":")[:3])
        assert is_safe_path(argv[0])
    assert not cwd.exists(), "the stage folder was left behind"


def test_virtme_really_gets_safe_names(tmp_path, cached_image, cache_dir):
    # vng's own --dry-run (it runs virtme-run through /bin/sh) on the staged command line.
    results = _odd(tmp_path, "results")
    results.mkdir()
    _odd(tmp_path, "bin").mkdir()
    daemon = virtiofsd.ready(cache_dir)
    assert daemon is not None  # cached_image leaves one in the cache (Debian 12)
    odd_daemon = _odd(tmp_path, "bin") / "virtiofsd"  # reached through an odd path: the staged wrapper quotes it
    odd_daemon.symlink_to(daemon)
    req = _request(tmp_path, cached_image, results, _odd(tmp_path, "cache"), virtiofsd=odd_daemon)
    share.create(results)
    with staged_vng(vng_command(req, dry_run=True), req) as (argv, env, cwd):
        code, out, err = run_dry(argv, env, cwd)
    assert code == 0, err
    _no_marker(tmp_path)
    qemu = [ln for ln in out.splitlines() if "qemu-system" in ln][-1]
    assert "virtme_initmount0=" in qemu and "é" not in qemu


def test_stale_stage_of_a_dead_process_is_removed(tmp_path):
    dead = subprocess.run(["true"]).returncode or subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / "stage" / f"otns-stage-{dead.pid}-abc"
    (stale / "tmp").mkdir(parents=True)
    (stale / "tmp" / "virtme_ret123").write_text("")
    mine = tmp_path / "stage" / f"otns-stage-{os.getpid()}-abc"
    mine.mkdir()
    remove_stale(tmp_path / "stage")
    assert not stale.exists() and mine.exists()
    with Stage(tmp_path) as st:
        assert st.root.parent == tmp_path / "stage"


def test_virtiofsd_wrapper_quotes_the_cache_path(tmp_path):
    root = _odd(tmp_path, "root")
    loader = root / "usr" / "lib" / "x86_64-linux-gnu" / "ld-linux-x86-64.so.2"
    loader.parent.mkdir(parents=True)
    loader.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    loader.chmod(0o755)
    script = tmp_path / "virtiofsd"
    script.write_text(wrapper_script(root))
    script.chmod(0o755)
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True).stdout.splitlines()
    _no_marker(tmp_path)
    assert out == ["--library-path", f"{root}/usr/lib/x86_64-linux-gnu", f"{root}/usr/libexec/virtiofsd", "--version"]


# --- 3. results folders -------------------------------------------------------------------

@pytest.mark.parametrize("folder", ["/", "/root", "/etc"])
def test_system_folders_are_refused(otns, cached_image, folder):
    r = otns("run", "--kernel", str(cached_image), "--results", folder, results=False)
    assert_one_line_error(r, 2, "not empty and otns did not make it")


def test_a_users_folder_is_refused_and_left_alone(otns, cached_image, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    assert_one_line_error(otns("run", "--kernel", str(cached_image), "--results", str(mine), results=False), 2,
                          str(mine))
    assert (mine / "thesis.tex").read_text() == "precious"
    assert sorted(os.listdir(mine)) == ["thesis.tex"]


def test_reused_results_folder_is_cleaned_completely(tmp_path):
    folder = safefs.prepare_results(tmp_path / "r")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    for name in ("console-tail.txt", "junit.xml", "leftover"):
        (folder / name).write_text("stale")
    (folder / "link").symlink_to(outside)
    (folder / "sub").mkdir()
    (folder / "sub" / "out").symlink_to(outside / "keep")
    os.mkfifo(folder / "fifo")
    assert safefs.prepare_results(folder) == folder
    assert os.listdir(folder) == [safefs.MARKER]
    assert (outside / "keep").read_text() == "x", "cleaning followed a link"


def test_empty_and_legacy_folders_are_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    safefs.prepare_results(tmp_path / "empty")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "summary.json").write_text("{}")
    (legacy / "console-tail.txt").write_text("old hang")
    safefs.prepare_results(legacy)
    assert os.listdir(legacy) == [safefs.MARKER]


def test_a_file_is_not_a_results_folder(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(safefs.BadInput, match="not a folder"):
        safefs.prepare_results(tmp_path / "f")


# --- 2. reading and writing beside what a guest left ---------------------------------------

def _reads_within(seconds: float, fn) -> BaseException | object:
    box: list = []

    def run():
        try:
            box.append(fn())
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box.append(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert box, "the read blocked"
    return box[0]


def test_reads_refuse_links_fifos_devices_and_huge_files(tmp_path):
    (tmp_path / "link").symlink_to("/etc/hostname")
    os.mkfifo(tmp_path / "fifo")
    with open(tmp_path / "huge", "wb") as f:
        f.truncate(10 * 1024 ** 3)  # sparse
    (tmp_path / "dir").mkdir()
    for path, why in [(tmp_path / "link", "symbolic link"), (tmp_path / "fifo", "not a regular file"),
                      (Path("/dev/zero"), "not a regular file"), (tmp_path / "huge", "more than"),
                      (tmp_path / "dir", "not a regular file")]:
        e = _reads_within(5, lambda p=path: safefs.read_bytes(p, 64 * safefs.MiB))
        assert isinstance(e, safefs.BadFile) and why in str(e) and str(path) in str(e), e


def test_write_atomic_never_writes_through_a_planted_link(tmp_path):
    folder, outside = tmp_path / "r", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "summary.json.tmp").symlink_to(outside / "a")  # the old temporary name
    (folder / "ktap.txt").symlink_to(outside / "b")
    (outside / "c").write_text("theirs")
    (folder / "crash.txt").symlink_to(outside / "c")
    (folder / "summary.json").mkdir()
    (folder / "summary.json" / "x").write_text("")
    os.mkfifo(folder / "console-tail.txt")
    for name in ("summary.json", "ktap.txt", "crash.txt", "console-tail.txt"):
        _reads_within(5, lambda n=name: safefs.write_atomic(folder / n, "ours\n"))
        assert (folder / name).is_file() and not (folder / name).is_symlink()
        assert (folder / name).read_text() == "ours\n"
    assert sorted(os.listdir(outside)) == ["c"] and (outside / "c").read_text() == "theirs"


def test_defuse_removes_what_could_hurt_the_host(tmp_path):
    os.mknod(tmp_path / "disk", 0o666 | stat.S_IFBLK, os.makedev(8, 0))
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "sub").mkdir(mode=0o777)
    os.chmod(tmp_path / "sub", 0o777)
    (tmp_path / "sub" / "link").symlink_to("/etc/shadow")
    (tmp_path / "suid").write_text("")
    os.chmod(tmp_path / "suid", 0o4777)
    (tmp_path / "theirs").write_text("")
    os.chown(tmp_path / "theirs", 1000, 1000)
    (tmp_path / "ok.txt").write_text("kept")
    found = safefs.defuse(tmp_path)
    assert sorted((u.path(), u.what) for u in found) == [
        ("disk", "block device 8:0"), ("fifo", "fifo"), ("sub/link", "symbolic link"), ("suid", "set-uid file")]
    assert stat.S_IMODE(os.stat(tmp_path / "suid").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "sub").st_mode) == 0o755
    assert os.stat(tmp_path / "theirs").st_uid == os.geteuid(), "a file of another user's was left to them"
    assert (tmp_path / "ok.txt").read_text() == "kept"
    assert safefs.defuse(tmp_path) == []


def _nest(top: Path, depth: int, length: int) -> int:
    """depth folders of `length`-character names below top, made through descriptors (the path
    is past PATH_MAX); returns a descriptor of the deepest."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for i in range(depth):
        name = f"{i:05d}".ljust(length, "d")
        os.mkdir(name, dir_fd=fd)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    return fd


@pytest.mark.parametrize("depth, length", [(20, 250), (1100, 8)])  # a 5 KB path; deeper than recursion goes
def test_defuse_and_removal_reach_any_depth_and_length(tmp_path, depth, length):
    folder = tmp_path / "r"
    folder.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    fd = _nest(folder, depth, length)
    os.mkfifo("fifo", dir_fd=fd)
    os.symlink(str(outside), "out", dir_fd=fd)
    f = os.open("suid", os.O_CREAT | os.O_WRONLY, 0o6777, dir_fd=fd)
    os.fchmod(f, 0o6777)
    os.close(f)
    os.close(fd)
    found = safefs.defuse(folder)
    assert sorted(u.what for u in found) == ["fifo", "set-uid and set-gid file", "symbolic link"]
    assert all(u.path().endswith(u.name) and len(u.path()) < 200 for u in found)
    unsafe = subprocess.run(["find", str(folder), "(", "-type", "p", "-o", "-type", "l", "-o", "-perm", "/6000", ")"],
                            capture_output=True, text=True, check=True).stdout
    assert unsafe == ""
    (folder / safefs.MARKER).write_text("")
    safefs.prepare_results(folder)
    assert os.listdir(folder) == [safefs.MARKER] and (outside / "keep").read_text() == "x"


def test_a_cleaning_that_fails_leaves_the_folder_marked(tmp_path, monkeypatch):
    folder = safefs.prepare_results(tmp_path / "r")
    (folder / "zz-junit.xml").write_text("")
    (folder / "a").mkdir()
    real = safefs.fdtree.remove

    def remove(dir_fd: int, name: str) -> None:
        if name == "zz-junit.xml":
            raise PermissionError(1, "Operation not permitted")
        real(dir_fd, name)
    monkeypatch.setattr(safefs.fdtree, "remove", remove)
    with pytest.raises(PermissionError):
        safefs.prepare_results(folder)
    assert (folder / safefs.MARKER).exists(), "the mark went first: the folder is now refused"
    monkeypatch.undo()
    assert os.listdir(safefs.prepare_results(folder)) == [safefs.MARKER]


def test_the_guest_share_is_private_and_its_files_move_in_swept(tmp_path):
    results = safefs.prepare_results(tmp_path / "r")
    (results / "console.log").write_text("the host's")
    share_dir = share.create(results)
    holder = share_dir.parent
    assert stat.S_IMODE(holder.stat().st_mode) == 0o700 and holder.parent == results
    os.chmod(share_dir, 0o777)  # the guest may open up the folder it sees: its parent stays closed
    (share_dir / "junit.xml").write_text("<testsuite/>")
    (share_dir / "console.log").write_text("the guest's")  # a name the host writes: dropped
    (share_dir / "sub").mkdir()
    (share_dir / "sub" / "tool").write_text("")
    os.chmod(share_dir / "sub" / "tool", 0o4755)
    found = share.collect(results)
    assert [(u.path(), u.what) for u in found] == [("sub/tool", "set-uid file")]
    assert sorted(os.listdir(results)) == [safefs.MARKER, "console.log", "junit.xml", "sub"]
    assert (results / "console.log").read_text() == "the host's"
    assert stat.S_IMODE((results / "sub" / "tool").stat().st_mode) == 0o755
    assert share.collect(results) == []  # nothing shared: nothing to do


def test_a_bad_junit_from_the_guest_is_set_aside(tmp_path):
    (tmp_path / "junit.xml").symlink_to("/etc/shadow")
    files = load_guest_files(tmp_path)
    assert files.tests is None and "junit.xml" in files.problem and "symbolic link" in files.problem
    assert not os.path.lexists(tmp_path / "junit.xml") and (tmp_path / "junit.xml.rejected").is_symlink()


def test_junit_entities_are_not_expanded(tmp_path):
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            '<testsuite><testcase classname="conformance.test_x" name="t"><failure message="&b;"/></testcase>'
            '</testsuite>')
    (tmp_path / "junit.xml").write_text(bomb)
    with pytest.raises(safefs.BadFile, match="junit.xml"):
        parse_junit(tmp_path / "junit.xml")


def test_guest_json_of_the_wrong_shape_is_ignored(tmp_path):
    (tmp_path / "guest.json").write_text(json.dumps({"release": 5, "suite_seconds": "NaN", "pytest_exit": True}))
    (tmp_path / "features.json").write_text(json.dumps({"features": ["open_tree_namespace"]}))
    files = load_guest_files(tmp_path)
    assert files.guest == {} and files.features == {"features": ["open_tree_namespace"]} and files.tests is None


# --- 4. result folders from elsewhere -----------------------------------------------------

def _folder(base: Path, name: str, summary: str | None, junit: str | None) -> Path:
    f = base / name
    f.mkdir()
    if summary is not None:
        (f / "summary.json").write_text(summary)
    if junit is not None:
        (f / "junit.xml").write_text(junit)
    return f


GOOD_SUMMARY = json.dumps({"kernel": "debian:7.2.13", "release": "7.2.13", "verdict": "CONFORMS",
                           "verdict_line": "CONFORMS", "counts": {"pass": 1}})
GOOD_JUNIT = ('<testsuites><testsuite><testcase classname="conformance.test_core" name="test_a" time="0.1"/>'
              '</testsuite></testsuites>')


@pytest.mark.parametrize("summary, junit, file, why", [
    ("", GOOD_JUNIT, "summary.json", "not valid JSON"),
    ("{not json", GOOD_JUNIT, "summary.json", "not valid JSON"),
    ("[1, 2]", GOOD_JUNIT, "summary.json", "not an object"),
    ('"text"', GOOD_JUNIT, "summary.json", "not an object"),
    ('{"counts": [1]}', GOOD_JUNIT, "summary.json", "counts"),
    ('{"kernel": 5}', GOOD_JUNIT, "summary.json", "kernel"),
    (GOOD_SUMMARY, "", "junit.xml", "not valid JUnit XML"),
    (GOOD_SUMMARY, "<testsuite><testcase", "junit.xml", "not valid JUnit XML"),
    (GOOD_SUMMARY, '<testsuite><testcase name="a" time="soon"/></testsuite>', "junit.xml", "not a number"),
])
def test_diff_report_and_bisect_changed_refuse_bad_files(otns, tmp_path, summary, junit, file, why):
    good = _folder(tmp_path, "good", GOOD_SUMMARY, GOOD_JUNIT)
    bad = _folder(tmp_path, "bad", summary, junit)
    for args in (["diff", str(good), str(bad)], ["report", str(bad), "--out", str(tmp_path / "rep")],
                 ["bisect", "--changed", str(good), str(bad)]):
        assert_one_line_error(otns(*args, results=False), 2, str(bad / file), why)


def test_an_interrupted_folder_says_so(otns, tmp_path):
    f = tmp_path / "r"
    f.mkdir()
    safefs.mark_incomplete(f)
    assert_one_line_error(otns("diff", str(f), str(f), results=False), 2, "interrupted")


def test_read_summary_names_a_missing_file(tmp_path):
    with pytest.raises(safefs.BadFile, match="not found"):
        read_summary(tmp_path / "summary.json")


def test_report_over_folders_from_elsewhere(otns, tmp_path):
    import xml.etree.ElementTree as ET
    a = _folder(tmp_path, "a", GOOD_SUMMARY, GOOD_JUNIT)
    b = _folder(tmp_path, "b", GOOD_SUMMARY.replace("7.2.13", "7.3.4"), GOOD_JUNIT)
    r = otns("report", str(a), str(b), "--out", str(tmp_path / "rep"), results=False)
    assert r.code == 0, r.stderr
    combined = ET.parse(tmp_path / "rep" / "combined-junit.xml").getroot()
    assert [s.get("name") for s in combined.iter("testsuite")] == ["debian:7.2.13", "debian:7.3.4"]
