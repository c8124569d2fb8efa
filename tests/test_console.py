"""Console parsing, on consoles recorded from real guests (Debian 7.3.4 cloud under TCG)."""
from __future__ import annotations

from pathlib import Path

from vm.console import crash_reports, is_crash, is_panic

DATA = Path(__file__).parent / "data"


def test_clean_boot_is_not_a_crash():
    text = (DATA / "console-clean.log").read_text()
    assert "Linux version" in text
    assert not is_crash(text) and crash_reports(text) == []


def test_panic_is_found_whole():
    text = (DATA / "console-panic.log").read_text()
    assert is_panic(text) and is_crash(text)
    (report,) = crash_reports(text)
    lines = report.splitlines()
    assert lines[0] == "Kernel panic - not syncing: sysrq triggered crash"
    assert "Call Trace:" in report and "sysrq_handle_crash" in report
    assert not any(line.startswith("[") for line in lines), "timestamps are stripped"


def test_truncated_panic_still_reported():
    text = (DATA / "console-panic.log").read_text()
    cut = text[: text.index("Call Trace:") + 20]  # the console died mid-report
    (report,) = crash_reports(cut)
    assert report.startswith("Kernel panic - not syncing")
    assert is_crash(cut)


def test_warning_alone_is_reported_but_not_a_crash():
    text = (DATA / "console-clean.log").read_text() + (
        "[   12.000000] WARNING: CPU: 1 PID: 99 at fs/namespace.c:1234 do_something+0x10/0x20\n"
        "[   12.000001] Call Trace:\n[   12.000002] ---[ end trace 0000000000000000 ]---\n")
    reports = crash_reports(text)
    assert len(reports) == 1 and reports[0].startswith("WARNING: CPU: 1")
    assert not is_crash(text)
