"""base/: the one atomic write and the one lock every layer uses."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

from base.locks import locked
from base.safefs import new_folder, write_atomic
from otns.paths import REPO_ROOT


def test_write_atomic_takes_text_or_bytes_and_an_exact_mode(tmp_path):
    target = tmp_path / "f"
    write_atomic(target, "é\n")
    assert target.read_bytes() == "é\n".encode()
    old = os.umask(0o077)
    try:
        write_atomic(target, b"\xff\x00", mode=0o755)
    finally:
        os.umask(old)
    assert target.read_bytes() == b"\xff\x00" and (target.stat().st_mode & 0o7777) == 0o755
    assert os.listdir(tmp_path) == ["f"]  # no temporary file left beside it


def test_write_atomic_leaves_the_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "f"
    target.write_text("old")
    try:
        write_atomic(target, object())  # type: ignore[arg-type]
    except TypeError:
        pass
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["f"]


def test_new_folder_appears_whole_or_not_at_all(tmp_path):
    dest = tmp_path / "cache" / "k"
    try:
        with new_folder(dest) as tmp:
            (tmp / "half").write_text("x")
            raise KeyboardInterrupt  # a killed fill
    except KeyboardInterrupt:
        pass
    assert os.listdir(tmp_path / "cache") == []
    with new_folder(dest) as tmp:
        (tmp / "a").write_text("1")
    with new_folder(dest, replace=True) as tmp:
        (tmp / "b").write_text("2")
    assert os.listdir(dest) == ["b"] and os.listdir(tmp_path / "cache") == ["k"]


def test_a_second_holder_waits_and_says_why(tmp_path):
    lock = tmp_path / "sub" / "x.lock"
    holder = textwrap.dedent(f"""
        import sys, time
        from base.locks import locked
        from pathlib import Path
        with locked(Path({str(lock)!r}), "otns: waiting for the other run"):
            print("got it", flush=True)
            time.sleep(float(sys.argv[1]))
    """)
    with locked(lock):
        p = subprocess.Popen([sys.executable, "-c", holder, "0"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        assert p.stdout.readline() == "otns: waiting for the other run\n"
        time.sleep(0.3)
        assert p.poll() is None  # still waiting while we hold the lock
    assert p.stdout.readline() == "got it\n" and p.wait(timeout=30) == 0
    # Nobody holds it: no message, no wait.
    r = subprocess.run([sys.executable, "-c", holder, "0"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert r.stdout == "got it\n"
