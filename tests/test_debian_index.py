"""Index parsing and version ordering, on stanzas recorded from Debian's archive (2026-11-27)."""
from __future__ import annotations

from pathlib import Path

import pytest

from kernels.debian import UnknownVersion, nearby_versions, parse_index, resolve, upstream_key, upstream_version

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def kernels():
    indexes = {p.stem: p.read_text() for p in DATA.glob("*.Packages")}
    return parse_index(indexes)


@pytest.mark.parametrize("debian, upstream", [
    ("7.2.13-1", "7.2.13"),
    ("7.3~rc7-1~exp1", "7.3-rc7"),
    ("6.12.43-1~bpo12+1", "6.12.43"),
    ("6.1.192-2", "6.1.192"),
    ("7.0.12-2~bpo13+1", "7.0.12"),
])
def test_upstream_version(debian, upstream):
    assert upstream_version(debian) == upstream


def test_rc_sorts_before_release():
    order = ["6.19.14", "7.0.4", "7.0.12", "7.3-rc7", "7.3", "7.3.4"]
    assert sorted(reversed(order), key=upstream_key) == order


def test_parse_finds_both_layouts_and_skips_metapackages(kernels):
    by = {(k.upstream, k.flavour): k for k in kernels}
    # split layout: the empty linux-image is not a kernel; linux-binary is
    k = by[("7.2.13", "cloud")]
    assert k.layout == "split" and k.kernel_pkg.name == "linux-binary-7.2.13+deb14-cloud-amd64"
    assert k.base_pkg and k.base_pkg.name == "linux-base-7.2.13+deb14-cloud-amd64"
    assert k.release == "7.2.13+deb14-cloud-amd64"
    # old layout: one package
    old = by[("6.1.192", "cloud")]
    assert old.layout == "image" and old.kernel_pkg.name == "linux-image-6.1.0-56-cloud-amd64"
    # the linux-image-6.12-amd64 metapackage is not a kernel
    assert not any(k.abi == "6.12" for k in kernels)
    # experimental's release candidate
    rc = by[("7.3-rc7", "cloud")]
    assert rc.release == "7.3-cloud-amd64" and rc.suites == ["experimental"]


def test_downloads_only_what_the_guest_needs(kernels):
    by = {(k.upstream, k.flavour): k for k in kernels}
    cloud = by[("7.2.13", "cloud")]
    assert [p.name for p in cloud.packages()] == ["linux-binary-7.2.13+deb14-cloud-amd64",
                                                  "linux-base-7.2.13+deb14-cloud-amd64"]
    generic = by[("7.2.13", "amd64")]
    assert "linux-modules-7.2.13+deb14-amd64" in [p.name for p in generic.packages()]
    # 6.19/7.0 backports ship a kernel with no base or modules package
    assert [p.name for p in by[("6.19.14", "cloud")].packages()] == ["linux-binary-6.19.14+deb13-cloud-amd64"]


@pytest.mark.parametrize("query, expected", [
    ("latest", "7.3-rc7"),  # the newest in this snippet (a 7.3.x release would beat it)
    ("7.0", "7.0.12"),
    ("7.0.4", "7.0.4"),
    ("7.3-rc7", "7.3-rc7"),
    ("6.1", "6.1.192"),
])
def test_resolve(kernels, query, expected):
    assert resolve(kernels, query, "cloud").upstream == expected


def test_unknown_version_names_neighbours(kernels):
    with pytest.raises(UnknownVersion) as e:
        resolve(kernels, "7.0.5", "cloud")
    assert e.value.near == ["6.12.117", "6.19.14", "7.0.4", "7.0.12", "7.2.13", "7.3-rc7"]
    assert "7.0.4" in str(e.value) and "7.0.12" in str(e.value)


def test_nearby_of_garbage_is_newest(kernels):
    assert nearby_versions([k for k in kernels if k.flavour == "cloud"], "banana")[-1] == "7.3-rc7"


def test_json_round_trip(kernels):
    from kernels.debian import DebianKernel
    for k in kernels:
        assert DebianKernel.from_json(k.to_json()) == k


def test_preempt_rt_kernels_are_left_out(kernels):
    # The recorded files hold the -rt-amd64 packages of 7.2.13 (sid) and 6.1.0-56
    # (bookworm-security), recorded 2026-11-28, beside the generic ones.
    assert not any("rt" in k.abi.split("-") or k.kernel_pkg.name.endswith("-rt-amd64") for k in kernels)
    by = {(k.upstream, k.flavour): k for k in kernels}
    generic = by[("7.2.13", "amd64")]
    assert generic.abi == "7.2.13+deb14" and generic.release == "7.2.13+deb14-amd64"
    assert [p.name for p in generic.packages()] == ["linux-binary-7.2.13+deb14-amd64", "linux-base-7.2.13+deb14-amd64",
                                                    "linux-modules-7.2.13+deb14-amd64"]
    old = by[("6.1.192", "amd64")]
    assert old.kernel_pkg.name == "linux-image-6.1.0-56-amd64" and old.release == "6.1.0-56-amd64"
    assert sum(k.flavour == "amd64" for k in kernels) == 2


def test_an_exact_package_version_resolves_to_that_package(kernels):
    assert resolve(kernels, "7.0.12-2~bpo13+1", "cloud").debian_version == "7.0.12-2~bpo13+1"
    for k in kernels:
        assert resolve(kernels, k.debian_version, k.flavour) is k


def test_kernels_list_amd64_shows_generic_kernels(otns):
    r = otns("kernels", "list", "--flavour", "amd64", results=False)
    assert r.code == 0, r.stderr
    assert "-rt" not in r.stdout
    assert "7.2.13+deb14-amd64" in r.stdout, "the generic kernel of sid is missing"
