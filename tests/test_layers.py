"""The packages' imports point one way only: cli -> pipeline (otns/) -> vm -> kernels -> base.
Inside otns/, the workflows (matrix, bisect, bench, mutate, coverage) run kernels through run/,
report/ reads results/ alone, and results/ (the contract) imports no workflow.

Read from the source with ast (nothing is imported), so a new import against the direction fails
here with its file, line and the rule it breaks. Imports inside functions count too: a late import
is still a dependency.
"""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from otns.paths import REPO_ROOT

PACKAGES = ("base", "kernels", "vm", "otns", "conformance")
# What each layer may import of the project besides itself. conformance/ runs inside the guest
# from the checkout: it stands alone, and the pipeline reads its feature table.
MAY_IMPORT = {
    "base": set(),
    "kernels": {"base"},
    "vm": {"kernels", "base"},
    "otns": {"vm", "kernels", "base", "conformance"},
    "cli": {"otns", "vm", "kernels", "base", "conformance"},
    "conformance": set(),
}
# The command-line layer: the only modules that may import otns.cli or otns.commands.
CLI_MODULES = ("otns.cli", "otns.commands")
# Inside the pipeline: what each workflow package may import of the other packages of otns/.
# Modules at otns/'s top (paths, options) are shared by all and import no package of otns/.
WORKFLOW_MAY_IMPORT = {
    "otns.results": set(),
    "otns.run": {"otns.results"},
    "otns.report": {"otns.results"},
    "otns.matrix": {"otns.run", "otns.results"},
    "otns.bisect": {"otns.run", "otns.results"},
    "otns.bench": {"otns.run", "otns.results"},
    "otns.mutate": {"otns.run", "otns.results"},
    "otns.coverage": {"otns.run", "otns.results"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _layer(module: str) -> str:
    return "cli" if _under(module, CLI_MODULES) else module.split(".")[0]


@cache
def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from pkg import mod` imports pkg.mod when mod is a module: count both.
            found += [(node.lineno, stem)] + [(node.lineno, f"{stem}.{a.name}") for a in node.names]
    return found


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO_ROOT / pkg).rglob("*.py"))


def _project_module(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def test_every_package_is_scanned():
    names = {_module_name(p) for p in _modules()}
    assert {"base.errors", "base.safefs", "base.locks", "kernels.fetch", "vm.boot", "otns.run.execute", "otns.cli",
            "conformance.conftest"} <= names


def test_imports_point_down_only():
    wrong = []
    for path in _modules():
        module = _module_name(path)
        layer = _layer(module)
        allowed = MAY_IMPORT[layer] | {layer}
        for line, name in _imports(path):
            if not _project_module(name):
                continue
            target = _layer(name) if layer == "cli" else name.split(".")[0]
            if target not in allowed:
                wrong.append(f"{path.relative_to(REPO_ROOT)}:{line}: {layer} module {module} imports {name} "
                             f"({layer} may import only {', '.join(sorted(MAY_IMPORT[layer])) or 'nothing of the project'})")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_only_the_cli_imports_the_cli():
    wrong = [f"{path.relative_to(REPO_ROOT)}:{line}: {_module_name(path)} imports {name}"
             for path in _modules() if not _under(_module_name(path), CLI_MODULES)
             for line, name in _imports(path) if _under(name, CLI_MODULES)]
    assert not wrong, "only otns/cli.py and otns/commands/ may import the command line:\n" + "\n".join(wrong)


def _workflow(module: str) -> str | None:
    """The workflow package of an otns module; None for the shared modules at otns/'s top."""
    parts = module.split(".")
    package = ".".join(parts[:2])
    return package if package in WORKFLOW_MAY_IMPORT else None


def test_every_workflow_package_is_declared():
    """A new package under otns/ gets a row in WORKFLOW_MAY_IMPORT (else nothing would check it)."""
    found = {f"otns.{p.name}" for p in (REPO_ROOT / "otns").iterdir() if (p / "__init__.py").exists()}
    assert found - {"otns.commands"} == set(WORKFLOW_MAY_IMPORT)


def test_workflows_point_one_way():
    wrong = []
    for path in _modules():
        module = _module_name(path)
        if module.split(".")[0] != "otns" or _under(module, CLI_MODULES):
            continue
        own = _workflow(module)
        for line, name in _imports(path):
            if name.split(".")[0] != "otns" or _under(name, CLI_MODULES) or name == "otns":
                continue
            target = _workflow(name)
            if target is None or target == own:
                continue
            allowed = WORKFLOW_MAY_IMPORT[own] if own else set()
            if target not in allowed:
                wrong.append(f"{path.relative_to(REPO_ROOT)}:{line}: {module} imports {name} "
                             f"({own or 'a shared module'} may import only "
                             f"{', '.join(sorted(allowed)) or 'no workflow package'})")
    assert not wrong, "imports against the workflow direction:\n" + "\n".join(wrong)


def test_a_wrong_import_is_named(tmp_path, monkeypatch):
    """The check itself: a kernels module importing vm is caught, with its line."""
    import tests.test_layers as me
    fake = tmp_path / "kernels" / "bad.py"
    fake.parent.mkdir()
    fake.write_text("import os\n\n\ndef f():\n    from vm.boot import boot\n    from ..otns import cli\n")
    monkeypatch.setattr(me, "REPO_ROOT", tmp_path)
    assert _imports(fake) == [(1, "os"), (5, "vm.boot"), (5, "vm.boot.boot"), (6, "otns"), (6, "otns.cli")]
    monkeypatch.setattr(me, "_modules", lambda: [fake])
    for check, words in ((test_imports_point_down_only, "kernels/bad.py:5: kernels module kernels.bad imports vm.boot"),
                         (test_only_the_cli_imports_the_cli, "kernels/bad.py:6: kernels.bad imports otns.cli")):
        try:
            check()
        except AssertionError as e:
            assert words in str(e), str(e)
        else:
            raise AssertionError(f"{check.__name__} let a wrong import through")


def test_a_wrong_workflow_import_is_named(tmp_path, monkeypatch):
    """The check itself: report importing matrix is caught, and so is a shared module importing a workflow."""
    import tests.test_layers as me
    (tmp_path / "otns" / "report").mkdir(parents=True)
    bad = tmp_path / "otns" / "report" / "bad.py"
    bad.write_text("from ..results.model import Verdict\nfrom ..matrix.runner import Plan\n")
    shared = tmp_path / "otns" / "options.py"
    shared.write_text("from .run import execute\n")
    monkeypatch.setattr(me, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(me, "_modules", lambda: [bad, shared])
    try:
        test_workflows_point_one_way()
    except AssertionError as e:
        assert "otns/report/bad.py:2: otns.report.bad imports otns.matrix.runner" in str(e), str(e)
        assert "otns/options.py:1: otns.options imports otns.run" in str(e), str(e)
        assert "bad.py:1" not in str(e), str(e)
    else:
        raise AssertionError("test_workflows_point_one_way let a wrong import through")
