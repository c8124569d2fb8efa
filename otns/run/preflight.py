"""Checks on the host before anything is fetched or booted: the pytest arguments and test ids
the guest will get, and every kernel of a matrix.

The guest runs the same pytest, from the same .venv, on the same conformance/ folder (it sees
the host's root read-only), so `pytest --collect-only` here with the guest's own arguments
answers, in about a second, what a boot would answer only after a minute: does pytest accept
these arguments, and do they select any test?
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from base.errors import BadInput, InfraError
from vm import pycache
from vm.guest import CONFORMANCE
from vm.guest import ROOT as GUEST_ROOT
from vm.guest import pytest_args as guest_pytest_args

from ..paths import REPO_ROOT

# pytest's exit codes (pytest.ExitCode), as a number so a guest's guest.json can be read too.
PYTEST_OK = 0
PYTEST_TESTS_FAILED = 1
PYTEST_INTERRUPTED = 2  # here: errors while collecting
PYTEST_USAGE_ERROR = 4
PYTEST_NO_TESTS = 5
COLLECT_TIMEOUT = 120.0

# "python -m pytest: error: unrecognized arguments: --x" (argparse) or "ERROR: not found: ..." (pytest).
_ARGPARSE_ERROR = re.compile(r"^[^\n]*pytest[^\n]*?: error: (?P<msg>.+)$", re.M)
_PYTEST_ERROR = re.compile(r"^ERROR: (?!usage:)(?P<msg>.+)(?:\n(?P<more>\(.+\)))?$", re.M)


def usage_message(output: str) -> str:
    """pytest's own one-line reason for a usage error, from its output (or a console log)."""
    m = _ARGPARSE_ERROR.search(output)
    if m:
        return m["msg"].strip()
    m = _PYTEST_ERROR.search(output)
    if m:
        return " ".join(filter(None, (m["msg"].strip(), m["more"])))
    return "pytest rejected the arguments (no message)"


def collect(extra: list[str], cache_dir: Path | None = None) -> tuple[int, str]:
    """Collect as the guest would with these extra arguments; (pytest's exit code, its output).
    With cache_dir, the bytecode this compiles is kept there for the guest (vm.pycache)."""
    with tempfile.TemporaryDirectory(prefix="otns-collect-") as results:
        cmd = [sys.executable, "-m", "pytest", *guest_pytest_args(Path(results), extra), "--collect-only", "-q"]
        env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        if cache_dir is not None:
            env = pycache.writer_env(cache_dir, env)
            cmd += ["-p", "vm.bytecode"]  # bundles the bytecode it leaves there for the guest
        try:
            p = subprocess.run(cmd, cwd=GUEST_ROOT, env=env, capture_output=True, text=True, errors="replace",
                               timeout=COLLECT_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise InfraError(f"collecting the suite on the host took over {COLLECT_TIMEOUT:.0f} s") from None
    if cache_dir is not None and p.returncode == 0:
        pycache.mark_ready(cache_dir)
    return p.returncode, p.stdout + p.stderr


def check_pytest_args(extra: list[str], what: str = "the pytest arguments", cache_dir: Path | None = None) -> list[str]:
    """BadInput unless pytest accepts these arguments and they select at least one test; the ids
    of the tests they select. With cache_dir, the guest's bytecode is prepared there on the way
    (vm.pycache)."""
    for arg in extra:
        # The guest, too, reads an argument starting with conformance/ as a path to test; a
        # missing one would only show as pytest not knowing conftest.py's options.
        if arg.startswith(("conformance/", str(CONFORMANCE))):
            path = (REPO_ROOT / arg.split("::")[0]).resolve()
            if not path.is_relative_to(CONFORMANCE) or not path.exists():
                raise BadInput(f"no such file in conformance/: {arg.split('::')[0]!r} (from {what})")
    code, output = collect(extra, cache_dir)
    if code == 0:
        return _collected(output)
    if code == PYTEST_USAGE_ERROR:
        raise BadInput(f"pytest refuses {what}: {usage_message(output)}")
    if code == PYTEST_NO_TESTS:
        raise BadInput(f"{what} select no test of conformance/")
    if code == PYTEST_INTERRUPTED:
        raise BadInput(f"pytest cannot collect conformance/ with {what}: {usage_message(output)}")
    tail = " | ".join(output.strip().splitlines()[-2:])
    raise InfraError(f"collecting conformance/ on the host failed (pytest exit {code}): {tail}")


def check_test_ids(test_ids: list[str], cache_dir: Path | None = None) -> None:
    """Each id names a test of conformance/ (bisecting a typo would boot two kernels first)."""
    for t in test_ids:
        path, sep, name = t.partition("::")
        if t.startswith("-") or not sep or not path.endswith(".py") or not name or name.startswith(":"):
            raise BadInput(f"not a test id (conformance/test_file.py::test_name[param]): {t!r}")
    check_pytest_args(list(test_ids), what="the test id " + ", ".join(test_ids), cache_dir=cache_dir)


def _collected(output: str) -> list[str]:
    """The test ids `pytest --collect-only -q` lists, one a line before its summary."""
    return [ln for ln in output.splitlines() if ln.startswith("conformance/") and "::" in ln]


def narrowed(keyword: list[str], selected: list[str]) -> list[str]:
    """Guest arguments that select the same tests as `-k EXPR` (keyword) over the whole suite:
    the files that hold the selected tests, then the same -k. The guest then imports and
    collects those files only, not all of conformance/ to keep one test (seconds under TCG)."""
    files = sorted({t.split("::", 1)[0] for t in selected})
    return [*files, *keyword]


def check_kernels(entries: list, cache_dir: Path, notice: Callable[[str], object]) -> list[str]:
    """Resolve every kernel of a matrix without fetching or booting: BadInput naming the first
    one that cannot work. Returns what would be fetched (for the user's information)."""
    from kernels.resolve import Resolver
    from kernels.spec import parse_spec

    resolver = Resolver(cache_dir, notice)
    to_fetch = []
    for e in entries:
        try:
            planned = resolver.plan(parse_spec(e.kernel, e.flavour))
            if planned.debian is not None and planned.to_fetch:
                to_fetch.append(planned.debian.release)
            elif planned.debian is None and planned.kernel is not None and not planned.kernel.is_host:
                planned.kernel.transport()  # a config that says neither virtiofs nor 9p can work
        except BadInput as err:
            raise BadInput(f"kernel {e.kernel!r}: {err}") from None
    return to_fetch
