"""The oracle's hypothesis settings, loaded (load()) by the first module that needs hypothesis:
oracle_trees, which every oracle test module imports before its @given decorators run (they
read the settings then). Not in conftest: a run without the oracle's tests (a bisect step, a
fault's rule-named tests) never imports hypothesis, about 1.5 s of the guest's start under TCG.

A fixed seed (a failure is the same failure on the next run, and shrinks to the smallest tree),
few examples by default (the suite's time under TCG), more with `--otns-profile=deep` (CI;
conftest passes the choice in DEPTH_VARIABLE). Forked children and boots are slow: no deadline.
"""
from __future__ import annotations

import os
import tempfile

DEPTH_VARIABLE = "OTNS_ORACLE_PROFILE"  # "deep" or "default", set by conftest's pytest_configure


def load() -> None:
    # hypothesis writes nothing where the suite runs (in the guest the host's root is read-only):
    # its storage folder (read when first used, not at import) and no example database.
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                          os.path.join(tempfile.gettempdir(), f"otns-hypothesis-{os.getuid()}"))
    from hypothesis import HealthCheck, settings

    oracle = dict(derandomize=True, database=None, deadline=None, print_blob=False,
                  suppress_health_check=list(HealthCheck))
    settings.register_profile("otns", max_examples=2, **oracle)
    settings.register_profile("otns-deep", max_examples=40, **oracle)
    settings.load_profile("otns-deep" if os.environ.get(DEPTH_VARIABLE) == "deep" else "otns")
