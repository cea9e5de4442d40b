"""Effect handlers: crm_actions (filled in by issue 4)."""
