"""Bad usage is found on the host before anything is fetched or booted: exit 2, one line.

Options (--timeout, --cpus, -n) on every command, pytest arguments after --, test ids of a
bisect, every kernel of a matrix; and every option's help text.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest

from otns.cli import build_parser

from .conftest import Run, cache_for_tests, run_in_process
from .test_bad_input import assert_one_line_error

TEST = "conformance/test_foreign.py::test_foreign_non_recursive_copy_over_children_is_einval"


@pytest.mark.parametrize("value", ["nan", "inf", "0"])
@pytest.mark.parametrize("command", [
    ["run", "--kernel", "debian:7.2.13"],
    ["matrix", "debian:7.2.13"],
    ["bisect", TEST, "--good", "debian:7.2.6", "--bad", "debian:7.2.13"],
    ["bisect-run", TEST, "--no-build"],
    ["bench", "--kernel", "debian:7.2.13"],
])
def test_timeout_refused_everywhere(otns, tmp_path, command, value):
    # nan and inf would switch the timeout off; a fresh cache shows nothing was fetched.
    cache = tmp_path / "cache"
    r = otns(*command, f"--timeout={value}", cache=cache, results=False)
    assert_one_line_error(r, 2, "--timeout")
    assert not any(p.name != "tools.lock" for p in cache.iterdir()), list(cache.iterdir())


@pytest.mark.parametrize("args, needle", [
    (["run", "--timeout=-inf"], "--timeout"),
    (["run", "--timeout", "1e400"], "--timeout"),
    (["run", "--timeout=-1"], "--timeout"),
    (["run", "--cpus", "0"], "--cpus"),
    (["run", "--cpus", "65"], "--cpus"),
    (["run", "--cpus", "9999"], "--cpus"),
    (["bench", "--cpus", "9999"], "--cpus"),
    (["matrix", "debian:7.2.13", "-n", "0"], "-n/--workers"),
    (["matrix", "debian:7.2.13", "-n", "-3"], "-n/--workers"),
    (["matrix", "debian:7.2.13", "--cpus", "0", "--timeout", "1"], "--cpus"),
])
def test_counts_bounded(otns, tmp_path, args, needle):
    cache = tmp_path / "cache"
    r = otns(*args, cache=cache, results=False)
    assert_one_line_error(r, 2, needle)
    assert not (cache / "apt").exists(), "the index was fetched before the options were checked"


def test_bad_pytest_arguments_are_bad_usage_found_before_booting(otns):
    start = time.monotonic()
    r = otns("run", "--kernel", "debian:7.2.13", "--", "--no-such-option")
    assert_one_line_error(r, 2, "unrecognized arguments: --no-such-option")
    assert time.monotonic() - start < 60, "it booted"
    assert not r.results.exists(), "a results folder was made for a run that cannot work"


def test_no_test_selected_is_bad_usage_before_booting(otns):
    r = otns("run", "--kernel", "debian:7.2.13", "-k", "no_test_is_named_like_this")
    assert_one_line_error(r, 2, "select no test")
    assert not r.results.exists()


def test_a_missing_test_file_is_named(otns):
    r = otns("run", "--kernel", "debian:7.2.13", "--", "conformance/test_nope.py")
    assert_one_line_error(r, 2, "conformance/test_nope.py")


def test_guest_usage_error_message_from_a_real_console():
    # console.log of `otns run -- --no-such-option` before the host checked the arguments
    # (7.2.13 cloud, TCG): pytest's reason must come out of it, not "COULD NOT BOOT".
    from otns.run.preflight import usage_message
    console = (Path(__file__).parent / "data" / "console-usage-error.log").read_text()
    assert usage_message(console) == "unrecognized arguments: --no-such-option"


def test_bisect_of_a_test_that_does_not_exist(otns, tmp_path):
    cache = tmp_path / "cache"
    r = otns("bisect", "conformance/test_foreign.py::test_no_such_test", "--good", "debian:7.2.6",
             "--bad", "debian:7.2.13", "--out", str(tmp_path / "out"), cache=cache, results=False)
    assert_one_line_error(r, 2, "test_no_such_test", "not found")
    assert not (cache / "apt").exists() and not (cache / "kernels").exists(), "it fetched before checking"
    assert not (tmp_path / "out").exists()


def test_matrix_checks_every_kernel_before_the_first_boot(otns, tmp_path):
    out = tmp_path / "out"
    r = otns("matrix", "debian:7.2.13", "debian:9.99.99", "--out", str(out), results=False)
    assert_one_line_error(r, 2, "debian:9.99.99", "no Debian kernel matches")
    assert not out.exists(), "the matrix started"
    r = otns("matrix", "debian:7.2.13", "/etc/hostname", "--out", str(out), results=False)
    assert_one_line_error(r, 2, "/etc/hostname", "not an x86 Linux kernel image")
    assert not out.exists()
    r = otns("matrix", "debian:7.2.13", "-k", "no_test_is_named_like_this", "--out", str(out), results=False)
    assert_one_line_error(r, 2, "select no test")
    assert not out.exists()


def test_kernels_alone_says_what_to_type(otns):
    r = otns("kernels", results=False, process=True)  # argparse's exit in a real process
    assert_one_line_error(r, 2, "otns kernels list")
    assert "kcommand" not in r.stderr


def _parsers(parser: argparse.ArgumentParser, path: str = "otns"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_option_has_help():
    missing = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing


def test_accel_default_is_stated():
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if "--accel" in action.option_strings:
                assert "default" in action.help and "auto" in action.help, path


@pytest.mark.parametrize("how", ["--cache-dir", "XDG_CACHE_HOME"])
def test_a_cache_folder_that_is_a_file_is_bad_usage_either_way(tmp_path, capfd, how):
    # The same mistake gave exit 3 through --cache-dir and exit 2 through $XDG_CACHE_HOME.
    (tmp_path / "file").write_text("")
    if how == "--cache-dir":
        argv, env, where = ["--cache-dir", str(tmp_path / "file"), "kernels", "list"], {}, tmp_path / "file"
    else:
        argv, env, where = ["kernels", "list"], {"XDG_CACHE_HOME": str(tmp_path / "file")}, tmp_path / "file" / "otns"
    r = Run(*run_in_process(argv, capfd, env), None)
    assert_one_line_error(r, 2, "cache folder", str(where), how)


def test_an_interrupt_before_any_guest_says_only_that(capfd, monkeypatch):
    from otns.commands import COMMANDS

    def handle(args, cache_dir):
        raise KeyboardInterrupt
    monkeypatch.setattr(COMMANDS["kernels"], "handle", handle)
    code, _, err = run_in_process(["--cache-dir", str(cache_for_tests()), "kernels", "list"], capfd)
    assert code == 130 and err.strip() == "otns: interrupted", err


def test_every_command_describes_itself():
    # `otns report --help` and the others say what the command does, not only its usage line.
    bare = [path for path, parser in _parsers(build_parser()) if path.count(" ") == 1 and not parser.description]
    assert not bare, bare
