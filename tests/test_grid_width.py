"""Terminal grids keep every test id whole at any terminal width (a folded id pasted into
`otns bisect` is no id): a table where it fits, a list where it does not."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from otns.report.grid import load_folder, terminal_grid
from otns.report.rows import Section, rows

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("width", [60, 80, 120, 140, 200, 400])
def test_every_shown_id_is_whole_on_one_line(width: int) -> None:
    kernels = [load_folder(DATA / "results-7.0.4"), load_folder(DATA / "run-7.3.4")]
    shown = [r.test for r in rows(kernels) if r.section in (Section.FAILURES, Section.DIFFERENCES)]
    assert any(len(t) > 110 for t in shown)  # the long parametrized id of test_subdir.py is among them
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    console.print(terminal_grid(kernels, console.width), crop=False)
    lines = out.getvalue().splitlines()
    for test in shown:
        assert any(test in ln for ln in lines), f"{test} is not whole at {width} columns"
