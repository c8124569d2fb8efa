"""kernels.resolve: one way from a spec to a kernel, on indexes recorded from Debian's archive
(tests/data/*.Packages) and an empty cache: plan() fetches nothing, and the index is read once."""
from __future__ import annotations

from pathlib import Path

import pytest

from base.errors import BadInput
from kernels import catalog
from kernels.debian import parse_index
from kernels.resolve import Resolver, identity, plan
from kernels.spec import KernelSpec, Kind, label, parse_spec

DATA = Path(__file__).parent / "data"


@pytest.fixture
def loads(monkeypatch) -> list[Path]:
    """catalog.load answering from the recorded indexes; the list records each call."""
    kernels = parse_index({p.stem: p.read_text() for p in DATA.glob("*.Packages")})
    calls: list[Path] = []

    def load(cache_dir, notice=print, **_):
        calls.append(cache_dir)
        return None, kernels
    monkeypatch.setattr(catalog, "load", load)
    return calls


def test_a_debian_spec_plans_its_package_without_fetching(tmp_path, loads):
    planned = plan(parse_spec("debian:7.2.13"), tmp_path, print)
    assert planned.debian is not None and planned.debian.upstream == "7.2.13" and planned.debian.flavour == "cloud"
    assert planned.kernel is None and planned.to_fetch
    assert not (tmp_path / "kernels").exists()  # nothing fetched, nothing made
    assert identity(planned.debian)["debian_version"] == planned.debian.debian_version


def test_the_index_is_read_once_for_many_specs(tmp_path, loads):
    resolver = Resolver(tmp_path, print)
    picked = [resolver.plan(parse_spec(s, f)).debian for s, f in
              (("debian:7.2", "cloud"), ("debian:7.2.13", "amd64"), ("debian:latest", "cloud"))]
    assert len(loads) == 1 and all(picked)


def test_an_unknown_version_is_one_line_of_bad_input(tmp_path, loads):
    with pytest.raises(BadInput, match=r"no Debian kernel matches version '9\.9\.9'"):
        Resolver(tmp_path, print).debian(parse_spec("debian:9.9.9"))


def test_a_local_spec_needs_no_index(tmp_path, loads):
    planned = plan(parse_spec("host"), tmp_path, print)
    assert planned.kernel is not None and planned.kernel.is_host and planned.debian is None and not planned.to_fetch
    assert loads == []


def test_the_kind_is_an_enum_and_the_label_names_a_flavour_only_when_not_the_default():
    assert parse_spec("host").kind is Kind.HOST and KernelSpec("debian", "7.2").kind is Kind.DEBIAN
    with pytest.raises(ValueError):
        KernelSpec("floppy", "")
    assert str(parse_spec("debian:7.2")) == label("debian:7.2", "cloud") == "debian:7.2"
    assert str(parse_spec("debian:7.2", "amd64")) == label("debian:7.2", "amd64") == "debian:7.2 (amd64)"
