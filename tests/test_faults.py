"""The fault table of `otns mutate` (no boot): every fault cites a rule of docs/semantics.md and
applies exactly once to Debian's 7.2.13 source; applying and restoring never leave a fault behind."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from base.errors import BadInput
from kernels import faults
from kernels.faults import Fault, NotApplicable
from otns.bisect import rules
from otns.mutate.mutator import CAUGHT, CRASHED, HARNESS, NO_BOOT, SURVIVED, classify, kernel_version
from otns.paths import REPO_ROOT, default_cache_dir
from otns.results.model import RunSummary, Verdict

SOURCE_VERSION = "7.2.13"
TABLE = faults.load()


def test_every_fault_cites_a_rule_of_the_semantics():
    known = rules.load()
    assert not [f.id for f in TABLE if f.rule not in known]


def test_every_rule_has_a_fault_or_a_reason_for_none():
    known = rules.load()
    covered = {f.rule for f in TABLE}
    reasons = faults.without_fault()
    assert not set(reasons) - set(known), "a reason for a rule that does not exist"
    assert not covered & set(reasons), "a rule with a fault needs no reason for having none"
    assert not [r for r in known if r not in covered and r not in reasons]


def _source_files(cache: Path, fetch_tarball) -> dict[str, str]:
    """Debian's 7.2 source files the faults edit: from OTNS_LINUX_SOURCE (an unpacked tree), a
    tree `otns build` unpacked into the tests' cache or the user's (only read), or the tarball
    from either (fetched into the tests' cache when neither has it; slower: read as a stream)."""
    wanted = sorted({f.file for f in TABLE})
    caches = [cache, default_cache_dir()]
    trees = [Path(os.environ["OTNS_LINUX_SOURCE"])] if os.environ.get("OTNS_LINUX_SOURCE") else []
    for c in caches:
        trees += sorted(c.glob("trees/linux-source-7.2/*/")) + sorted(c.glob("trees/linux-source-7.2/"))
    for tree in trees:
        if all((tree / w).is_file() for w in wanted) and kernel_version(tree) == SOURCE_VERSION:
            return {w: faults.pristine_text(tree, w) for w in wanted}
    cached = [t for c in caches if (t := c / "sources" / "linux-source-7.2.tar.xz").is_file()]
    tarball = cached[0] if cached else fetch_tarball()
    # Reading the tarball as a stream takes ~20 s: keep the few files in the tests' cache, once.
    kept = cache / "sources" / f"{tarball.name}.fault-files.json"
    kept.parent.mkdir(parents=True, exist_ok=True)
    if kept.is_file() and kept.stat().st_mtime >= tarball.stat().st_mtime:
        files = json.loads(kept.read_text())
        if set(wanted) <= set(files):
            return files
    got: dict[str, str] = {}
    with tarfile.open(tarball, "r|xz") as tf:
        for member in tf:
            rel = member.name.split("/", 1)[-1]
            if rel in wanted or rel == "Makefile":
                got[rel] = tf.extractfile(member).read().decode(errors="surrogateescape")
                if len(got) == len(wanted) + 1:
                    break
    makefile = got.pop("Makefile", "")
    assert f"SUBLEVEL = {SOURCE_VERSION.split('.')[2]}" in makefile, "the cached tarball is not 7.2.13"
    tmp = kept.with_name(kept.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(got, ensure_ascii=False))
    tmp.replace(kept)
    return got


@pytest.fixture(scope="module")
def source(request: pytest.FixtureRequest, cache_dir: Path) -> dict[str, str]:
    # On a fresh machine the tarball is fetched once (tests/conftest.py): never a skip for want of it.
    return _source_files(cache_dir, lambda: request.getfixturevalue("linux_source"))


@pytest.mark.parametrize("fault", TABLE, ids=[f.id for f in TABLE])
def test_fault_applies_exactly_once_to_the_pristine_source(source, fault: Fault):
    text = source[fault.file]
    assert text.count(fault.find) == 1, f"{fault.id}: the text to replace occurs {text.count(fault.find)} times"
    assert faults.mutated_text(fault, text) != text


def _tree(tmp_path: Path) -> tuple[Path, Fault]:
    tree = tmp_path / "linux"
    (tree / "fs").mkdir(parents=True)
    (tree / "fs" / "namespace.c").write_text("int a;\nint check(void) { return -EINVAL; }\n")
    (tree / "fs" / "namespace.o").write_text("object of the pristine file")
    return tree, Fault("t-drop-check", "OT-DIR", "fs/namespace.c", "return -EINVAL;", "return 0;", "test")


def test_applied_puts_the_file_back_even_on_an_exception(tmp_path):
    tree, fault = _tree(tmp_path)
    target = tree / fault.file
    before = target.read_text()
    os.utime(target, (1, 1))
    with pytest.raises(KeyboardInterrupt):
        with faults.applied(tree, fault):
            assert "return 0;" in target.read_text()
            assert (tree / "fs" / ("namespace.c" + faults.PRISTINE_SUFFIX)).is_file()
            raise KeyboardInterrupt
    assert target.read_text() == before
    assert target.stat().st_mtime > 1, "the restored file must look changed to make"
    assert not (tree / "fs" / "namespace.o").exists(), "the fault's object must not survive"
    assert not list(tree.rglob("*" + faults.PRISTINE_SUFFIX))


def test_a_fault_that_does_not_apply_changes_nothing(tmp_path):
    tree, fault = _tree(tmp_path)
    target = tree / fault.file
    before = target.read_text()
    for bad in (Fault("x", "OT-DIR", fault.file, "not there", "y", "t"),
                Fault("x", "OT-DIR", fault.file, "int", "y", "t"),  # twice
                Fault("x", "OT-DIR", "fs/absent.c", "a", "b", "t")):
        with pytest.raises(NotApplicable):
            with faults.applied(tree, bad):
                pass
    assert target.read_text() == before and (tree / "fs" / "namespace.o").exists()


def test_restore_undoes_what_a_killed_run_left(tmp_path):
    tree, fault = _tree(tmp_path)
    target = tree / fault.file
    before = target.read_text()
    # A run killed while its fault is in the tree: a process that never leaves the block.
    code = ("import os, sys; from kernels import faults; from pathlib import Path\n"
            "f = faults.Fault(*sys.argv[2:])\n"
            "with faults.applied(Path(sys.argv[1]), f):\n    os._exit(9)\n")
    r = subprocess.run([sys.executable, "-c", code, str(tree), *(getattr(fault, k) for k in faults.KEYS)],
                       cwd=REPO_ROOT)
    assert r.returncode == 9
    assert target.read_text() != before
    assert faults.pristine_text(tree, fault.file) == before
    assert faults.restore(tree, [fault]) == [fault.file]
    assert target.read_text() == before
    assert faults.restore(tree, [fault]) == []


def test_select_by_id_and_by_rule():
    assert [f.id for f in faults.select(TABLE, "ot-non-directory-accepted")] == ["ot-non-directory-accepted"]
    by_rule = faults.select(TABLE, "OT-CAP")
    assert len(by_rule) >= 2 and {f.rule for f in by_rule} == {"OT-CAP"}
    picked = faults.select(TABLE, "ot-always-recursive,OT-CAP,ot-always-recursive")
    assert [f.id for f in picked] == ["ot-always-recursive", *(f.id for f in by_rule)]  # as named, once each
    with pytest.raises(BadInput, match="no-such"):
        faults.select(TABLE, "OT-CAP,no-such")


def test_malformed_tables_are_refused(tmp_path):
    p = tmp_path / "f.toml"
    row = 'rule = "OT-DIR"\nfile = "{file}"\nfind = "a"\nreplace = "b"\nwhy = "w"\n'
    p.write_text('[[fault]]\nid = "x"\n' + row.format(file="../etc/passwd"))
    with pytest.raises(ValueError, match="outside the tree"):
        faults.load(p)
    p.write_text(('[[fault]]\nid = "x"\n' + row.format(file="fs/a.c")) * 2)
    with pytest.raises(ValueError, match="duplicate"):
        faults.load(p)


def _summary(verdict: Verdict, present: bool | None = True, detail: str = "") -> RunSummary:
    return RunSummary("tree", "7.2.13", "tree", "tcg", verdict, {}, {}, present, detail)


BASE = {"a": "pass", "b": "pass", "c": "skip"}


@pytest.mark.parametrize("verdict, tests, present, status, by", [
    (Verdict.NONCONFORMING, {"a": "fail", "b": "pass", "c": "skip"}, True, CAUGHT, ["a"]),
    (Verdict.CONFORMS, dict(BASE), True, SURVIVED, []),
    (Verdict.NONCONFORMING, {"a": "pass", "b": "pass", "c": "fail"}, True, SURVIVED, []),  # c never passed
    (Verdict.FEATURE_ABSENT, {"a": "skip", "b": "skip", "c": "skip"}, False, CAUGHT, []),
    (Verdict.HARNESS_ERROR, {"a": "error", "b": "pass", "c": "skip"}, True, HARNESS, []),
    (Verdict.CRASHED, {}, None, CRASHED, []),
    (Verdict.NO_BOOT, {}, None, NO_BOOT, []),
])
def test_classify_against_the_baseline(verdict, tests, present, status, by):
    got, caught_by, _ = classify(_summary(verdict, present), tests, BASE, True)
    assert (got, caught_by) == (status, by)


def test_a_newly_skipping_test_is_named_but_not_a_catch():
    got, _, detail = classify(_summary(Verdict.CONFORMS), {"a": "skip", "b": "pass", "c": "skip"}, BASE, True)
    assert got == SURVIVED and "a" in detail and "skip" in detail


def test_cli_lists_the_faults(otns):
    r = otns("mutate", "--list", results=False, env={"COLUMNS": "300"})
    assert r.code == 0, r.stderr
    assert all(f.id in r.stdout for f in TABLE)


@pytest.mark.parametrize("args, says", [
    (["mutate", "/nonexistent/linux"], "no such kernel tree"),
    (["mutate", "--faults", "ot-dir,NO-SUCH", "--list"], "no such fault or rule: ot-dir, NO-SUCH"),
    (["mutate", "--list", "--table", "/nonexistent.toml"], "No such file"),
])
def test_cli_bad_input_is_one_line_and_exit_2(otns, args, says, tmp_path):
    r = otns(*args, cache=tmp_path, results=False)
    assert r.code == 2 and says in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_faulty_kernel_must_carry_its_fault(tmp_path):
    """mutate judges a kernel only when the edited file's object was compiled after the edit
    and differs from the pristine one; a byte-identical object is an equivalent fault."""
    from otns.mutate.mutator import EQUIVALENT, NOT_APPLIED, carries
    fault = Fault("x", "OT-DIR", "fs/namespace.c", "a", "b", "t")
    obj = tmp_path / "fs" / "namespace.o"
    obj.parent.mkdir()
    obj.write_bytes(b"pristine object")
    import hashlib
    pristine = {"fs/namespace.o": hashlib.sha256(b"pristine object").hexdigest()}
    old = obj.stat().st_mtime_ns
    edited = old + 1_000_000_000  # the edit came after the object was written: not recompiled
    status, why = carries(tmp_path, fault, edited, pristine)
    assert status == HARNESS and "not compiled again" in why
    status, why = carries(tmp_path, fault, old - 1, pristine)  # recompiled, the same bytes
    assert status == EQUIVALENT and "byte for byte" in why
    obj.write_bytes(b"faulty object")
    assert carries(tmp_path, fault, old - 1, pristine) is None
    obj.unlink()
    assert carries(tmp_path, fault, old - 1, pristine)[0] == NOT_APPLIED
    # a header has no object of its own: the image's proof is all there is
    assert carries(tmp_path, Fault("x", "OT-DIR", "include/linux/mount.h", "a", "b", "t"), edited, pristine) is None
