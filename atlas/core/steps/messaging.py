"""Step types: messaging (issue 4)."""
