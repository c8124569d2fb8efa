"""`otns mutate`: which faults (selection); one-rule kernel faults built, run and judged (mutator);
which tests guard which rules (rulemap)."""
