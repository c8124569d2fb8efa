"""bisect --changed bisects between the very kernels two result folders ran, as summary.json
recorded them: not their spec strings again ("debian:X (amd64)" is no spec; debian:latest moves)."""
from __future__ import annotations

from pathlib import Path

import pytest

from base.errors import BadInput
from otns.bisect.hunt import Recorded, common_flavour, kernels_between, recorded_kernel
from otns.results.model import RunSummary


def _read(doc: dict) -> RunSummary:
    return RunSummary.from_json({"verdict": "CONFORMS", **doc})


def test_recorded_kernel_from_the_debian_record():
    summary = _read({"kernel": "debian:latest", "release": "7.2.13+deb14-cloud-amd64",
                     "debian": {"upstream": "7.2.13", "debian_version": "7.2.13-1", "flavour": "cloud",
                                "release": "7.2.13+deb14-cloud-amd64"}})
    assert recorded_kernel(Path("a"), summary) == Recorded(Path("a"), "7.2.13+deb14-cloud-amd64", "7.2.13-1", "cloud")


def test_recorded_kernel_of_a_folder_from_before_the_record():
    # summary.json as otns wrote it before the "debian" record: the spec string does not parse.
    summary = _read({"kernel": "debian:7.2.9 (amd64)", "release": "7.2.9+deb13-amd64",
                     "source": "debian 7.2.9-1~bpo13+1 amd64 (trixie-backports)"})
    assert recorded_kernel(Path("a"), summary) == Recorded(Path("a"), "7.2.9+deb13-amd64", "7.2.9-1~bpo13+1", "amd64")


@pytest.mark.parametrize("summary", [
    {"kernel": "/boot/vmlinuz-x", "release": "x", "source": "image /boot/vmlinuz-x"},
    {"kernel": "host", "release": "6.18.0", "source": "host"},
    {},
    {"debian": {"release": "7.2.13"}, "source": "debian 7.2.13-1"},
])
def test_not_a_debian_kernel(summary):
    with pytest.raises(BadInput, match="not run a Debian kernel"):
        recorded_kernel(Path("a"), _read(summary))


def test_flavours_must_agree():
    a = Recorded(Path("a"), "7.2.9+deb13-amd64", "7.2.9-1~bpo13+1", "amd64")
    b = Recorded(Path("b"), "7.2.12+deb13-amd64", "7.2.12-1~bpo13+1", "amd64")
    assert common_flavour([a, b], None) == "amd64"
    with pytest.raises(BadInput, match="--flavour cloud"):
        common_flavour([a, b], "cloud")
    with pytest.raises(BadInput, match="different flavours"):
        common_flavour([a, Recorded(Path("b"), "7.2.12+deb13-cloud-amd64", "7.2.12-1~bpo13+1", "cloud")], None)


def test_range_between_recorded_kernels_on_the_live_index(cache_dir):
    # The range ends at the recorded packages themselves, with everything between, in the
    # recorded flavour; a kernel the index no longer lists is a clear error.
    from kernels import catalog
    _, kernels = catalog.load(cache_dir, notice=lambda m: None)
    amd64 = [k for k in kernels if k.flavour == "amd64" and k.upstream in ("7.2.9", "7.2.12")]
    lo, hi = min(amd64, key=lambda k: k.version), max(amd64, key=lambda k: k.version)
    span = kernels_between(cache_dir, Recorded(Path("a"), lo.release, lo.debian_version, "amd64"),
                           Recorded(Path("b"), hi.release, hi.debian_version, "amd64"), "amd64", lambda m: None)
    assert span[0] == lo and span[-1] == hi and len(span) >= 3
    assert all(k.flavour == "amd64" and not k.release.endswith("-rt-amd64") for k in span)
    with pytest.raises(BadInput, match="no longer lists"):
        kernels_between(cache_dir, Recorded(Path("a"), "7.2.9+deb13-amd64", "7.2.9-0", "amd64"),
                        Recorded(Path("b"), hi.release, hi.debian_version, "amd64"), "amd64", lambda m: None)


def test_bisect_changed_reads_the_recorded_flavour(otns, tmp_path):
    # Two folders of generic (amd64) kernels, written by an otns before the "debian" record;
    # asking for the cloud flavour is refused, naming what the results ran.
    import json
    for name, ver, up in (("a", "7.2.9-1~bpo13+1", "7.2.9"), ("b", "7.2.12-1~bpo13+1", "7.2.12")):
        f = tmp_path / name
        f.mkdir()
        (f / "summary.json").write_text(json.dumps({
            "kernel": f"debian:{up} (amd64)", "release": f"{up}+deb13-amd64",
            "source": f"debian {ver} amd64 (trixie-backports)", "verdict": "CONFORMS"}))
    r = otns("bisect", "--changed", str(tmp_path / "a"), str(tmp_path / "b"), "--flavour", "cloud", results=False)
    assert r.code == 2 and "ran the amd64 flavour" in r.stderr, r.stderr


def test_an_unknown_recorded_flavour_is_named(otns, tmp_path):
    # It used to end in "--good and --bad name the same kernel": no kernel of that flavour is listed.
    import json
    for name, up in (("a", "7.2.9"), ("b", "7.2.12")):
        f = tmp_path / name
        f.mkdir()
        (f / "summary.json").write_text(json.dumps({
            "kernel": f"debian:{up}", "release": f"{up}+deb13-rt-amd64", "verdict": "CONFORMS",
            "debian": {"upstream": up, "debian_version": f"{up}-1", "flavour": "rt-amd64",
                       "release": f"{up}+deb13-rt-amd64"}}))
    r = otns("bisect", "--changed", str(tmp_path / "a"), str(tmp_path / "b"), results=False)
    assert r.code == 2 and "flavour 'rt-amd64'" in r.stderr and "same kernel" not in r.stderr, r.stderr


def test_swapped_ends_are_refused_before_any_boot(otns):
    # --good newer than --bad: one line naming both and the likely command, exit 2, nothing fetched
    # or booted (the index alone is read).
    r = otns("bisect", "conformance/test_core.py::test_target_must_be_directory", "--good", "debian:7.2.11",
             "--bad", "debian:7.2.6", results=False)
    assert r.code == 2 and "the ends look swapped: --good 7.2.11 is newer than --bad 7.2.6" in r.stderr, r.stderr
    assert "--find fix --good debian:7.2.6 --bad debian:7.2.11" in r.stderr and "Traceback" not in r.stderr
