"""The examples in docs/workflow-format.md are valid definitions (a doc that drifts from the code fails here)."""
import json
import re
from pathlib import Path

import jsonschema
import pytest

from atlas.core import steps
from atlas.core.definition import WorkflowDefinition
from atlas.core.schema import WORKFLOW_DEFINITION_SCHEMA
from atlas.core.validation import validate

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflow-format.md"
EXAMPLES = [json.loads(block) for block in re.findall(r"```json\n(\{\n  \"schemaVersion\".*?)\n```", DOC.read_text(),
                                                       re.S)]


def test_the_doc_has_both_examples():
    assert len(EXAMPLES) == 2


@pytest.mark.parametrize(("example", "trigger_type"), list(zip(EXAMPLES, ["lead_created", "class_missed"])),
                         ids=["lead-nurture", "missed-class-win-back"])
def test_each_example_is_valid(example, trigger_type):
    jsonschema.validate(example, WORKFLOW_DEFINITION_SCHEMA)
    registered = {t.key for t in steps.all_types()}
    assert {n["type"] for n in example["nodes"]} <= registered
    issues = validate(WorkflowDefinition.from_dict(example), trigger_type=trigger_type)
    assert [i for i in issues if i["severity"] == "error"] == []
