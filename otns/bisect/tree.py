"""One step of `git bisect run` in a kernel tree: build the commit checked out, boot it, run one
test, judge it good (old behaviour), bad (new behaviour) or skip (it cannot be tested)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from base import cachedir
from base.errors import EXIT_BISECT_SKIP, EXIT_NOT_AS_EXPECTED, EXIT_OK
from kernels.spec import parse_spec

from ..options import VmSettings
from ..results.files import read_tests
from ..results.model import Outcome
from ..run.execute import RunOptions, execute
from .search import BAD, GOOD, SKIP, judge_outcome


@dataclass(frozen=True)
class TreeStep:
    judged: str  # GOOD | BAD | SKIP
    release: str = ""
    seen: str = ""  # the test's outcome, or the run's verdict line when the test has none
    error: str = ""  # why the commit could not be tested at all (judged SKIP)

    @property
    def exit_code(self) -> int:
        """git bisect run's contract: 0 good, 1 bad, 125 skip."""
        return {GOOD: EXIT_OK, BAD: EXIT_NOT_AS_EXPECTED}.get(self.judged, EXIT_BISECT_SKIP)


def judge_tree(tree: Path, cache_dir: Path, test: str, good: set[str], bad: set[str], vm: VmSettings,
               build_first: bool, notice: Callable[[str], object], stream: Callable[[str], object]) -> TreeStep:
    """Anything unexpected (a build that fails, a boot that breaks, a bug here) is a skip:
    git bisect run must never see an exit code of 126-255 by accident."""
    from kernels import build

    try:
        tree = build.find_tree(tree, cache_dir)
        if build_first:
            build.build(tree, cache_dir)
        opts = RunOptions(spec=parse_spec(str(tree)), cache_dir=cache_dir, results=cache_dir / cachedir.BISECT_RUN / tree.name,
                          vm=vm, pytest_args=["--color=no", test], show_progress=False)
        summary, folder = execute(opts, notice, stream)
        got = {t.name: t for t in read_tests(folder) or []}.get(test)
        judged = judge_outcome(got.outcome.value if got else None, summary.verdict, good, bad)
        if got is not None and got.outcome is Outcome.SKIP and "lacks" in got.message and "skip" not in bad:
            judged = SKIP  # the kernel lacks the feature: not the question being asked
        return TreeStep(judged, summary.release, got.outcome.value if got else summary.verdict_line())
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - see the docstring
        return TreeStep(SKIP, error=str(e))
