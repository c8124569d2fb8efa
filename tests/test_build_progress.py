"""otns build's progress: the objects make compiled, counted from its log as it grows."""
from __future__ import annotations

from pathlib import Path

from otns.commands.build import compiled


def test_counts_only_compiled_objects(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_text("  SYNC    include/config/auto.conf\n  CC      fs/namespace.o\n  CC      kernel/fork.o\n"
                   "  AR      fs/built-in.a\n  LD      vmlinux\n  CC      arch/x86/boot/a20.o\n"
                   "  CC [M]  not/an/object\nwarning:   CC  x.o  in a message\n")
    assert compiled(log) == 3
    assert compiled(tmp_path / "absent.log") == 0
