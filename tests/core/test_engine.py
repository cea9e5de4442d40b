"""The engine advances runs through definitions in a bare interpreter: no app, database or Redis."""
import random
from datetime import datetime, timedelta, timezone

import pytest

from atlas.core import engine, steps
from atlas.core.definition import WorkflowDefinition
from atlas.core.engine import RunState, StepError
from atlas.core.steps.base import Continue, RetryPolicy, StepType

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
TEN_MINUTES = {"amount": 10, "unit": "minutes"}
BOOKED = {"field": "contact.has_booking", "operator": "equals", "value": True}


class Clock:
    """A clock that moves 1 ms each time it is read."""

    def __init__(self):
        self.now = T0

    def __call__(self):
        self.now += timedelta(milliseconds=1)
        return self.now


def flow(nodes: list[tuple], edges: str) -> WorkflowDefinition:
    parsed = []
    for text in edges.split():
        source, target = text.split(">")
        source, _, branch = source.partition(":")
        parsed.append({"source": source, "target": target, **({"branch": branch} if branch else {})})
    return WorkflowDefinition.from_dict({"nodes": [{"id": i, "type": t, "config": c} for i, t, c in nodes],
                                         "edges": parsed})


def setvar(name, value):
    return {"name": name, "value": value}


NURTURE = flow([("greet", "set_variable", setvar("greeting", "Hi {{ contact.first_name }}")),
                ("pause", "wait", {"duration": TEN_MINUTES}),
                ("booked", "if_else", {"condition": BOOKED}),
                ("thanks", "set_variable", setvar("outcome", "booked")),
                ("nudge", "set_variable", setvar("outcome", "{{ vars.greeting }}, book your trial!"))],
               "greet>pause pause>booked booked:true>thanks booked:false>nudge")


def run(definition, state=None, contact=None, **kwargs):
    state = state or engine.start(definition)
    return engine.advance(definition, state, trigger={}, contact=contact or {"first_name": "Sarah"},
                          clock=Clock(), execution_id="e1", **kwargs)


def test_a_run_goes_until_its_first_wait_and_says_when_to_come_back():
    outcome = run(NURTURE)

    assert outcome.status == "waiting" and outcome.resume_at == outcome.records[-1].started_at + timedelta(minutes=10)
    assert [(r.node_id, r.status) for r in outcome.records] == [("greet", "completed"), ("pause", "waiting")]
    assert outcome.state.variables == {"greeting": "Hi Sarah"} and outcome.state.current == "pause"
    assert outcome.records[0].output == {"name": "greeting", "value": "Hi Sarah"}
    assert outcome.records[0].duration_ms == 1.0


@pytest.mark.parametrize("booked, last, outcome_var", [(True, "thanks", "booked"),
                                                       (False, "nudge", "Hi Sarah, book your trial!")])
def test_after_the_wait_it_branches_and_completes(booked, last, outcome_var):
    waiting = run(NURTURE).state
    state = engine.resume(NURTURE, waiting)
    outcome = run(NURTURE, state, contact={"first_name": "Sarah", "has_booking": booked})

    assert outcome.status == "completed" and outcome.state.current is None
    assert [r.node_id for r in outcome.records] == ["booked", last]
    assert outcome.records[0].branch == ("true" if booked else "false")
    assert outcome.state.path == ["greet", "pause", "booked", last]
    assert outcome.state.variables["outcome"] == outcome_var


def test_state_survives_a_round_trip_through_json():
    state = run(NURTURE).state
    assert RunState.from_dict(state.to_dict()) == state


WIN_BACK = flow([("await", "wait_for_event", {"event": "class_booked", "timeout": {"amount": 3, "unit": "days"}}),
                 ("welcome_back", "set_variable", setvar("back", "{{ steps.await.output.received.class_name }}")),
                 ("give_up", "end", {})],
                "await:event>welcome_back await:timeout>give_up")


def test_waiting_for_an_event_names_the_event_and_the_timeout():
    outcome = run(WIN_BACK)
    assert (outcome.status, outcome.wait_event) == ("waiting", "class_booked")
    assert outcome.resume_at == outcome.records[-1].started_at + timedelta(days=3)


def test_the_event_arriving_takes_the_event_branch_with_its_payload():
    state = engine.resume(WIN_BACK, run(WIN_BACK).state, branch="event", received={"class_name": "Spin"})
    outcome = run(WIN_BACK, state)
    assert outcome.status == "completed" and outcome.state.variables == {"back": "Spin"}


