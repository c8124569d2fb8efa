"""Loaded with -p in the guest: a guest that turns the shared results folder against the host.

After pytest has written its files (unconfigure runs after the JUnit and feature files are
written), it replaces them and the names the host writes next with links out of the folder,
fifos, device nodes, a set-uid file, a folder, and (with --hostile-junit=huge) a sparse
10 GB junit.xml. The host must write nothing outside the folder, never block, and still
end with a verdict.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .guard import require_guest

HUGE = 10 * 1024 ** 3


def pytest_addoption(parser) -> None:
    parser.addoption("--hostile-junit", default="link", choices=("link", "huge"))
    parser.addoption("--hostile-outside", default="/tmp", help="a host folder the links point into")


def _replace(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        os.rmdir(path)
    elif os.path.lexists(path):
        os.unlink(path)


def pytest_unconfigure(config) -> None:
    if config.option.collectonly:
        return  # otns checks the arguments on the host by collecting first: act only in a real run
    require_guest("plant links and device nodes in the results folder")
    junit = Path(config.option.xmlpath)
    results = junit.parent
    outside = Path(config.getoption("--hostile-outside"))  # where a host that follows links would write
    for name in ("summary.json.tmp", "ktap.txt", "crash.txt", "console-tail.txt", "ktap.txt.tmp"):
        _replace(results / name)
        os.symlink(outside / f"hostile-{name}", results / name)
    _replace(results / "junit.xml")
    if config.getoption("--hostile-junit") == "huge":
        with open(results / "junit.xml", "wb") as f:
            f.truncate(HUGE)  # sparse: no disk used, but reading it all would take 10 GB of memory
    else:
        os.symlink("/etc/shadow", results / "junit.xml")
    _replace(results / "features.json")
    os.mkfifo(results / "features.json")  # a host that opens it to read blocks forever
    os.mkfifo(results / "console.log.fifo")
    for name, kind, dev in (("disk", stat.S_IFBLK, (8, 0)), ("null", stat.S_IFCHR, (1, 3))):
        try:  # the host's first disk, for anyone
            os.mknod(results / name, 0o666 | kind, os.makedev(*dev))
        except PermissionError:
            pass  # the share refuses device nodes (vm.virtiofsd): the rest is planted all the same
    suid = results / "suid"
    suid.write_text("#!/bin/sh\nid\n")
    os.chmod(suid, 0o4777)
    (results / "summary.json").mkdir()  # the host's next file, as a folder
    (results / "summary.json" / "inside").write_text("x")
    print("otns-test: hostile files planted", flush=True)
