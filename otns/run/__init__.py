"""`otns run`: one kernel booted, the suite run in it, one results folder (execute); the host's
collection of the suite before a boot (preflight)."""
