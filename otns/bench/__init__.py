"""`otns bench`: the timed C helper (nsbench.c) run in a VM (measure) and its samples reported
(report)."""
