"""`otns report` and `otns diff`: results folders as a grid (grid), its rows (rows), the HTML page
(page) and KCIDB JSON (kcidb)."""
