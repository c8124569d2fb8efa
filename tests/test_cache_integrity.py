"""A damaged kernel cache is found and fetched again, never booted nor a traceback: sizes and
SHA-256 recorded at fetch are checked on every use (a truncated vmlinuz gave COULD NOT BOOT on
every later run; a garbage, [] or {} meta.json gave tracebacks, even with --dry-run)."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from kernels import catalog, fetch
from kernels.debian import resolve

from .conftest import DEFAULT_SPEC, copy_truncated


@pytest.fixture
def cache(cache_dir: Path, cached_image: Path, tmp_path: Path):
    """A cache of its own holding a copy of the default kernel, sharing the tests' Debian index."""
    _, kernels = catalog.load(cache_dir, notice=lambda m: None)
    kernel = resolve(kernels, DEFAULT_SPEC.split(":", 1)[1], "cloud")
    mine = tmp_path / "cache"
    (mine / "kernels").mkdir(parents=True)
    (mine / "apt").symlink_to(cache_dir / "apt")
    folder = shutil.copytree(fetch.cached_folder(cache_dir, kernel), fetch.cached_folder(mine, kernel), symlinks=True)
    return mine, kernel, folder


def _meta(folder: Path) -> dict:
    return json.loads((folder / fetch.META).read_text())


def test_a_fetched_kernel_records_and_passes_its_check(cache):
    mine, kernel, folder = cache
    meta = _meta(folder)
    image = folder / meta["image"]
    if "files" in meta:  # fetched by this otns: the record matches the files
        assert meta["files"][meta["image"]]["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert fetch.damage(folder) in (None, fetch.OLDER) and fetch.is_cached(mine, kernel)


@pytest.mark.parametrize("text", ["garbage{", "[]", "{}", '{"image": "../../etc/passwd", "release": "x", "files": {}}'])
def test_a_bad_meta_json_is_damage_not_a_traceback(otns, cache, text):
    mine, kernel, folder = cache
    (folder / fetch.META).write_text(text)
    assert fetch.damage(folder) is not None and not fetch.is_cached(mine, kernel)
    r = otns("run", "--kernel", f"debian:{kernel.debian_version}", "--dry-run", cache=mine, results=False)
    assert r.code == 0 and "Traceback" not in r.stderr, r.stderr
    assert r.stdout.startswith(f"would fetch Debian {kernel.debian_version}"), r.stdout


def test_an_image_of_the_wrong_size_or_content_is_damage(cache):
    mine, kernel, folder = cache
    image = folder / _meta(folder)["image"]
    fetch.fetch(mine, catalog.PrivateApt(mine / "apt"), kernel, show_progress=False, notice=lambda m: None)  # record it
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0xFF
    image.write_bytes(bytes(data))
    assert "SHA-256 differs" in fetch.damage(folder)
    copy_truncated(image, image)
    assert "bytes" in fetch.damage(folder) and not fetch.is_cached(mine, kernel)


def test_an_older_cache_is_recorded_in_place_unless_its_image_is_cut(cache):
    mine, kernel, folder = cache
    meta = _meta(folder)
    meta.pop("files", None)
    (folder / fetch.META).write_text(json.dumps(meta))
    assert fetch.damage(folder) == fetch.OLDER and fetch.is_cached(mine, kernel)
    local = fetch.fetch(mine, catalog.PrivateApt(mine / "apt"), kernel, show_progress=False,
                        notice=lambda m: pytest.fail(f"fetched again: {m}"))
    assert "files" in _meta(folder) and fetch.damage(folder) is None and local.image == folder / meta["image"]
    (folder / fetch.META).write_text(json.dumps(meta))
    copy_truncated(folder / meta["image"], folder / meta["image"])
    assert "damaged" in fetch.damage(folder)


def test_a_truncated_image_is_fetched_again(cache):
    # A real fetch from Debian's archive (about 15 MB).
    mine, kernel, folder = cache
    image = folder / _meta(folder)["image"]
    size = image.stat().st_size
    copy_truncated(image, image)
    notices: list[str] = []
    local = fetch.fetch(mine, catalog.PrivateApt(mine / "apt"), kernel, show_progress=False, notice=notices.append)
    assert "damaged" in notices[0] and "fetching it again" in notices[0], notices
    # Then the fetch's own progress lines, the last with its size and time.
    assert all(n.startswith("otns: fetch") for n in notices[1:]) and notices[-1].startswith("otns: fetched "), notices
    assert local.image is not None and local.image.stat().st_size == size and fetch.damage(folder) is None
    assert [p.name for p in (mine / "kernels").iterdir() if p.name.startswith(".")] == [], "the damaged copy stayed"
