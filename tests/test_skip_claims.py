"""A test in conformance/ skips for a missing kernel feature only through the checked claim
(conftest.py's needs_feature, fed by probe.py), never on an errno it saw itself: on a kernel
that has the feature, that errno is a bug the skip would hide."""
from __future__ import annotations

import ast
from pathlib import Path

from conformance.features import BY_NAME
from conformance.probe import PROBES
from otns.paths import REPO_ROOT

CONFORMANCE = REPO_ROOT / "conformance"
# What a kernel without a flag or syscall answers.
ABSENCE_ERRNOS = ("EINVAL", "ENOSYS", "EOPNOTSUPP", "ENOTSUP")


def _calls(nodes: list[ast.stmt], name: str) -> bool:
    return any(isinstance(n, ast.Call) and ast.unparse(n.func).endswith(name)
               for stmt in nodes for n in ast.walk(stmt))


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(CONFORMANCE.glob("*.py"))]


def test_no_skip_on_an_errno_the_test_saw():
    bad = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.If):
                cond = ast.unparse(node.test)
                # an errno may excuse a skip only together with the kernel's version
                if any(e in cond for e in ABSENCE_ERRNOS) and "version" not in cond and _calls(node.body, "skip"):
                    bad.append(f"{path.name}:{node.lineno}: skips on {cond}")
            elif isinstance(node, ast.ExceptHandler) and any(
                    isinstance(s, ast.Expr) and _calls([s], "skip") for s in node.body):
                bad.append(f"{path.name}:{node.lineno}: skips on any exception")
    assert not bad, "skip only through needs_feature (probe.py's checked claim): " + "; ".join(bad)


def test_needs_feature_names_a_probe_or_a_feature():
    known = set(PROBES) | set(BY_NAME)
    used = set()
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("needs_feature"):
                arg = node.args[0]
                assert isinstance(arg, ast.Constant) and arg.value in known, f"{path.name}:{node.lineno}"
                used.add(arg.value)
    assert used, "no test uses needs_feature?"
