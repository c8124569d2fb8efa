"""`otns bisect` and `bisect-run`: the search (search), Debian releases run and judged (hunt), a kernel
tree judged for git bisect (tree), and the likely cause (cause, rules)."""
