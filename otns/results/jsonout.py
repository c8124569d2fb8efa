"""What `--json` prints: a kernel's results as one JSON object, the same for `otns run`, `otns
matrix` and `otns diff`, read from a loaded results folder (scripts read this, not the terminal).

    {"kernel", "release", "source", "accel", "verdict" (a name: CONFORMS, NONCONFORMING, ...),
     "verdict_line", "counts", "durations", "features", "run_id", "started", "results" (the folder),
     "tests": [{"id", "outcome" (pass|fail|skip|error), "seconds", "rules", "fixes", "message"}]}
"""
from __future__ import annotations

from .files import KernelResults

SUMMARY_KEYS = ("kernel", "release", "source", "accel", "verdict", "verdict_line", "counts", "durations",
                "features", "run_id", "started", "detail")


def kernel_json(k: KernelResults, with_tests: bool = True) -> dict:
    doc = {key: k.summary[key] for key in SUMMARY_KEYS if key in k.summary}
    doc["name"] = k.name
    doc["results"] = str(k.folder)
    if k.expect:
        doc["expect"] = k.expect
    if with_tests:
        doc["tests"] = [{"id": t.name, "outcome": t.outcome.value, "seconds": t.seconds, "rules": t.rules,
                         "fixes": t.fixes, "message": t.message} for t in k.tests.values()]
    return doc
