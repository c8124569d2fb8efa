"""vm.progress: the outcomes streamed out of the guest test by test, written by a real pytest
session and read back as the host reads them (untrusted: any bytes, any kind of file)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from otns.paths import REPO_ROOT
from otns.results.files import parse_junit
from vm import progress

TESTS = """
    import time
    import pytest

    @pytest.fixture
    def broken_setup():
        raise RuntimeError("setup broke")

    @pytest.fixture
    def broken_teardown():
        yield
        raise RuntimeError("teardown broke")

    def test_pass():
        pass

    def test_fail():
        assert 1 == 2, "one is not two"

    def test_skip():
        pytest.skip("not here")

    @pytest.mark.xfail(reason="known")
    def test_xfail():
        assert False

    def test_setup_error(broken_setup):
        pass

    def test_teardown_error(broken_teardown):
        pass

    def test_stuck():
        time.sleep(600)

    def test_never_reached():
        pass
"""


def start_session(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "test_cases.py").write_text(textwrap.dedent(TESTS))
    out = tmp_path / progress.FILE
    script = ("import sys, pytest; from pathlib import Path; from vm import progress; "
              "sys.exit(pytest.main(sys.argv[2:], plugins=[progress.Writer(Path(sys.argv[1]))]))")
    cmd = [sys.executable, "-c", script, str(out), str(tmp_path / "test_cases.py"), "-p", "no:cacheprovider",
           "-q", "-o", "junit_family=xunit2", f"--junitxml={tmp_path / 'junit.xml'}", *args]
    p = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(REPO_ROOT)})
    return p, out


def test_stream_agrees_with_junit(tmp_path: Path) -> None:
    p, out = start_session(tmp_path, "-k", "not stuck")
    assert p.wait(60) == 1
    got = progress.read(out)
    assert got is not None and got.collected == 7 and got.running == []
    junit = {r.name.rsplit("::", 1)[1]: r for r in parse_junit(tmp_path / "junit.xml")}
    streamed = {f.test.rsplit("::", 1)[1]: f for f in got.finished}
    assert {n: f.outcome for n, f in streamed.items()} == {n: r.outcome.value for n, r in junit.items()}
    assert streamed["test_fail"].outcome == "fail" and "one is not two" in streamed["test_fail"].message
    assert streamed["test_skip"].message == "not here"
    assert streamed["test_xfail"].outcome == "skip"
    assert streamed["test_setup_error"].outcome == "error" and "setup broke" in streamed["test_setup_error"].message
    assert streamed["test_teardown_error"].outcome == "error"


def test_a_killed_session_keeps_what_finished_and_names_the_running_test(tmp_path: Path) -> None:
    p, out = start_session(tmp_path)
    try:
        deadline = time.monotonic() + 60
        while "test_stuck" not in (out.read_text() if out.exists() else ""):
            assert time.monotonic() < deadline, "the session never reached test_stuck"
            time.sleep(0.1)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    got = progress.read(out)
    assert not (tmp_path / "junit.xml").exists()
    assert got.collected == 8
    assert [f.test.rsplit("::", 1)[1] for f in got.finished] == [
        "test_pass", "test_fail", "test_skip", "test_xfail", "test_setup_error", "test_teardown_error"]
    assert len(got.running) == 1 and got.running[0].endswith("test_cases.py::test_stuck"), got.running


def line(**event) -> bytes:
    return (json.dumps(event) + "\n").encode()


def test_reader_takes_only_well_formed_lines(tmp_path: Path) -> None:
    f = tmp_path / progress.FILE
    f.write_bytes(b"".join([
        line(event="collected", count=3),
        b"\xff\xfe not json\n", b"[1, 2]\n", b'"a string"\n',
        line(event="start", test="t::ok"),
        line(event="end", test="t::ok", outcome="pass", seconds=0.5, message=""),
        line(event="end", test="t::odd", outcome="exploded", seconds=1, message=""),  # unknown outcome
        line(event="end", test="t::\x1b[31mred", outcome="pass", seconds=1, message=""),  # not printable
        line(event="end", test="t::nan", outcome="fail", seconds=float("nan"), message="bad\x1b[2Jcolour"),
        line(event="end", test="t::long", outcome="fail", seconds=-1, message="x" * 100_000),
        line(event="collected", count=True),
        line(event="start", test="t::hung"),
        b'{"event": "end", "test": "t::hung", "outc',  # cut mid-write by the crash
    ]))
    got = progress.read(f)
    assert got.collected == 3
    assert [(x.test, x.outcome, x.seconds) for x in got.finished] == [
        ("t::ok", "pass", 0.5), ("t::nan", "fail", 0.0), ("t::long", "fail", 0.0)]
    assert got.finished[1].message == "bad?[2Jcolour"
    assert len(got.finished[2].message) == progress.MAX_MESSAGE
    assert got.running == ["t::hung"]


def test_reader_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(line(event="start", test="t::x"))
    (tmp_path / "link").symlink_to(target)
    assert progress.read(tmp_path / "link") is None
    os.mkfifo(tmp_path / "fifo")  # no writer: a blocking open would wait for ever
    assert progress.read(tmp_path / "fifo") is None
    assert progress.read(tmp_path) is None
    assert progress.read(tmp_path / "missing") is None


def test_reader_is_bounded(tmp_path: Path) -> None:
    f = tmp_path / progress.FILE
    one = line(event="end", test="t::x", outcome="pass", seconds=0, message="")
    with open(f, "wb") as out:
        out.write(one * (2 * progress.MAX_BYTES // len(one)))
    got = progress.read(f)
    assert len(got.finished) == progress.MAX_BYTES // len(one)


def test_outcomes_are_the_hosts() -> None:
    from otns.results.model import Outcome
    assert set(progress.OUTCOMES) == {o.value for o in Outcome}
