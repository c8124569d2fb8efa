"""What `--json` prints: a kernel's results as one JSON object, the same for `otns run`, `otns
matrix` and `otns diff`, read from a loaded results folder (scripts read this, not the terminal).

    {"kernel", "release", "source", "accel", "verdict" (a name: CONFORMS, NONCONFORMING, ...),
     "verdict_line", "counts", "durations", "features", "run_id", "started", "results" (the folder),
     "tests": [{"id", "outcome" (pass|fail|skip|error), "seconds", "rules", "fixes", "message"}]}
"""
from __future__ import annotations

from .files import KernelResults


def summary_json(k: KernelResults) -> dict:
    """The kernel's facts as summary.json holds them (a kernel that never finished: its name and
    what its state says); run_id and started where the run recorded them, features where judged."""
    s = k.summary
    if s is None:
        return {"kernel": k.name, "verdict": k.verdict.split(" (")[0], "verdict_line": k.verdict, "detail": ""}
    return {"kernel": s.kernel, "release": s.release, "source": s.source, "accel": s.accel, "verdict": s.verdict.name,
            "verdict_line": s.verdict_line(), "counts": s.counts, "durations": s.durations,
            **({"features": {f.name: f.to_json() for f in s.features}} if s.features else {}),
            **({"run_id": s.run_id} if s.run_id else {}), **({"started": s.started} if s.started else {}),
            "detail": s.detail}


def kernel_json(k: KernelResults, with_tests: bool = True) -> dict:
    doc = summary_json(k)
    doc["name"] = k.name
    doc["results"] = str(k.folder)
    if k.expect:
        doc["expect"] = k.expect
    if with_tests:
        doc["tests"] = [{"id": t.name, "outcome": t.outcome.value, "seconds": t.seconds, "rules": t.rules,
                         "fixes": t.fixes, "message": t.message} for t in k.tests.values()]
    return doc
