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


def test_bench_says_which_size_and_method_it_is_at() -> None:
    from otns.bench.measure import where_now
    assert where_now("#cpus 1\n") == ""
    assert where_now("#cpus 1\n#mounts 30 30\n") == "bench: 30 mounts"
    text = "#cpus 1\n#mounts 30 30\nunshare,30,1,0,0,375\n#mounts 1000 1000\nunshare,1000,1,0,0,8568\n" \
           "open_tree,1000,1,0,0,120\n"
    assert where_now(text) == "bench: 1000 mounts, method open_tree, 3 samples so far"
