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


def test_no_acpi_and_the_cpus_come_from_the_mp_table():
    # otns's guest init ends with reboot(2) under -no-reboot: ACPI is no longer needed to stop
    # the guest, so it is left out, and SMP finds the CPUs in SeaBIOS's MP table instead.
    want = build.fragment()
    assert "CONFIG_ACPI" not in want
    assert want["CONFIG_SMP"] == want["CONFIG_X86_MPPARSE"] == "y"
    # The serial console and PCI work without ACPI (legacy ports, configuration mechanism 1).
    assert {"CONFIG_SERIAL_8250_CONSOLE", "CONFIG_PCI"} <= build.required()


def test_expert_keeps_what_the_guest_needs():
    # EXPERT lets allnoconfig drop io_uring, the block layer and the VT; it would drop these
    # too, which the guest's init, the suite (/proc/sys) and Python need.
    want, must = build.fragment(), build.required()
    assert want["CONFIG_EXPERT"] == "y" and "CONFIG_EXPERT" not in must
    assert {"CONFIG_SYSCTL", "CONFIG_PROC_SYSCTL", "CONFIG_POSIX_TIMERS", "CONFIG_FILE_LOCKING"} <= must
    # Dropped by leaving them out, never by "is not set": a user's own .config keeps them.
    assert not {"CONFIG_IO_URING", "CONFIG_BLOCK", "CONFIG_VT", "CONFIG_ACPI"} & set(want)


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


def _fake_tree(tmp_path: Path) -> Path:
    """A tree whose `make allnoconfig` writes the fragment itself as .config (what the real one gives 7.2)."""
    tree = tmp_path / "linux"
    tree.mkdir()
    (tree / "Makefile").write_text("allnoconfig:\n\tcp $(KCONFIG_ALLCONFIG) .config\n")
    return tree


def _ensure(tree: Path, own: bool) -> list[str]:
    import os
    with open(tree.parent / "build.log", "w") as log:
        return build.ensure_config(tree, dict(os.environ), log, own=own)


def test_own_tree_with_a_config_from_an_older_fragment_is_configured_anew(tmp_path):
    tree = _fake_tree(tmp_path)
    (tree / ".config").write_text("CONFIG_MODULES=y\n")  # an older otns's config: no stamp
    assert _ensure(tree, own=True) == []
    assert (tree / ".config").read_text() == build.FRAGMENT.read_text()
    assert (tree / ".config.old").read_text() == "CONFIG_MODULES=y\n"
    stamped = (tree / build.STAMP).read_text()
    # The next build of the same tree leaves its config alone: nothing to rebuild.
    before = (tree / ".config").stat().st_mtime_ns
    assert _ensure(tree, own=True) == []
    assert (tree / ".config").stat().st_mtime_ns == before and (tree / build.STAMP).read_text() == stamped


def test_a_users_own_config_is_kept(tmp_path):
    tree = _fake_tree(tmp_path)
    mine = build.FRAGMENT.read_text() + "CONFIG_EXT4_FS=y\n"
    (tree / ".config").write_text(mine)
    assert _ensure(tree, own=False) == []
    assert (tree / ".config").read_text() == mine and not (tree / build.STAMP).exists()


def test_two_builds_of_one_tree_take_turns(tmp_path, monkeypatch):
    # Two makes in one tree overwrite each other's objects: the second build waits for the first.
    import threading
    started = threading.Event()

    def fake_build(*args, **kwargs):
        started.set()
        return "built"
    monkeypatch.setattr(build, "_build", fake_build)
    results = []
    with build.tree_locked(tmp_path):
        t = threading.Thread(target=lambda: results.append(build.build(tmp_path, tmp_path / "cache")), daemon=True)
        t.start()
        assert not started.wait(0.5), "a second build began while the tree was being built"
    t.join(10)
    assert started.is_set() and results == ["built"]
