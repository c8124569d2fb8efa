#!/usr/bin/env python3
"""Boot-to-verdict overhead: bare `vng --exec true` against `otns run`, same cached kernel.

Usage: .venv/bin/python scripts/bench.py [--kernel debian:latest] [--repeat 3]
Prints each timing, the medians and their ratio (goal: at most 1.3).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernels.spec import parse_spec  # noqa: E402
from otns.paths import REPO_ROOT, default_cache_dir  # noqa: E402
from otns.run import RunOptions, boot_request, resolve_kernel  # noqa: E402
from vm.boot import staged_vng  # noqa: E402


def timed(cmd: list[str], **kw) -> tuple[float, int]:
    start = time.monotonic()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw).returncode
    return time.monotonic() - start, rc


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel", default="debian:latest")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("-k", dest="keyword", default=None,
                    help="run only these tests (pytest -k), to see the pipeline's overhead apart from the suite's work")
    args = ap.parse_args()
    cache = default_cache_dir()
    opts = RunOptions(spec=parse_spec(args.kernel), cache_dir=cache, show_progress=False)
    kernel = resolve_kernel(opts, print)  # fetched now, so neither timing below includes a download
    with tempfile.TemporaryDirectory(dir=REPO_ROOT) as tmp:
        req = boot_request(opts, kernel, Path(tmp), print, None)
        accel = ["--disable-kvm"] if req.accel == "tcg" else []
        bare_cmd = ["vng", "-r", str(kernel.image), *accel, "--exec", "true"]
        otns_cmd = [sys.executable, "-m", "otns.cli", "--cache-dir", str(cache), "run", "--kernel", args.kernel,
                    "--results", str(Path(tmp) / "res")] + (["-k", args.keyword] if args.keyword else [])
        bare, ours = [], []
        for i in range(args.repeat):
            with staged_vng(bare_cmd, req) as (argv, env, cwd):
                t, rc = timed(argv, env=env, cwd=cwd)
            print(f"bare vng --exec true   run {i + 1}: {t:6.2f} s (exit {rc})")
            bare.append(t)
            t, rc = timed(otns_cmd, cwd=REPO_ROOT)
            summary = json.loads((Path(tmp) / "res" / "summary.json").read_text())
            d = summary["durations"]
            print(f"otns run               run {i + 1}: {t:6.2f} s (exit {rc}, {summary['verdict_line']}, "
                  f"{sum(summary['counts'].values())} tests; boot {d['boot']:.1f} s, suite {d['suite']:.1f} s)")
            if rc != 0:
                kept = Path(tempfile.mkdtemp(prefix="otns-bench-failed-"))
                shutil.copytree(Path(tmp) / "res", kept, dirs_exist_ok=True)
                print(f"  results of the failed run kept in {kept}")
            ours.append(t)
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"kernel {kernel.release}, accel {req.accel}")
    print(f"median bare {b:.2f} s, median otns run {o:.2f} s, ratio {o / b:.2f} (goal <= 1.3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
