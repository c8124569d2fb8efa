"""A results folder from elsewhere with hostile numbers and strings: `otns report`, `--kcidb` and
`otns diff` refuse bad numbers with one line (exit 2) and never print a terminal escape
sequence or write bare NaN or a NUL byte into KCIDB JSON."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import kcidb_io
import pytest

from .test_bad_input import assert_one_line_error

RECORDED = Path(__file__).parent / "data" / "results-7.3.4"


def _folder(tmp_path: Path, name: str, edit=None, summary_text: str | None = None, junit=None) -> Path:
    folder = shutil.copytree(RECORDED, tmp_path / name)
    if summary_text is None:
        doc = json.loads((folder / "summary.json").read_text())
        if edit:
            edit(doc)
        summary_text = json.dumps(doc)
    (folder / "summary.json").write_text(summary_text)
    if junit:
        (folder / "junit.xml").write_text(junit((folder / "junit.xml").read_text()))
    return folder


def _raw_total(value: str):
    """summary.json with durations.total spelled as given (JSON that Python's json reads)."""
    doc = json.loads((RECORDED / "summary.json").read_text())
    return json.dumps(doc).replace(f'"total": {json.dumps(doc["durations"]["total"])}', f'"total": {value}')


@pytest.mark.parametrize("total", ["1" + "0" * 400, "NaN", "Infinity", "-1", "1e300"])
def test_numbers_out_of_bounds_are_refused(otns, tmp_path, total):
    folder = _folder(tmp_path, "r", summary_text=_raw_total(total))
    for extra in ([], ["--kcidb", str(tmp_path / "k.json")]):
        r = otns("report", str(folder), "--out", str(tmp_path / "rep"), *extra, results=False)
        assert_one_line_error(r, 2, str(folder / "summary.json"), "durations.total")
    assert_one_line_error(otns("diff", str(folder), str(RECORDED), results=False), 2, "durations.total")


@pytest.mark.parametrize("counts", [{"pass": 1.5}, {"pass": -1}, {"pass": True}, {"pass": 10 ** 12}])
def test_counts_must_be_whole_and_bounded(otns, tmp_path, counts):
    folder = _folder(tmp_path, "r", lambda d: d.update(counts=counts))
    assert_one_line_error(otns("report", str(folder), "--out", str(tmp_path / "rep"), results=False), 2, "counts")


@pytest.mark.parametrize("time", ["nan", "inf", "-1", "1e400"])
def test_junit_times_must_be_seconds(otns, tmp_path, time):
    folder = _folder(tmp_path, "r", junit=lambda x: x.replace('time="0.021"', f'time="{time}"', 1))
    r = otns("report", str(folder), "--out", str(tmp_path / "rep"), "--kcidb", str(tmp_path / "k.json"),
             results=False)
    assert_one_line_error(r, 2, "junit.xml", "testcase time")


ESC = "\x1b]0;owned\x07\x1b[2J\x1b[31m"


def test_terminal_escapes_are_not_printed(otns, tmp_path):
    def hostile(doc: dict) -> None:
        doc.update(kernel=f"debian:{ESC}", release=f"7.3.4{ESC}\x00", verdict_line=f"CONFORMS {ESC}",
                   detail=f"{ESC}detail")
    # XML 1.0 allows no ESC, but it does allow C1 controls: U+009B is CSI, the 8-bit ESC [.
    folder = _folder(tmp_path, "r", hostile,
                     junit=lambda x: x.replace('name="test_unknown_flag_bit_is_einval[bit2]"', 'name="t\u009b2J"'))
    r = otns("diff", str(folder), str(RECORDED), results=False)
    assert r.code == 1 and not {"\x1b", "\x9b"} & set(r.stdout + r.stderr), r.stdout
    assert "\\x1b" in r.stdout and "t\\x9b2J" in r.stdout, r.stdout
    r = otns("report", str(folder), "--out", str(tmp_path / "rep"), "--kcidb", str(tmp_path / "k.json"),
             results=False)
    assert r.code == 0, r.stderr
    assert not {"\x1b", "\x07", "\x9b"} & set(r.stdout + r.stderr)
    assert "\x1b" not in (tmp_path / "rep" / "grid.md").read_text()
    text = (tmp_path / "k.json").read_text()
    data = json.loads(text)
    kcidb_io.schema.V5_3.validate(data)  # a NUL in release failed its patterns
    assert "\\u0000" not in text and "NaN" not in text and "Infinity" not in text
