"""`otns matrix`: the suite on many kernels at once, one VM per pytest-xdist worker (runner, plugin,
entry_test; order: longest runs first)."""
