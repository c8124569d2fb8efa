"""The conformance suite: runs inside the guest kernel (or on the host with --kernel host)."""
