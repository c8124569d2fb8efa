"""Each test file is of one tier: tests/*_boot.py boot a VM, every test of them (a module-level
`pytestmark = pytest.mark.boot`), and no other file holds a boot test. So `pytest -m "not boot"`
and `pytest tests/*_boot.py` split the suite by file, and a slow test cannot hide among fast ones.

Read from the source with ast (nothing is imported or collected): any `mark.boot` counts, on a
function, a class, a pytest.param or a module's pytestmark."""
from __future__ import annotations

import ast
from pathlib import Path

from otns.paths import REPO_ROOT


def _is_boot_mark(node: ast.AST) -> bool:
    """pytest.mark.boot, or mark.boot after `from pytest import mark`."""
    if not (isinstance(node, ast.Attribute) and node.attr == "boot"):
        return False
    owner = node.value
    return (isinstance(owner, ast.Attribute) and owner.attr == "mark") or (isinstance(owner, ast.Name)
                                                                           and owner.id == "mark")


def _module_mark(tree: ast.Module) -> ast.AST | None:
    """The module-level pytestmark's boot mark (alone or in a list), if it has one."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            return next((v for v in values if _is_boot_mark(v)), None)
    return None


def tier_problems(path: Path) -> list[str]:
    """What is wrong with one test file's tier ([] when nothing is)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    whole = _module_mark(tree)
    if path.stem.endswith("_boot"):
        return [] if whole is not None else [f"{path.name}: not every test boots: give it "
                                             "`pytestmark = pytest.mark.boot`, the fast tests another file"]
    lines = sorted({n.lineno for n in ast.walk(tree) if _is_boot_mark(n)})
    return [f"{path.name}:{line}: a boot test in a fast file: move it to {path.stem}_boot.py" for line in lines]


def test_every_test_file_is_of_one_tier():
    wrong = [p for f in sorted((REPO_ROOT / "tests").glob("test_*.py")) for p in tier_problems(f)]
    assert not wrong, "\n".join(wrong)


def test_the_check_finds_a_mixed_file(tmp_path):
    """The check itself: each way of marking a boot test in a fast file is named with its line,
    and a *_boot.py file that marks its tests one by one is refused."""
    fast = tmp_path / "test_x.py"
    fast.write_text("import pytest\nfrom pytest import mark\n\n\n@pytest.mark.boot\ndef test_a():\n    pass\n\n\n"
                    "@mark.boot\nclass TestB:\n    pass\n\n\n"
                    "@pytest.mark.parametrize('v', [1, pytest.param(2, marks=pytest.mark.boot)])\ndef test_c(v):\n"
                    "    pass\n\n\ndef test_d():\n    pass\n")
    assert tier_problems(fast) == [f"test_x.py:{n}: a boot test in a fast file: move it to test_x_boot.py"
                                   for n in (5, 10, 15)]
    (tmp_path / "test_y.py").write_text("import pytest\n\npytestmark = [pytest.mark.boot]\n")
    assert tier_problems(tmp_path / "test_y.py") == ["test_y.py:3: a boot test in a fast file: move it to test_y_boot.py"]
    one_by_one = tmp_path / "test_z_boot.py"
    one_by_one.write_text("import pytest\n\n\n@pytest.mark.boot\ndef test_a():\n    pass\n\n\ndef test_b():\n    pass\n")
    assert tier_problems(one_by_one) == ["test_z_boot.py: not every test boots: give it "
                                         "`pytestmark = pytest.mark.boot`, the fast tests another file"]
    whole = tmp_path / "test_w_boot.py"
    whole.write_text("import pytest\n\npytestmark = [pytest.mark.boot, pytest.mark.skipif(False, reason='x')]\n")
    assert tier_problems(whole) == []
