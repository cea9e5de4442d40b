"""The engine: advances one run through its definition, step by step, in a bare interpreter.

advance() runs steps from the run's current node until the run waits, finishes, fails or must retry later, and
returns what happened (an Outcome with one StepRecord per attempt). It touches no database or queue: the caller
persists the records and the new state, and schedules the resume. Before a step with side effects it calls
`checkpoint(records, state)` so the caller can persist what ran so far; such a step gets an idempotency key made of
execution, node and attempt, so a run replayed after a crash repeats no message a provider already took.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping

from atlas.core import conditions, steps
from atlas.core.conditions import ConditionError
from atlas.core.definition import Node, WorkflowDefinition
from atlas.core.graph import Graph
from atlas.core.steps.base import Defer, Effects, Finish, RetryPolicy, StepContext, StepError, Wait, WaitForEvent
from atlas.core.templating import TemplateError

MAX_STEPS_PER_ADVANCE = 500


@dataclass
class RunState:
    """Where a run is: the node to run next (or the node it waits at), variables, outputs so far."""

    current: str | None
    variables: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)  # node id -> output
    path: list = field(default_factory=list)  # node ids completed, in order
    attempts: dict = field(default_factory=dict)  # node id -> failed attempts of the current node
    spent: dict = field(default_factory=dict)  # node id -> attempts not counted against the retry policy
    waiting_branch: str | None = None  # the exit to take when a time wait ends
    waiting: bool = False

    def to_dict(self) -> dict:
        return {"current": self.current, "variables": self.variables, "outputs": self.outputs, "path": self.path,
                "attempts": self.attempts, "spent": self.spent, "waitingBranch": self.waiting_branch,
                "waiting": self.waiting}

    @classmethod
    def from_dict(cls, data: Mapping) -> RunState:
        return cls(current=data.get("current"), variables=dict(data.get("variables", {})),
                   outputs=dict(data.get("outputs", {})), path=list(data.get("path", [])),
                   attempts=dict(data.get("attempts", {})), spent=dict(data.get("spent", {})),
                   waiting_branch=data.get("waitingBranch"),
                   waiting=bool(data.get("waiting")))


@dataclass(frozen=True)
class StepRecord:
    """One attempt of one node."""

    node_id: str
    step_type: str
    attempt: int
    status: str  # completed | waiting | failed | retrying
    input: dict
    output: dict | None
    started_at: datetime
    finished_at: datetime
    branch: str | None = None
    error: str | None = None
    error_code: str | None = None

    @property
    def duration_ms(self) -> float:
        return (self.finished_at - self.started_at).total_seconds() * 1000


@dataclass
class Outcome:
    """What advance() did: the run's new status and state, the attempts made, and when to come back."""

    status: str  # completed | waiting | failed | retry
    state: RunState
    records: list = field(default_factory=list)
    resume_at: datetime | None = None
    wait_event: str | None = None
    wait_match: dict | None = None
    error: str | None = None
    error_code: str | None = None
    failed_node: str | None = None


def start(definition: WorkflowDefinition) -> RunState:
    """The state of a new run: at the entry node."""
    entries = Graph(definition).entries()
    return RunState(current=entries[0] if entries else None)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def advance(definition: WorkflowDefinition, state: RunState, *, trigger: Mapping, contact: Mapping,
            clock: Callable[[], datetime] = utcnow, execution_id: str = "", test_mode: bool = False,
            checkpoint: Callable[[list, RunState], None] | None = None, rng: random.Random | None = None,
            effects: Effects | None = None) -> Outcome:
    """Run steps from state.current until the run waits, ends, fails, or must retry later."""
    graph, nodes = Graph(definition), {n.id: n for n in definition.nodes}
    state = replace(state, variables=dict(state.variables), outputs=dict(state.outputs), path=list(state.path),
                    attempts=dict(state.attempts), spent=dict(state.spent), waiting=False)
    records: list[StepRecord] = []
    for _ in range(MAX_STEPS_PER_ADVANCE):
        goal = goal_by_condition(definition, state, trigger=trigger, contact=contact, now=clock())
        if goal is not None:
            state = jump_to_goal(definition, state, goal, "condition")
            records.append(_goal_record(nodes[goal], clock()))
        if state.current is None:
            return Outcome("completed", state, records)
        node = nodes[state.current]
        step_type = steps.get(node.type)
        if step_type.side_effects and checkpoint:  # even with nothing new to save: the caller may renew or stop
            checkpoint(records, state)
        attempt = state.attempts.get(node.id, 0) + 1
        ctx = StepContext(node_id=node.id, config=node.config, data=_data(trigger, contact, state), now=clock(),
                          execution_id=execution_id, attempt=attempt, test_mode=test_mode,
                          idempotency_key=f"{execution_id}:{node.id}:{attempt}", effects=effects)
        try:
            result = step_type.run(ctx)
        except (StepError, TemplateError, ConditionError) as exc:
            return _failure(node, step_type.key, step_type.retry, exc, ctx, clock(), state, records, rng)
        except Exception as exc:  # a bug in a step (or the job's timeout): fail the run once, never replay it forever
            crash = StepError(f"{type(exc).__name__}: {exc}", code="STEP_CRASHED")
            return _failure(node, step_type.key, step_type.retry, crash, ctx, clock(), state, records, rng)
        outcome = _apply(graph, node, step_type.key, result, ctx, clock(), state, records)
        if outcome is not None:
            return outcome
    return Outcome("failed", state, records, error=f"The run took more than {MAX_STEPS_PER_ADVANCE} steps at once.",
                   error_code="TOO_MANY_STEPS", failed_node=state.current)


