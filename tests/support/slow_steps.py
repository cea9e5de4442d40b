"""Test-only step types, loaded the way a gym's own steps are: ATLAS_STEP_MODULES=tests.support.slow_steps.

`test_sleep` sleeps config.seconds. It declares side effects, so the engine checkpoints before it, which makes a run
reliably mid-flight while it sleeps. When config.journal names a file, it appends a line there as it starts and as
it ends ("start <node> <idempotency key> <pid>"), so a test can count how often each node really ran, and where.
"""
import os
import time

from atlas.core.steps import register
from atlas.core.steps.base import Continue, StepContext, StepType


def note(journal: str | None, event: str, ctx: StepContext) -> None:
    """Append one line to the journal file, if there is one."""
    if journal:
        with open(journal, "a") as file:
            file.write(f"{event} {ctx.node_id} {ctx.idempotency_key} {os.getpid()}\n")


def _sleep(ctx: StepContext) -> Continue:
    note(ctx.config.get("journal"), "start", ctx)
    time.sleep(ctx.config["seconds"])
    note(ctx.config.get("journal"), "end", ctx)
    return Continue(output={"slept": ctx.config["seconds"]})


SLEEP = register(StepType(
    key="test_sleep", category="test", name="Sleep (tests only)", icon="clock",
    description="Sleeps for config.seconds; a side effect, so the engine checkpoints before it.",
    config_schema={"type": "object", "required": ["seconds"], "additionalProperties": False, "properties": {
        "seconds": {"type": "number", "minimum": 0, "maximum": 60}, "journal": {"type": "string"}}},
    output_schema={"type": "object", "properties": {"slept": {"type": "number"}}},
    run=_sleep, side_effects=True))
