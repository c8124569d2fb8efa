"""Which faults an `otns mutate` applies: the hand-written table (kernels/faults.toml, or another)
or the faults generated from the tree's code, then --faults, --sample and --shard."""
from __future__ import annotations

from pathlib import Path

from base.errors import BadInput
from kernels import faults, mutants
from kernels.coverage import feature_code
from kernels.faults import Fault

from ..options import shard
from .mutator import sample


def table(path: Path | None) -> list[Fault]:
    """The fault table at path (the project's own when None); BadInput, one line, when it cannot be read."""
    if path is None:
        return faults.load()
    try:
        return faults.load(path)
    except (OSError, ValueError) as e:
        msg = str(e)
        raise BadInput(msg if str(path) in msg else f"cannot read the fault table {path}: {msg}") from None


def choose(tree: Path | None, auto: bool, path: Path | None, only: str | None, n: int | None, seed: int,
           shard_spec: str | None) -> list[Fault]:
    """The faults to apply, in order; BadInput when the shard is empty. With auto, the faults are
    generated from the tree's code (path, the table, is not read)."""
    listed = mutants.generate(tree, feature_code()) if tree is not None and auto else table(path)
    chosen = shard(sample(faults.select(listed, only), n, seed), shard_spec)
    if not chosen:
        raise BadInput(f"shard {shard_spec} of the selected faults is empty")
    return chosen
