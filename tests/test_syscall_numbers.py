"""conformance/syscalls.py's numbers, per machine, against the host's own kernel headers (Debian's
linux-libc-dev): a number the headers define must be the same; one newer than them is checked by
the guest's tests alone (a wrong one gives ENOSYS or another call's error there)."""
from __future__ import annotations

import platform
import re
from pathlib import Path

import pytest

from conformance import syscalls

HEADER = Path("/usr/include") / f"{platform.machine()}-linux-gnu" / "asm" / "unistd_64.h"


def test_every_machine_has_every_name():
    for machine, own in syscalls.NUMBERS_BY_MACHINE.items():
        assert set(own) == set(syscalls.NUMBERS_BY_MACHINE["x86_64"]), machine
        assert not set(own) & set(syscalls.SHARED_NUMBERS), machine
    with pytest.raises(KeyError, match="no syscall numbers for machine 'pdp11'"):
        syscalls.numbers("pdp11")


@pytest.mark.skipif(not HEADER.is_file(), reason=f"no {HEADER} (linux-libc-dev) to check against")
def test_the_numbers_are_the_kernel_headers():
    defined = {m[1]: int(m[2]) for m in re.finditer(r"^#define __NR_(\w+) (\d+)$", HEADER.read_text(), re.M)}
    ours = syscalls.numbers(platform.machine())
    checked = {name: n for name, n in ours.items() if name in defined}
    assert checked == {name: defined[name] for name in checked}
    assert set(syscalls.NUMBERS_BY_MACHINE[platform.machine()]) <= set(checked)  # the old ones, all of them
