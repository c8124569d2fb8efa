"""pytest plugins that tests/ load into the guest's pytest (-p) to make a guest misbehave."""
