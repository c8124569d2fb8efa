"""What a fetch shows while it runs: the bytes of the kernel's packages on disk so far."""
from __future__ import annotations

from pathlib import Path


def test_downloaded_counts_the_bytes_on_disk(tmp_path: Path) -> None:
    from kernels.fetch import downloaded
    (tmp_path / "partial").mkdir()
    (tmp_path / "a.deb").write_bytes(b"x" * 1000)
    (tmp_path / "partial" / "b.deb").write_bytes(b"y" * 24)
    (tmp_path / "link").symlink_to("/etc/passwd")  # a link counts as itself, not what it names
    assert downloaded(tmp_path) == 1024 + len("/etc/passwd")
    assert downloaded(tmp_path / "absent") == 0
