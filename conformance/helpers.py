"""Helpers for checks that must not disturb the test process: run them in a child."""
from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Callable


def in_child(fn: Callable[[], object]) -> object:
    """Run fn in a forked child (so setns, setuid, unshare stay there) and return its result.

    An exception in the child is re-raised in the parent as AssertionError with its text.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            payload = ("ok", fn())
        except BaseException as e:  # report everything, including assertion failures
            payload = ("err", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        try:
            data = pickle.dumps(payload)
        except Exception as e:
            data = pickle.dumps(("err", f"unpicklable result: {e}"))
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise AssertionError(f"child died without a result (wait status {status})")
    kind, value = pickle.loads(data)
    if kind == "err":
        raise AssertionError(value)
    return value
