"""The cache folder has one owner of its names (base.cachedir): read from the source with ast, a
literal name joined to a cache folder anywhere else fails here with its file and line."""
from __future__ import annotations

import ast
from pathlib import Path

from base import cachedir
from otns.paths import REPO_ROOT

PACKAGES = ("base", "kernels", "vm", "otns")


def _names() -> dict[str, str]:
    return {k: v for k, v in vars(cachedir).items() if k.isupper() and isinstance(v, str)}


def _cache_expr(node: ast.expr) -> bool:
    """cache_dir, opts.cache_dir, self.opts.cache_dir: otns's cache folder (apt's own cache,
    kernels.apt's self.cache, keeps apt's layout)."""
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name == "cache_dir"


def literal_joins(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and _cache_expr(node.left)
                and isinstance(node.right, (ast.Constant, ast.JoinedStr))):
            found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_each_name_is_taken_once():
    names = list(_names().values())
    assert len(names) == len(set(names)), names


def test_no_literal_name_is_joined_to_the_cache_folder():
    wrong = [hit for pkg in PACKAGES for p in sorted((REPO_ROOT / pkg).rglob("*.py")) if p.name != "cachedir.py"
             for hit in literal_joins(p)]
    assert not wrong, "name these in base/cachedir.py:\n" + "\n".join(wrong)


def test_the_check_sees_a_literal_join(tmp_path, monkeypatch):
    import tests.test_cachedir as me
    monkeypatch.setattr(me, "REPO_ROOT", tmp_path)
    bad = tmp_path / "bad.py"
    bad.write_text('def f(opts, cache_dir):\n    a = opts.cache_dir / "apt"\n    b = cache_dir / f"x-{a}"\n'
                   '    return cache_dir / cachedir.APT\n')
    assert literal_joins(bad) == ["bad.py:2: opts.cache_dir / 'apt'", "bad.py:3: cache_dir / f'x-{a}'"]
