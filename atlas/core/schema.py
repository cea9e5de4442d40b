"""The workflow definition format (workflowData) as a JSON Schema, published at /api/v2/schemas/workflow-definition.json."""

NODE_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$",
           "description": "Unique within the definition; referenced by edges and by templates as steps.<id>.output."}

WORKFLOW_DEFINITION_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "/api/v2/schemas/workflow-definition.json",
    "title": "Atlas workflow definition (workflowData)",
    "description": "Steps (nodes) joined by connectors (edges). The entry is the one node with no incoming edge. "
                   "A node's config is checked against its step type's configSchema (GET /api/v2/actions/definitions).",
    "type": "object",
    "required": ["schemaVersion", "nodes", "edges"],
    "additionalProperties": False,
    "properties": {
        "schemaVersion": {"const": 1},
        "nodes": {"type": "array", "maxItems": 500, "items": {
            "type": "object", "required": ["id", "type"], "additionalProperties": False,
            "properties": {
                "id": NODE_ID,
                "type": {"type": "string", "description": "A step type key, e.g. if_else, wait, send_sms."},
                "name": {"type": "string", "maxLength": 120},
                "config": {"type": "object"},
                "position": {"type": "object", "required": ["x", "y"], "additionalProperties": False,
                             "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                             "description": "Optional; the builder lays out a top-down flowchart without it."},
            }}},
        "edges": {"type": "array", "maxItems": 1000, "items": {
            "type": "object", "required": ["source", "target"], "additionalProperties": False,
            "properties": {
                "source": NODE_ID, "target": NODE_ID,
                "branch": {"type": "string", "maxLength": 40,
                           "description": "Which exit of a branching node: true/false (if_else), a split's "
                                          "branch names or default, an A/B variant, event/timeout (wait_for_event)."},
            }}},
    },
}