def test_the_timeout_takes_the_timeout_branch():
    outcome = run(WIN_BACK, engine.resume(WIN_BACK, run(WIN_BACK).state))
    assert outcome.status == "completed" and [r.node_id for r in outcome.records] == ["give_up"]


GOAL_FLOW = flow([("pause", "wait", {"duration": TEN_MINUTES}), ("nudge", "set_variable", setvar("nudged", True)),
                  ("converted", "goal", {"event": "membership_started", "condition": {
                      "field": "contact.status", "operator": "equals", "value": "member"}}),
                  ("celebrate", "set_variable", setvar("celebrated", True))],
                 "pause>nudge nudge>converted converted>celebrate")


def test_a_goal_event_finds_its_goal_and_the_jump_skips_the_rest():
    assert engine.goal_for_event(GOAL_FLOW, "membership_started") == "converted"
    assert engine.goal_for_event(GOAL_FLOW, "class_booked") is None
    state = engine.jump_to_goal(GOAL_FLOW, run(GOAL_FLOW).state, "converted", "event")
    outcome = run(GOAL_FLOW, state)
    assert outcome.status == "completed" and outcome.state.variables == {"celebrated": True}
    assert outcome.state.outputs["converted"] == {"reached": True, "how": "event"}


def test_a_goal_condition_that_holds_jumps_there_before_the_next_step():
    outcome = run(GOAL_FLOW, contact={"status": "member"})
    assert outcome.status == "completed" and "nudged" not in outcome.state.variables
    assert [(r.node_id, r.output) for r in outcome.records] == [
        ("converted", {"reached": True, "how": "condition"}), ("celebrate", {"name": "celebrated", "value": True})]


@pytest.fixture
def flaky(monkeypatch):
    """A side-effect step type that fails the first `failures` attempts with a retryable error."""
    calls = []

    def send(ctx):
        calls.append((ctx.attempt, ctx.idempotency_key))
        if ctx.attempt <= ctx.config["failures"]:
            raise StepError("provider answered 503", code="PROVIDER_UNAVAILABLE", retryable=True)
        return Continue(output={"sent": True})

    step = StepType(key="test_send", category="test", name="Send", description="", icon="", config_schema={},
                    output_schema={}, run=send, side_effects=True,
                    retry=RetryPolicy(max_attempts=3, backoff_seconds=10, max_backoff_seconds=60))
    monkeypatch.setitem(steps._REGISTRY, "test_send", step)
    return calls


def sender(failures: int) -> WorkflowDefinition:
    return flow([("prep", "set_variable", setvar("x", 1)), ("send", "test_send", {"failures": failures})], "prep>send")


def test_a_retryable_failure_retries_later_with_backoff_then_succeeds(flaky):
    definition = sender(failures=1)
    first = run(definition, rng=random.Random(1))
    assert (first.status, first.error_code, first.failed_node) == ("retry", "PROVIDER_UNAVAILABLE", "send")
    assert timedelta(seconds=5) <= first.resume_at - first.records[-1].finished_at <= timedelta(seconds=10)
    assert first.records[-1].status == "retrying"

    second = run(definition, first.state)
    assert second.status == "completed" and second.records[-1].attempt == 2
    assert [key for _, key in flaky] == ["e1:send:1", "e1:send:2"]


def test_retries_stop_at_the_policy_and_the_run_fails_with_the_reason(flaky):
    definition, state = sender(failures=5), None
    for _ in range(3):
        outcome = run(definition, state)
        state = outcome.state
    assert outcome.status == "failed" and outcome.error == "Step 'send' failed: provider answered 503"
    assert [r.attempt for r in [outcome.records[-1]]] == [3] and outcome.records[-1].status == "failed"


def test_the_caller_persists_what_ran_before_a_side_effect(flaky):
    saved = []
    run(sender(failures=0), checkpoint=lambda records, state: saved.append(([r.node_id for r in records],
                                                                            state.current, dict(state.variables))))
    assert saved == [(["prep"], "send", {"x": 1})]


def test_a_checkpoint_comes_before_every_side_effect_even_the_first_of_a_run(flaky):
    saved = []
    run(flow([("send", "test_send", {"failures": 0})], ""),
        checkpoint=lambda records, state: saved.append((list(records), state.current)))
    assert saved == [([], "send")]  # nothing new to persist, but the caller can renew its lease, or stop


