"""Step types: integration (issue 4)."""
