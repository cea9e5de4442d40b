"""Step types: crm (issue 4)."""
