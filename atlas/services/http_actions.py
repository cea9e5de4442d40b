"""Effect handlers: http_actions (filled in by issue 4)."""
