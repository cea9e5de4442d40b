"""Effect handlers: subworkflows (filled in by issue 4)."""
