"""The bottom layer: errors and exit codes, files written atomically and read without trust,
and locks. It imports nothing of the project; every other package may import it."""
