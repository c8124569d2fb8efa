"""Faults generated from the code (kernels/mutants.py) and the C parser under them (no boot):
each operator on small C snippets, ids, uniqueness and line keeping; the function list against
Debian's 7.2 source when it is on this machine."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from kernels import coverage, csource, faults, mutants
from otns.paths import REPO_ROOT, default_cache_dir

from .conftest import cache_for_tests

SNIPPET = b"""\
#include <linux/fs.h>

static int check(unsigned int flags, int n)
{
\tint mask = A_FLAG | B_FLAG |
\t\t   C_FLAG;

\tif (flags & ~mask)
\t\treturn -EINVAL;
\tif (n < 3 && flags)
\t\treturn -EPERM;
\tdo_something(flags);
\tif (!n)
\t\tgoto out;
\treturn 0;
out:
\tcleanup();
\treturn 1;
}

SYSCALL_DEFINE2(frob, int, a, unsigned int, b)
{
\treturn check(b, a);
}
"""


def write(tmp_path: Path, text: bytes = SNIPPET) -> tuple[Path, list[coverage.FeatureFile]]:
    (tmp_path / "fs").mkdir()
    (tmp_path / "fs" / "frob.c").write_bytes(text)
    return tmp_path, [coverage.FeatureFile("fs/frob.c", ("check", "sys_frob"))]


def by_op(fs: list[faults.Fault]) -> dict[str, list[faults.Fault]]:
    out: dict[str, list[faults.Fault]] = {}
    for f in fs:
        out.setdefault(f.operator, []).append(f)
    return out


def apply(text: bytes, fault: faults.Fault) -> str:
    return faults.mutated_text(fault, text.decode())


def test_functions_and_syscalls_are_found():
    fns = csource.functions_of(SNIPPET)
    assert set(fns) == {"check", "sys_frob"}
    assert (fns["check"].start_line, fns["check"].end_line) == (3, 19)
    assert (fns["sys_frob"].start_line, fns["sys_frob"].end_line) == (21, 24)


def test_every_operator_makes_its_fault(tmp_path):
    tree, files = write(tmp_path)
    ops = by_op(mutants.generate(tree, files))
    assert set(ops) == set(mutants.OPERATORS)
    text = SNIPPET
    negated = {apply(text, f).splitlines()[f.line - 1].strip() for f in ops["negate"]}
    assert "if (!(flags & ~mask))" in negated and "if (!(n < 3 && flags))" in negated
    assert {apply(text, f).splitlines()[9].strip() for f in ops["operand"]} == {"if (n < 3)", "if (flags)"}
    masks = {"".join(apply(text, f).splitlines()[4:6]).split("=")[1].replace(" ", "") for f in ops["flag"]}
    assert masks == {"B_FLAG|C_FLAG;", "A_FLAG|C_FLAG;", "A_FLAG|B_FLAG;"}
    assert any("\t;" in apply(text, f).splitlines()[11] for f in ops["statement"])  # do_something(flags)
    assert any(apply(text, f).splitlines()[13].strip() == ";" for f in ops["statement"])  # the goto
    assert {apply(text, f).splitlines()[f.line - 1].strip() for f in ops["return"]} >= {";"}
    assert {apply(text, f).splitlines()[8].strip() for f in ops["errno"] if f.line == 9} == {"return -EPERM;"}
    assert {apply(text, f).splitlines()[9].strip() for f in ops["boundary"]} == {"if (n <= 3 && flags)"}
    swapped = apply(text, ops["swap"][0]).splitlines()
    assert swapped[7].strip() == "if (n < 3 && flags)" and swapped[9].strip() == "if (flags & ~mask)"


def test_every_fault_keeps_the_line_count_applies_once_and_has_a_stable_id(tmp_path):
    tree, files = write(tmp_path)
    generated = mutants.generate(tree, files)
    again = mutants.generate(tree, files)
    assert [f.id for f in generated] == [f.id for f in again]
    assert len({f.id for f in generated}) == len(generated)
    for f in generated:
        assert f.id.startswith("auto-") and len(f.id) <= 64 and f.rule == "AUTO"
        mutated = apply(SNIPPET, f)  # NotApplicable unless its text occurs exactly once
        assert mutated != SNIPPET.decode() and mutated.count("\n") == SNIPPET.decode().count("\n")
    # The ids name the function, line and operator
    assert "auto-check-8-negate" in {f.id for f in generated}


def test_a_repeated_line_is_made_unique_with_the_lines_before_it(tmp_path):
    text = SNIPPET.replace(b"\tif (!n)\n\t\tgoto out;\n", b"\tif (!n)\n\t\treturn -EINVAL;\n")
    tree, files = write(tmp_path, text)
    errnos = [f for f in mutants.generate(tree, files) if f.operator == "errno"]
    assert len(errnos) == 3
    for f in errnos:
        assert text.decode().count(f.find) == 1


def _source_tree() -> Path | None:
    # The tests' own cache first: on CI's fresh machine the boot tier has unpacked the source there
    # by the time this runs; the user's cache is read as well, never written.
    for c in (cache_for_tests(), default_cache_dir()):
        for tree in sorted(c.glob("trees/linux-source-7.2/linux-source-7.2")):
            if (tree / "fs" / "namespace.c").is_file():
                return tree
    return None


def test_feature_code_names_functions_of_debians_7_2_source():
    tree = _source_tree()
    if tree is None:
        pytest.skip("Debian's 7.2 source is not unpacked in the tests' cache or the user's (otns build debian-source:7.2)")
    files = coverage.feature_code()
    for f in files:
        found = csource.functions_of((tree / f.path).read_bytes())
        assert not [n for n in f.functions if n not in found], f.path
    generated = mutants.generate(tree, files)
    assert len(generated) >= 200
    text = {f.path: (tree / f.path).read_text(errors="surrogateescape") for f in files}
    assert all(text[f.file].count(f.find) == 1 for f in generated)


def test_feature_code_is_well_formed():
    data = tomllib.loads((REPO_ROOT / "kernels" / "feature_code.toml").read_text())
    assert {f["path"] for f in data["file"]} == {"fs/namespace.c", "fs/nsfs.c", "kernel/fork.c", "kernel/nsproxy.c"}
    assert coverage.profile_args(coverage.feature_code()) == [
        "GCOV_PROFILE_fork.o=y", "GCOV_PROFILE_namespace.o=y", "GCOV_PROFILE_nsfs.o=y", "GCOV_PROFILE_nsproxy.o=y"]


def test_the_tests_a_fault_meets_first():
    """mutate runs the tests that name a fault's rule first; for a generated fault, the rules whose
    implementation (conformance/rules.py) is the function it breaks."""
    from otns.mutate import rulemap
    from vm.guest import CONFORMANCE, pytest_args
    by_rule = rulemap.tests_by_rule()
    assert "conformance/test_core.py::test_target_must_be_directory" in by_rule["OT-DIR"]
    assert all(t.startswith("conformance/test_") and "::" in t for ts in by_rule.values() for t in ts)
    assert "FM-FLAGS-UNKNOWN" in rulemap.rules_of_function("fs/namespace.c", "sys_fsmount")
    assert "OT-DIR" in rulemap.rules_of_function("fs/namespace.c", "create_new_namespace")
    assert rulemap.rules_of_function("fs/namespace.c", "no_such_function") == []
    # The guest takes a file of test ids (@FILE) as a selection: it does not add the whole suite.
    assert str(CONFORMANCE) not in pytest_args(Path("/r"), ["-x", "@/run/otns-results/tests.args"])
    assert str(CONFORMANCE) in pytest_args(Path("/r"), ["-x"])


def test_checks_that_leave_the_same_way_are_not_swapped(tmp_path):
    text = SNIPPET.replace(b"\t\treturn -EPERM;\n", b"\t\treturn -EINVAL;\n")
    tree, files = write(tmp_path, text)
    assert not [f for f in mutants.generate(tree, files) if f.operator == "swap"]