def _goal_record(node: Node, now: datetime) -> StepRecord:
    return StepRecord(node_id=node.id, step_type="goal", attempt=1, status="completed", input=node.config,
                      output={"reached": True, "how": "condition"}, started_at=now, finished_at=now)


def _data(trigger: Mapping, contact: Mapping, state: RunState) -> dict:
    """What conditions and templates read: the four roots."""
    return {"trigger": trigger, "contact": contact, "vars": state.variables,
            "steps": {node_id: {"output": output} for node_id, output in state.outputs.items()}}


def _apply(graph: Graph, node: Node, key: str, result, ctx: StepContext, finished: datetime, state: RunState,
           records: list) -> Outcome | None:
    """Record a successful attempt and move the state on; an Outcome when the run stops here."""
    record = StepRecord(node_id=node.id, step_type=key, attempt=ctx.attempt, status="completed", input=node.config,
                        output=result.output, started_at=ctx.now, finished_at=finished,
                        branch=getattr(result, "branch", None))
    if isinstance(result, Defer):  # the same node runs again at `until`, as a new attempt that costs no retry budget
        records.append(replace(record, status="deferred", error=result.reason))
        state.attempts[node.id] = ctx.attempt
        state.spent[node.id] = state.spent.get(node.id, 0) + 1
        return Outcome("waiting", state, records, resume_at=result.until)
    state.outputs[node.id] = result.output
    state.attempts.pop(node.id, None)
    state.spent.pop(node.id, None)
    if isinstance(result, Finish):
        records.append(record)
        state.path.append(node.id)
        state.current = None
        return Outcome("completed", state, records)
    if isinstance(result, (Wait, WaitForEvent)):
        records.append(replace(record, status="waiting"))
        state.waiting = True
        state.waiting_branch = result.branch if isinstance(result, Wait) else "timeout"
        if isinstance(result, Wait):
            return Outcome("waiting", state, records, resume_at=result.until)
        return Outcome("waiting", state, records, resume_at=result.timeout_at, wait_event=result.event,
                       wait_match=result.match)
    records.append(record)
    state.path.append(node.id)
    state.variables.update(result.variables)
    state.current = graph.next_node(node.id, result.branch)
    return None


def _failure(node: Node, key: str, policy: RetryPolicy, exc: Exception, ctx: StepContext, finished: datetime,
             state: RunState, records: list, rng: random.Random | None) -> Outcome:
    """A failed attempt: retry later while the policy allows and the error is worth retrying, else fail the run."""
    message = getattr(exc, "message", None) or str(exc)
    code = getattr(exc, "code", None) or ("TEMPLATE_ERROR" if isinstance(exc, TemplateError) else "CONDITION_ERROR")
    budget_used = ctx.attempt - state.spent.get(node.id, 0)
    retryable = isinstance(exc, StepError) and exc.retryable and budget_used < policy.max_attempts
    records.append(StepRecord(node_id=node.id, step_type=key, attempt=ctx.attempt,
                              status="retrying" if retryable else "failed", input=node.config, output=None,
                              started_at=ctx.now, finished_at=finished, error=message, error_code=code))
    state.attempts[node.id] = ctx.attempt
    if retryable:
        return Outcome("retry", state, records, resume_at=finished + retry_delay(policy, budget_used, rng),
                       error=message, error_code=code, failed_node=node.id)
    return Outcome("failed", state, records, error=f"Step {node.id!r} failed: {message}", error_code=code,
                   failed_node=node.id)


def retry_delay(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff from the policy's base, capped, with full jitter in its upper half."""
    ceiling = min(policy.max_backoff_seconds, policy.backoff_seconds * 2 ** (attempt - 1))
    return timedelta(seconds=ceiling * (0.5 + 0.5 * (rng or random).random()))


def resume(definition: WorkflowDefinition, state: RunState, *, branch: str | None = None,
           received: dict | None = None) -> RunState:
    """The state after a wait ends: out of the waiting node along `branch` (default: the one the wait chose)."""
    node_id = state.current
    outputs = dict(state.outputs)
    if received is not None:
        outputs[node_id] = {**outputs.get(node_id, {}), "received": received}
    chosen = branch if branch is not None else state.waiting_branch
    return replace(state, outputs=outputs, path=[*state.path, node_id], waiting=False, waiting_branch=None,
                   current=Graph(definition).next_node(node_id, chosen))


def goal_for_event(definition: WorkflowDefinition, event: str) -> str | None:
    """The goal node that this event reaches, if any."""
    return next((n.id for n in definition.nodes if n.type == "goal" and n.config.get("event") == event), None)


def goal_by_condition(definition: WorkflowDefinition, state: RunState, *, trigger: Mapping, contact: Mapping,
                      now: datetime) -> str | None:
    """The first goal node whose condition holds now and that the run has not passed yet."""
    data = _data(trigger, contact, state)
    for node in definition.nodes:
        if node.type == "goal" and node.id not in state.path and node.config.get("condition") \
                and conditions.evaluate(node.config["condition"], data, now):
            return node.id
    return None


def jump_to_goal(definition: WorkflowDefinition, state: RunState, goal_id: str, how: str) -> RunState:
    """The run leaves wherever it is (waiting included): the goal counts as reached and the run goes on after it."""
    outputs = {**state.outputs, goal_id: {"reached": True, "how": how}}
    return replace(state, outputs=outputs, path=[*state.path, goal_id], waiting=False, waiting_branch=None,
                   attempts={}, spent={}, current=Graph(definition).next_node(goal_id, None))
