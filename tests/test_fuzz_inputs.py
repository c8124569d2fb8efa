"""Property-based fuzzing (hypothesis) of the parsers of user-supplied input.

Kernel specs, Debian Packages index snippets, the CI.yml kernel list (otns matrix --from),
--shard, SPEC=EXPECT, --timeout/--cpus/--memory/-n, the test ids and summaries a bisect reads.
The invariant: a result or a clear BadInput (exit 2); never another exception, never a hang.
"""
from __future__ import annotations

import json
import signal
import string
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from base.errors import BadInput
from kernels.debian import FLAVOURS, UnknownVersion, parse_index, resolve
from kernels.spec import KernelSpec, parse_spec
from otns.cli import build_parser
from otns.matrix.entries import entries_from_ci, parse_entry
from otns.options import VmSettings, shard
from otns.results.plan import EXPECTATIONS, Entry

DATA = Path(__file__).parent / "data"
FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.function_scoped_fixture])
HANG_SECONDS = 10


@contextmanager
def no_hang(seconds: int = HANG_SECONDS):
    """Fail an example that runs longer than a parser ever should (a hang, not a slow machine)."""
    def _alarm(signum, frame):
        raise AssertionError(f"no answer within {seconds} s: a hang")
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@contextmanager
def result_or_bad_input():
    with no_hang():
        try:
            yield
        except BadInput as e:
            assert str(e) and "\n" not in str(e).strip(), repr(str(e))


RECORDED = {p.stem: p.read_text() for p in DATA.glob("*.Packages")}
KERNELS = parse_index(RECORDED)
versions = st.from_regex(r"\A[0-9]{1,2}(\.[0-9]{1,3}){0,2}(-rc[0-9])?\Z")
odd_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60) | st.text(max_size=60)


# Kernel specs: debian:VERSION, paths, release names, anything.
@FUZZ
@given(text=odd_text | st.builds(lambda v: f"debian:{v}", versions | odd_text),
       flavour=st.sampled_from(FLAVOURS) | st.text(max_size=10))
@example(text="debian:7.2.13 (amd64)", flavour="cloud")
@example(text="\x00", flavour="cloud")
@example(text="~no_such_user_otns/vmlinuz", flavour="cloud")
@example(text="debian:\n", flavour="amd64")
def test_kernel_specs(text, flavour):
    with result_or_bad_input():
        spec = parse_spec(text, flavour)
        assert isinstance(spec, KernelSpec)
        if spec.kind == "debian":
            try:
                k = resolve(KERNELS, spec.value, spec.flavour)
            except UnknownVersion as e:  # the CLI turns it into BadInput
                raise BadInput(str(e)) from None
            assert k.flavour == spec.flavour


# Debian Packages index snippets: recorded stanzas with fields changed, dropped or garbled.
FIELDS = ("Package", "Version", "Installed-Size", "Size", "Filename", "Depends")
package_names = st.builds(lambda kind, abi, flav: f"linux-{kind}-{abi}-{flav}",
                          st.sampled_from(["image", "binary", "modules", "base", "headers"]),
                          st.from_regex(r"\A[0-9]\.[0-9]{1,2}[\w.+~-]{0,12}\Z") | odd_text,
                          st.sampled_from(["amd64", "cloud-amd64", "rt-amd64", "amd64-unsigned", "arm64", ""]))
field_values = (st.text(alphabet=string.printable, max_size=30) | st.integers(-10**12, 10**12).map(str)
                | st.sampled_from(["", " ", "7.2.13-1", "1:2.3~rc4-5+b6", "x-", "-1", "9" * 40, "0"]))


@st.composite
def stanzas(draw):
    base = draw(st.sampled_from([s for text in RECORDED.values() for s in text.split("\n\n")
                                 if s.startswith("Package: linux-")]))
    lines = base.splitlines()
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["set", "drop", "name", "garble", "fold"]))
        if action == "set":
            lines.append(f"{draw(st.sampled_from(FIELDS))}: {draw(field_values)}")
        elif action == "drop" and lines:
            lines.pop(draw(st.integers(0, len(lines) - 1)))
        elif action == "name":
            lines = [f"Package: {draw(package_names)}"] + [ln for ln in lines if not ln.startswith("Package:")]
        elif action == "garble":
            lines.append(draw(st.text(max_size=40)))
        else:
            lines.append(" " + draw(st.text(alphabet=string.printable, max_size=20)))
    return "\n".join(lines)


@FUZZ
@given(chunks=st.lists(stanzas(), max_size=6), noise=st.text(max_size=200))
def test_packages_index_snippets(chunks, noise):
    with result_or_bad_input():
        kernels = parse_index({"sid": "\n\n".join(chunks), "noise": noise})
        for k in kernels:
            assert k.flavour in FLAVOURS and k.release.endswith(("-amd64",)) and "-rt-" not in k.release
            resolve(kernels, k.debian_version, k.flavour)  # each kernel found by its own version


