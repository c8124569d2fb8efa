"""Finding, fetching and preparing kernels: spec -> kernel on disk."""
