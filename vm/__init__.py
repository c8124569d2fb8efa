"""Booting a kernel with virtme-ng and getting results out."""