# The kernel list of a workflow file (otns matrix --from CI.yml).
yaml_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
yaml_values = st.recursive(yaml_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10) | st.integers(), inner, max_size=4), max_leaves=20)
include_items = st.lists(st.fixed_dictionaries({}, optional={
    "kernel": yaml_scalars | versions.map(lambda v: f"debian:{v}"),
    "expect": yaml_scalars | st.sampled_from(list(EXPECTATIONS)),
    "flavour": yaml_scalars | st.sampled_from(FLAVOURS)}) | yaml_values, max_size=5)
ci_docs = (st.builds(lambda inc: {"jobs": {"conformance": {"strategy": {"matrix": {"include": inc}}}}},
                     include_items | yaml_values) | yaml_values)


@FUZZ
@given(doc=ci_docs, raw=st.none() | st.text(max_size=200))
@example(doc=None, raw="jobs: [")
@example(doc=None, raw="\x00")
def test_ci_yml_kernel_list(tmp_path_factory, doc, raw):
    path = tmp_path_factory.mktemp("ci") / "CI.yml"
    if raw is not None:
        path.write_bytes(raw.encode("utf-8", "surrogatepass"))
    else:
        path.write_text(yaml.safe_dump(doc))
    with result_or_bad_input():
        entries = entries_from_ci(path)
        for e in entries:
            assert isinstance(e, Entry) and isinstance(e.kernel, str)
            assert e.expect in EXPECTATIONS and e.flavour in FLAVOURS


@FUZZ
@given(text=odd_text | st.builds(lambda i, n: f"{i}/{n}", st.integers(-5, 10**20), st.integers(-5, 10**20)),
       n=st.integers(0, 12))
def test_shard(text, n):
    entries = [Entry(f"debian:7.{i}") for i in range(n)]
    with result_or_bad_input():
        part = shard(entries, text)
        assert all(e in entries for e in part)


@FUZZ
@given(text=odd_text | st.builds(lambda s, e: f"{s}={e}", odd_text, odd_text))
def test_spec_with_expectation(text):
    with result_or_bad_input():
        e = parse_entry(text)
        assert e.expect in EXPECTATIONS


# --timeout, --cpus, --memory, -n as typed on the command line: argparse's own error (exit 2)
# or the shared checks' BadInput.
numberish = (st.floats(allow_nan=True, allow_infinity=True).map(repr) | st.integers(-10**30, 10**30).map(str)
             | st.sampled_from(["nan", "inf", "-inf", "NaN", "1e400", "-0", "0x10", "1_000", " 5", "", "½"]) | odd_text)


@FUZZ
@given(timeout=numberish, cpus=numberish, memory=numberish | st.sampled_from(["1G", "512M", "1K", "-5G", "abc"]))
def test_run_options(timeout, cpus, memory):
    argv = ["run", f"--timeout={timeout}", f"--cpus={cpus}", f"--memory={memory}"]
    with result_or_bad_input():
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:
            assert e.code == 2
            return
        VmSettings(cpus=args.cpus, memory=args.memory, timeout=args.timeout)
        assert 0 < args.timeout < float("inf") and 1 <= args.cpus <= 64


@FUZZ
@given(workers=numberish, timeout=numberish, cpus=numberish)
def test_matrix_options(workers, timeout, cpus):
    from otns.options import check_cpus, check_timeout, check_workers
    with result_or_bad_input():
        try:
            args = build_parser().parse_args(["matrix", "debian:7.2", f"-n={workers}", f"--timeout={timeout}",
                                              f"--cpus={cpus}"])
        except SystemExit as e:
            assert e.code == 2
            return
        check_workers(args.workers)
        check_timeout(args.timeout)
        check_cpus(args.cpus)
        assert args.workers >= 1


# What bisect --changed reads of a result folder's summary.json.
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=12)


@FUZZ
@given(summary=st.dictionaries(st.sampled_from(["kernel", "release", "source", "debian"]), json_values)
       | st.fixed_dictionaries({"debian": st.dictionaries(
           st.sampled_from(["release", "debian_version", "flavour", "upstream"]), json_values)}))
def test_recorded_kernel_of_a_summary(summary):
    from otns.bisect.hunt import Recorded, recorded_kernel
    from otns.results.model import RunSummary
    with result_or_bad_input():
        rec = recorded_kernel(Path("r"), RunSummary.from_json({"verdict": "CONFORMS", **summary}))
        assert isinstance(rec, Recorded) and isinstance(rec.release, str) and isinstance(rec.flavour, str)


@FUZZ
@given(output=st.text(max_size=400))
def test_pytest_usage_message(output):
    from otns.run.preflight import usage_message
    with no_hang():
        msg = usage_message(output)
    assert isinstance(msg, str) and msg


@FUZZ
@given(content=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_remembered_boot_times(tmp_path_factory, content):
    from vm import boot_times
    cache = tmp_path_factory.mktemp("bt")
    (cache / boot_times.FILE).write_bytes(content)
    with no_hang():
        boot_times.describe(cache, "tcg")
        boot_times.remember(cache, "tcg", 9.5)
        assert boot_times.typical(cache, "tcg")[1] >= 1


@pytest.mark.parametrize("test_id", ["", "-x", "--co", "conformance/../../etc/passwd", "conformance/test_core.py::"])
def test_odd_test_ids_are_bad_input(test_id):
    from otns.run.preflight import check_test_ids
    with pytest.raises(BadInput):
        check_test_ids([test_id])
