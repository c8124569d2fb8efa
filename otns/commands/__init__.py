"""One module per otns command, each with add_parser(subparsers) and handle(args, cache_dir) -> exit code."""
from __future__ import annotations

from . import bench, bisect, bisect_run, build, coverage, diff, kernels, matrix, mutate, report, run, tests

# In the order `otns --help` lists them.
COMMANDS = {m.NAME: m for m in (run, tests, matrix, report, diff, bisect, build, bisect_run, mutate, coverage, bench, kernels)}
