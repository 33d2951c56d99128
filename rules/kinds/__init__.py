"""Rule kinds: each a class reading model items and emitting signals (see `base.Rule`)."""
