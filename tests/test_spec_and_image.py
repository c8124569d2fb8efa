"""Kernel specs as typed, and the bzImage header check, on real files."""
from __future__ import annotations

from pathlib import Path

import pytest

from base.errors import BadInput
from kernels.image import inspect_image, read_config, root_transport
from kernels.spec import KernelSpec, parse_spec


@pytest.mark.parametrize("text, kind, value", [
    ("debian:latest", "debian", "latest"),
    ("debian:7.2", "debian", "7.2"),
    ("debian:7.0.12", "debian", "7.0.12"),
    ("debian:7.3-rc7", "debian", "7.3-rc7"),
    ("host", "host", ""),
])
def test_parse_spec(text, kind, value):
    s = parse_spec(text)
    assert (s.kind, s.value, s.flavour) == (kind, value, "cloud")


def test_flavour_is_checked():
    assert parse_spec("debian:7.2", "amd64").flavour == "amd64"
    with pytest.raises(BadInput, match="unknown flavour"):
        parse_spec("debian:7.2", "rt")


def test_paths(tmp_path):
    img = tmp_path / "vmlinuz"
    img.write_bytes(b"x")
    assert parse_spec(str(img)) == KernelSpec("image", str(img.resolve()))
    tree = tmp_path / "linux"
    (tree / "arch/x86/boot").mkdir(parents=True)
    (tree / "arch/x86/boot/bzImage").write_bytes(b"x")
    assert parse_spec(str(tree)).kind == "tree"
    with pytest.raises(BadInput, match="not a built kernel tree"):
        parse_spec(str(tmp_path / "linux" / "arch"))
    with pytest.raises(BadInput, match="kernel file not found"):
        parse_spec(str(tmp_path / "missing"))
    with pytest.raises(BadInput, match="unknown kernel spec"):
        parse_spec("not-a-release")


def test_real_image_header(cached_image: Path, tmp_path):
    info = inspect_image(cached_image)
    assert info.release and info.release in cached_image.as_posix()
    with pytest.raises(BadInput, match="truncated"):
        cut = tmp_path / "cut"
        cut.write_bytes(cached_image.read_bytes()[:100_000])
        inspect_image(cut)
    with pytest.raises(BadInput, match="not an x86 Linux kernel image"):
        inspect_image(Path("/etc/hostname"))
    with pytest.raises(BadInput, match="not found"):
        inspect_image(tmp_path / "nothing")


def test_transport_from_real_config(cached_image: Path):
    cfg = read_config(next(cached_image.parent.glob("config*")))
    assert root_transport(cfg, lambda m: False) == "virtiofs"  # the cloud flavour has it built in
    no_vfs = {k: v for k, v in cfg.items() if k not in ("CONFIG_VIRTIO_FS",)}
    with pytest.raises(BadInput, match="neither virtiofs"):
        root_transport(no_vfs, lambda m: False)
    as_9p = {**no_vfs, "CONFIG_9P_FS": "m", "CONFIG_NET_9P_VIRTIO": "m"}
    assert root_transport(as_9p, lambda m: m in ("9p", "9pnet_virtio")) == "9p"
    with pytest.raises(BadInput, match="neither"):
        root_transport(as_9p, lambda m: False)  # =m but the modules are not shipped
