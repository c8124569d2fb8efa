"""What the host prepares so that the guest starts the suite sooner: the bytecode it would
compile (vm.pycache) and, for -k, only the files that hold the selected tests. No boot: the
host's Python reads the same folders the guest does."""
from __future__ import annotations

import json
import marshal
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from otns.paths import REPO_ROOT
from otns.run.execute import _guest_shell
from otns.run.preflight import check_pytest_args, collect, narrowed
from vm import bytecode, pycache
from vm.guest import CONFORMANCE

ONE = "test_recursive_alone_is_einval"


def test_collection_leaves_the_guest_bytecode_it_then_loads(tmp_path: Path):
    cache = tmp_path / "cache"
    code, output = collect(["-k", ONE], cache)
    assert code == 0, output
    prefix = pycache.folder(cache)
    assert (prefix / pycache.READY).is_file()
    pyc = f"test_core.{sys.implementation.cache_tag}-pytest-{pytest.__version__}.pyc"
    rewritten = prefix / CONFORMANCE.relative_to("/") / pyc
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


def _guest_python(prefix: Path, script: str, *, write: bool = False, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    """A bare interpreter started as the guest starts it: -S, the bytecode folder, nothing written."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(prefix)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    p = subprocess.run([sys.executable, "-S", "-c", script], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    return p


FILES_OF = ("import json, sys; print(json.dumps({m: sys.modules[m].__file__ "
            "for m in ('pytest', '_pytest.config', 'argparse', 'conformance.helpers', 'vm.progress')}))")


def test_collection_bundles_what_the_guest_imports(tmp_path: Path):
    cache = tmp_path / "cache"
    code, output = collect(["-k", ONE], cache)
    assert code == 0, output
    prefix = pycache.folder(cache)
    modules = marshal.loads((prefix / bytecode.NAME).read_bytes())["modules"]
    # pytest's rewritten test modules and conftest are pytest's to load; __main__ is no module to import
    assert not [n for n in modules if n.startswith("conformance.test_") or n.endswith("conftest") or n == "__main__"]
    start = ("import sys; from vm import bytecode; f = bytecode.install(); import vm.guest; "
             "vm.guest.add_site_packages(); import pytest, conformance.helpers; ")
    p = _guest_python(prefix, start + "print(' '.join(f.served)); " + FILES_OF)
    served, files = p.stdout.splitlines()
    assert {"argparse", "vm.progress", "pytest", "_pytest.config", "conformance.helpers"} <= set(served.split())
    # The same modules from the same files as the usual import gives
    plain = _guest_python(prefix, "import vm.guest; vm.guest.add_site_packages(); import pytest, conformance.helpers; "
                          + FILES_OF)
    assert json.loads(files) == json.loads(plain.stdout)


def test_bundled_bytecode_is_checked_against_its_source(tmp_path: Path):
    src, prefix = tmp_path / "src", tmp_path / "prefix"
    src.mkdir()
    mod = src / "otns_bundled_probe.py"
    mod.write_text("VALUE = 1\n")
    load = f"import sys; sys.path.insert(0, {str(src)!r}); "
    _guest_python(prefix, load + "import otns_bundled_probe; from vm import bytecode; bytecode.write(sys.pycache_prefix)",
                  write=True)
    for pyc in prefix.rglob("otns_bundled_probe.*.pyc"):
        pyc.unlink()  # only the bundle holds its bytecode now
    probe = load + "from vm import bytecode; f = bytecode.install(); import otns_bundled_probe as m; print(m.VALUE, f.served)"
    # Same size and mtime, other text: the .pyc's own check passes, so 1 shows the bundle's bytecode ran.
    st = mod.stat()
    mod.write_text("VALUE = 7\n")
    os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _guest_python(prefix, probe).stdout.split(None, 1) == ["1", "['otns_bundled_probe']\n"]
    # A changed source (its size) makes that bytecode stale: the source is compiled instead.
    mod.write_text("VALUE = 22\n")
    assert _guest_python(prefix, probe).stdout.split()[0] == "22"
    # A source gone since: the usual search decides (and finds nothing).
    mod.unlink()
    p = _guest_python(prefix, load + "from vm import bytecode; bytecode.install()\ntry:\n import otns_bundled_probe\n"
                      "except ImportError: print('absent')")
    assert p.stdout.strip() == "absent"


@pytest.mark.parametrize("content", [b"", b"garbage", marshal.dumps({"format": 99, "modules": {}}),
                                     marshal.dumps([1, 2]), marshal.dumps({"format": 1})])
def test_a_bad_bundle_is_ignored(tmp_path: Path, content: bytes):
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    (prefix / bytecode.NAME).write_bytes(content)
    p = _guest_python(prefix, "from vm import bytecode; print(bytecode.install()); import json; print(json.__name__)")
    assert p.stdout.split() == ["None", "json"]


def test_a_matrix_of_the_whole_suite_prepares_the_guests_bytecode(otns, tmp_path: Path):
    # Collected once on the host, -k or not; here the one kernel is then refused, before any boot.
    cache = tmp_path / "cache"
    r = otns("matrix", str(tmp_path / "no-such-vmlinuz"), "--out", str(tmp_path / "m"), cache=cache, results=False)
    assert r.code == 2 and "no-such-vmlinuz" in r.stderr, r.stderr
    prefix = pycache.folder(cache)
    assert (prefix / pycache.READY).is_file() and (prefix / bytecode.NAME).is_file()


def test_each_checkout_keeps_its_own_bundle_and_serves_only_what_it_would_import(tmp_path: Path):
    """Two checkouts (or a checkout and an install) share one cache: neither guest may import
    the other's modules. The bundle's name follows the folder that holds vm/, and an entry is
    served only from where the usual search would find it on this guest's sys.path."""
    other = tmp_path / "other-checkout"
    other.mkdir()
    shutil.copytree(REPO_ROOT / "vm", other / "vm")
    names = {_guest_python(tmp_path / "p", "from vm import bytecode; print(bytecode.NAME)", cwd=root).stdout.strip()
             for root in (REPO_ROOT, other)}
    assert len(names) == 2 and all(n.startswith(f"bundle.{sys.implementation.cache_tag}.") for n in names)
    # An entry whose file lies in a folder this guest's sys.path does not hold is left to the usual search.
    src = tmp_path / "elsewhere"
    src.mkdir()
    (src / "otns_bundled_probe.py").write_text("VALUE = 1\n")
    prefix = tmp_path / "prefix"
    _guest_python(prefix, f"import sys; sys.path.insert(0, {str(src)!r}); import otns_bundled_probe; "
                  "from vm import bytecode; bytecode.write(sys.pycache_prefix)", write=True)
    p = _guest_python(prefix, "from vm import bytecode; f = bytecode.install()\ntry:\n import otns_bundled_probe\n"
                      "except ImportError: print('absent', f.served)")
    assert p.stdout.strip() == "absent []"


@pytest.mark.parametrize("depth, examples", [("default", 2), ("deep", 40)])
def test_hypothesis_is_imported_only_with_the_oracle_tests(depth: str, examples: int):
    """A run without the oracle's tests (a bisect step, a fault's rule tests) does not import
    hypothesis (about 1.5 s of the guest's start); with them, the oracle's settings are loaded
    before their @given decorators read them, at the depth conftest was given."""
    code = ("import sys\n"
            "import conformance.conftest, conformance.test_core\n"
            "assert 'hypothesis' not in sys.modules, 'conftest or a plain test module imported hypothesis'\n"
            "import conformance.test_oracle_open_tree as t\n"
            "print(t.test_open_tree_ns_matches_unshare_and_bind._hypothesis_internal_use_settings.max_examples)\n")
    env = {**os.environ, "OTNS_ORACLE_PROFILE": depth}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(examples)]