def test_a_step_that_crashes_fails_the_run_once_with_the_reason_and_no_retry(monkeypatch):
    def crash(ctx):
        raise KeyError("phone")

    step = StepType(key="test_crash", category="test", name="Crash", description="", icon="", config_schema={},
                    output_schema={}, run=crash, side_effects=True, retry=RetryPolicy(max_attempts=3))
    monkeypatch.setitem(steps._REGISTRY, "test_crash", step)

    outcome = run(flow([("prep", "set_variable", setvar("x", 1)), ("boom", "test_crash", {})], "prep>boom"))

    assert (outcome.status, outcome.error_code, outcome.failed_node) == ("failed", "STEP_CRASHED", "boom")
    assert outcome.error == "Step 'boom' failed: KeyError: 'phone'" and outcome.records[-1].status == "failed"


def test_a_template_error_fails_the_run_at_once_with_a_clear_reason():
    definition = flow([("bad", "set_variable", setvar("x", "{{ contact.nickname }}"))], "")
    outcome = run(definition)
    assert (outcome.status, outcome.error_code, outcome.failed_node) == ("failed", "TEMPLATE_ERROR", "bad")
    assert outcome.error == "Step 'bad' failed: contact.nickname is not defined"


@pytest.mark.parametrize("attempt, low, high", [(1, 5, 10), (2, 10, 20), (3, 20, 40), (10, 300, 600)])
def test_retry_delay_doubles_with_jitter_up_to_the_cap(attempt, low, high):
    policy = RetryPolicy(max_attempts=10, backoff_seconds=10, max_backoff_seconds=600)
    delays = [engine.retry_delay(policy, attempt, random.Random(seed)).total_seconds() for seed in range(50)]
    assert all(low <= d <= high for d in delays) and len(set(delays)) > 40


def test_a_reset_retry_budget_allows_new_retries_while_attempt_numbers_go_on(flaky):
    definition, state = sender(failures=5), None
    for _ in range(3):
        outcome = run(definition, state)
        state = outcome.state
    assert outcome.status == "failed"
    state.spent = dict(state.attempts)  # what POST /queue/jobs/{id}/retry with resetRetryCount does

    again = run(definition, state)
    assert (again.status, again.records[-1].attempt) == ("retry", 4)


def test_a_deferred_step_runs_again_later_as_a_new_attempt_without_using_retry_budget(monkeypatch):
    from atlas.core.steps.base import Defer

    calls = []

    def run(ctx):
        calls.append(ctx.idempotency_key)
        if len(calls) == 1:
            return Defer(until=ctx.now, reason="quiet hours")
        return Continue(output={"sent": True})

    monkeypatch.setitem(steps._REGISTRY, "test_deferring", StepType(
        key="test_deferring", category="test", name="Deferring", description="", icon="",
        config_schema={"type": "object"}, output_schema={"type": "object"}, run=run))
    definition = WorkflowDefinition.from_dict({"schemaVersion": 1, "nodes": [
        {"id": "send", "type": "test_deferring", "config": {}}, {"id": "done", "type": "end", "config": {}}],
        "edges": [{"source": "send", "target": "done"}]})
    first = engine.advance(definition, engine.start(definition), trigger={}, contact={}, execution_id="e1")
    assert first.status == "waiting" and first.state.current == "send"
    assert [r.status for r in first.records] == ["deferred"] and first.records[0].error == "quiet hours"
    second = engine.advance(definition, first.state, trigger={}, contact={}, execution_id="e1")
    assert second.status == "completed"
    assert calls == ["e1:send:1", "e1:send:2"]
    assert [r.attempt for r in second.records][0] == 2 and second.state.attempts == {}


def test_perform_without_an_effects_port_is_a_clear_step_error():
    from atlas.core.steps.base import StepContext, StepError

    ctx = StepContext(node_id="n", config={}, data={}, now=engine.utcnow())
    with pytest.raises(StepError) as caught:
        ctx.perform("send_sms", {})
    assert caught.value.code == "NO_EFFECTS"
    seen = []
    ctx = StepContext(node_id="n", config={}, data={}, now=engine.utcnow(), idempotency_key="k",
                      effects=lambda kind, params: seen.append((kind, params)) or {"ok": True})
    assert ctx.perform("add_tag", {"tag": "vip"}) == {"ok": True}
    assert seen == [("add_tag", {"tag": "vip", "idempotency_key": "k"})]
