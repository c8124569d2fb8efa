"""`otns run`: one kernel booted, the suite run in it, one results folder (execute); the verdict
(judge); the host's checks and collection of the suite before a boot (preflight)."""
