"""`otns matrix`: the suite on many kernels at once, one VM per pytest-xdist worker: the kernels
named (entries), the plan checked and the outcome (session), the runner (runner, plugin,
entry_test), longest runs first (order)."""
