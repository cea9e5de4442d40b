"""Use-cases: the only layer that touches both db.session and the core."""
