"""What `pip install .` ships: every Python package of the checkout (tests aside), so a
non-editable install imports what the checkout imports (tests/test_install_boot.py boots one)."""
from __future__ import annotations

import tomllib

from otns.paths import REPO_ROOT


def test_every_package_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {str(init.parent.relative_to(REPO_ROOT)).replace("/", ".")
             for init in REPO_ROOT.glob("*/**/__init__.py")
             if init.parts[len(REPO_ROOT.parts)] not in ("tests", "build", ".venv") and ".egg-info" not in str(init)}
    assert found == listed, f"pyproject.toml's packages lack {sorted(found - listed)}, list extra {sorted(listed - found)}"


def test_every_data_file_is_shipped() -> None:
    """A file beside the code that is not Python (the guest's init, the kernel config, the
    report's template) is read at run time: package-data must list it."""
    import fnmatch
    import subprocess
    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    tracked = subprocess.run(["git", "ls-files", *setuptools["packages"]], cwd=REPO_ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    for path in (p for p in tracked if not p.endswith(".py")):
        package, _, name = path.partition("/")
        patterns = setuptools["package-data"].get(package, [])
        assert any(fnmatch.fnmatch(name, pat) for pat in patterns), f"package-data does not ship {path}"
