"""otns: a conformance suite for Linux OPEN_TREE_NAMESPACE."""
