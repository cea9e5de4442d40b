"""Effect handlers: messaging (filled in by issue 4)."""
