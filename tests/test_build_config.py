"""The config `otns build` makes (no build): the fragment's groups, and what a tree's final .config
that lacks one of its options gives: a notice naming it, or a hard stop for one the guest needs."""
from __future__ import annotations

from pathlib import Path

import pytest

from kernels import build


def _tree_with_config(tmp_path: Path, drop: set[str]) -> Path:
    """A tree whose .config holds the whole fragment but the options in drop (as make writes them)."""
    lines = []
    for key, value in build.fragment().items():
        if key in drop or value == "n":
            lines.append(f"# {key} is not set")
        else:
            lines.append(f"{key}={value}")
    (tmp_path / ".config").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_required_options_are_ones_the_fragment_turns_on():
    want, must = build.fragment(), build.required()
    assert {"CONFIG_VIRTIO_PCI", "CONFIG_VIRTIO_CONSOLE", "CONFIG_VIRTIO_FS", "CONFIG_USER_NS",
            "CONFIG_NAMESPACES", "CONFIG_64BIT"} <= must
    assert all(want[k] == "y" for k in must)
    # 9p is the fallback, not a must: a tree without it still boots over virtiofs.
    assert "CONFIG_9P_FS" not in must and want["CONFIG_9P_FS"] == "y"


def test_a_whole_config_gives_no_notice(tmp_path, capsys):
    tree = _tree_with_config(tmp_path, set())
    build.check_config(tree, build._unmet(tree / ".config", build.fragment()))
    assert capsys.readouterr().err == ""


def test_a_missing_wanted_option_is_named_and_the_build_goes_on(tmp_path, capsys):
    tree = _tree_with_config(tmp_path, {"CONFIG_9P_FS", "CONFIG_TRACEFS_AUTOMOUNT_DEPRECATED"})
    (tree / ".config").write_text((tree / ".config").read_text().replace(
        "# CONFIG_TRACEFS_AUTOMOUNT_DEPRECATED is not set\n", ""))  # as if the Kconfig had no such option
    unmet = build._unmet(tree / ".config", build.fragment())
    assert sorted(unmet) == ["CONFIG_9P_FS", "CONFIG_TRACEFS_AUTOMOUNT_DEPRECATED"]
    build.check_config(tree, unmet)
    err = capsys.readouterr().err
    assert "CONFIG_9P_FS=y (it is not set)" in err
    assert "CONFIG_TRACEFS_AUTOMOUNT_DEPRECATED=y (not in this tree's Kconfig, or hidden" in err
    assert "[required]" not in err


def test_a_missing_required_option_stops_the_build(tmp_path, capsys):
    tree = _tree_with_config(tmp_path, {"CONFIG_VIRTIO_FS", "CONFIG_OVERLAY_FS"})
    with pytest.raises(build.BuildFailed, match="cannot work without CONFIG_VIRTIO_FS,") as e:
        build.check_config(tree, build._unmet(tree / ".config", build.fragment()))
    assert e.value.exit_code == 3
    assert "CONFIG_OVERLAY_FS" not in str(e.value)
    err = capsys.readouterr().err
    assert "CONFIG_VIRTIO_FS=y (it is not set)  [required]" in err and "CONFIG_OVERLAY_FS=y" in err


def test_a_disabled_option_that_is_on_counts_as_unmet(tmp_path):
    tree = _tree_with_config(tmp_path, set())
    (tree / ".config").write_text((tree / ".config").read_text().replace(
        "# CONFIG_MODULES is not set", "CONFIG_MODULES=y"))
    assert build._unmet(tree / ".config", build.fragment()) == ["CONFIG_MODULES"]
