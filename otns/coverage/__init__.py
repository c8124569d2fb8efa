"""`otns coverage`: the features' kernel functions' lines and branches the suite reaches (gcov)."""
