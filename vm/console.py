"""Read a guest's kernel console: did it panic or oops, and what did the kernel say?"""
from __future__ import annotations

import re

# Lines that start a kernel report worth stopping for.
_CRASH_START = re.compile(
    r"(Kernel panic - not syncing|BUG: |Oops: |general protection fault|"
    r"WARNING: CPU: \d+ PID: \d+|Unable to handle kernel|kernel BUG at|"
    r"watchdog: BUG: soft lockup|INFO: task .{1,80}? blocked for more than)"  # bounded: linear on any line
)
_PANIC = re.compile(r"Kernel panic - not syncing")
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_END_MARK = re.compile(r"(---\[ end (Kernel panic|trace) )")


def strip_timestamp(line: str) -> str:
    return _TIMESTAMP.sub("", line)


def is_panic(console: str) -> bool:
    return bool(_PANIC.search(console))


def crash_reports(console: str, max_lines: int = 80) -> list[str]:
    """The kernel's oops/panic/BUG reports found in a console log, each as one text block."""
    lines = console.splitlines()
    reports, i = [], 0
    while i < len(lines):
        if _CRASH_START.search(lines[i]):
            block = [strip_timestamp(lines[i])]
            j = i + 1
            while j < len(lines) and len(block) < max_lines:
                block.append(strip_timestamp(lines[j]))
                if _END_MARK.search(lines[j]):
                    j += 1
                    break
                j += 1
            reports.append("\n".join(block))
            i = j
        else:
            i += 1
    return reports


def is_crash(console: str) -> bool:
    """A panic, oops or BUG means the kernel is broken, whatever the tests said.

    Warnings alone (WARNING: CPU:) are reported but do not make the run a crash.
    """
    return any(not r.startswith("WARNING:") for r in crash_reports(console))


def tail(text: str, n: int = 40) -> str:
    return "\n".join(text.splitlines()[-n:])


# The kernel's first words: `Linux version RELEASE (USER@HOST) (COMPILER) #BUILD ... DATE`.
_BANNER = re.compile(r"^(?:\[\s*\d+\.\d+\]\s?)?(Linux version \S+ .{1,900})$", re.MULTILINE)


def booted_banner(console: str) -> str | None:
    """The version banner the booted kernel printed (its build number and link time), if it did."""
    m = _BANNER.search(console)
    return m[1].rstrip() if m else None
