"""`otns bisect` and `bisect-run`: one bisect (session), the search (search), Debian releases run
and judged (hunt), a kernel tree judged for git bisect (tree), and the likely cause (cause, rules)."""
