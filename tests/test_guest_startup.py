"""What the host prepares so that the guest starts the suite sooner: the bytecode it would
compile (vm.pycache) and, for -k, only the files that hold the selected tests. No boot: the
host's Python reads the same folders the guest does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from otns.paths import REPO_ROOT
from otns.preflight import check_pytest_args, collect, narrowed
from otns.run import _guest_shell
from vm import pycache
from vm.guest import CONFORMANCE

ONE = "test_recursive_alone_is_einval"


def test_collection_leaves_the_guest_bytecode_it_then_loads(tmp_path: Path):
    cache = tmp_path / "cache"
    code, output = collect(["-k", ONE], cache)
    assert code == 0, output
    prefix = pycache.folder(cache)
    assert (prefix / pycache.READY).is_file()
    rewritten = prefix / CONFORMANCE.relative_to("/") / f"test_core.{sys.implementation.cache_tag}-pytest-{pytest.__version__}.pyc"
    assert rewritten.is_file(), "pytest's assert-rewritten test module is not in the folder"
    # The guest's own entry point: loaded from the folder, compiled from nothing.
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(prefix), "PYTHONDONTWRITEBYTECODE": "1"}
    p = subprocess.run([sys.executable, "-S", "-v", "-c", "import vm.guest"], cwd=REPO_ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    guest_pyc = prefix / REPO_ROOT.relative_to("/") / "vm" / f"guest.{sys.implementation.cache_tag}.pyc"
    assert f"code object from '{guest_pyc}'" in p.stderr or f'code object from "{guest_pyc}"' in p.stderr, (
        "vm.guest was not loaded from the prepared bytecode")


def test_guest_uses_the_folder_only_once_ready(tmp_path: Path):
    cache = tmp_path / "odd cache $x"
    assert "PYTHONPYCACHEPREFIX" not in _guest_shell(Path("/run/otns-results"), ["-k", ONE], cache)
    pycache.folder(cache).mkdir(parents=True)
    pycache.mark_ready(cache)
    shell = _guest_shell(Path("/run/otns-results"), ["-k", ONE], cache)
    assert f"PYTHONPYCACHEPREFIX='{pycache.folder(cache)}' " in shell  # quoted: the path reaches a shell


def test_a_failed_collection_does_not_mark_the_folder_ready(tmp_path: Path):
    cache = tmp_path / "cache"
    code, _ = collect(["-k", "no_test_has_this_name"], cache)
    assert code != 0
    assert not (pycache.folder(cache) / pycache.READY).exists()


@pytest.mark.parametrize("keyword", [ONE, "cloexec", "upstream and not userns"])
def test_narrowed_arguments_select_the_same_tests(keyword: str):
    selected = check_pytest_args(["-k", keyword])
    args = narrowed(["-k", keyword], selected)
    files = [a for a in args if a.startswith("conformance/")]
    assert files and len(files) < len(list(CONFORMANCE.glob("test_*.py")))
    assert check_pytest_args(args) == selected
