"""VmSettings: the one type for the machine a kernel boots in, and the options that make it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from base.errors import BadInput
from otns.cli import build_parser
from otns.commands.common import vm_settings
from otns.options import VmSettings
from otns.results.plan import Entry, Plan


@pytest.mark.parametrize("fields, words", [
    ({"accel": "xen"}, "unknown --accel 'xen'"),
    ({"cpus": 0}, "--cpus takes a whole number from 1 to 64"),
    ({"timeout": float("nan")}, "--timeout takes a number of seconds"),
    ({"memory": "lots"}, "memory"),
])
def test_settings_that_cannot_boot_are_refused_when_made(fields, words):
    with pytest.raises(BadInput, match=words):
        VmSettings(**fields)


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        VmSettings().timeout = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("argv, expected", [
    (["run"], VmSettings()),
    (["run", "--cpus", "3", "--memory", "2G", "--timeout", "9", "--accel", "tcg"],
     VmSettings(cpus=3, memory="2G", timeout=9.0, accel="tcg")),
    (["matrix", "debian:7.2", "--timeout", "60"], VmSettings(timeout=60.0)),
    (["bench"], VmSettings(cpus=2, memory="2G", timeout=1800.0)),
    (["coverage"], VmSettings(timeout=600.0)),
    (["mutate"], VmSettings()),
    (["bisect", "x"], VmSettings()),
    (["bisect-run", "x", "--timeout", "5"], VmSettings(timeout=5.0)),
])
def test_each_command_builds_its_settings_from_one_set_of_options(argv, expected):
    assert vm_settings(build_parser().parse_args(argv)) == expected


def test_a_command_without_the_machine_options_has_none(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["mutate", "--cpus", "2"])
    assert "unrecognized arguments: --cpus" in capsys.readouterr().err


def test_the_plan_keeps_its_settings_through_plan_json():
    plan = Plan(entries=[Entry("debian:7.2", "conform")], out=Path("/o"), cache_dir=Path("/c"),
                vm=VmSettings(cpus=2, memory="3G", timeout=42.0, accel="tcg"), pytest_args=["-k", "x"], order=[0])
    doc = plan.to_json()
    assert {k: doc[k] for k in ("cpus", "memory", "timeout", "accel")} == {"cpus": 2, "memory": "3G",
                                                                            "timeout": 42.0, "accel": "tcg"}
    assert Plan.from_json(doc) == plan
