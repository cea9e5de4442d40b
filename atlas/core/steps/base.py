"""What a step type declares, what it is given when it runs, and what it may answer."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failed attempt is retried: exponential backoff with jitter, capped."""

    max_attempts: int = 1
    backoff_seconds: float = 5.0
    max_backoff_seconds: float = 600.0

    def to_dict(self) -> dict:
        return {"max_attempts": self.max_attempts, "backoff_seconds": self.backoff_seconds,
                "max_backoff_seconds": self.max_backoff_seconds}


NO_RETRY = RetryPolicy()
NETWORK_RETRY = RetryPolicy(max_attempts=5, backoff_seconds=10.0, max_backoff_seconds=900.0)


class StepError(Exception):
    """A step failed; `retryable` says whether another attempt may succeed (a provider outage, not a bad config)."""

    def __init__(self, message: str, *, code: str = "STEP_FAILED", retryable: bool = False):
        super().__init__(message)
        self.message, self.code, self.retryable = message, code, retryable


Effects = Callable[[str, dict], dict]  # (effect kind, params) -> result; the services layer implements it


@dataclass(frozen=True)
class StepContext:
    """Everything a step sees: its node's config, the run's data and the time."""

    node_id: str
    config: Mapping[str, Any]
    data: Mapping[str, Any]  # {"trigger", "contact", "vars", "steps": {id: {"output": ...}}}
    now: datetime
    execution_id: str = ""
    attempt: int = 1
    idempotency_key: str = ""
    test_mode: bool = False
    effects: Effects | None = None  # how a step with side effects reaches the world; None in a bare interpreter

    def perform(self, kind: str, params: dict) -> dict:
        """Ask the services layer to do `kind` (send an SMS, add a tag...) and return what it reports."""
        if self.effects is None:
            raise StepError(f"Nothing can perform {kind!r} here (no effects port was given).", code="NO_EFFECTS")
        return self.effects(kind, {**params, "idempotency_key": self.idempotency_key})


@dataclass(frozen=True)
class Continue:
    """Go on along `branch` (None: the node's only exit), recording `output`; `variables` are set on the run."""

    output: dict = field(default_factory=dict)
    branch: str | None = None
    variables: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Wait:
    """Sleep until `until`, then continue along `branch`."""

    until: datetime
    output: dict = field(default_factory=dict)
    branch: str | None = None


@dataclass(frozen=True)
class WaitForEvent:
    """Sleep until `event` arrives for the run's contact (then `event` branch) or `timeout_at` (`timeout` branch)."""

    event: str
    timeout_at: datetime
    match: dict | None = None
    output: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Defer:
    """Not now (quiet hours, a frequency cap): run this same node again at `until`; no attempt is used up."""

    until: datetime
    reason: str
    output: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Finish:
    """End the run here."""

    output: dict = field(default_factory=dict)


StepResult = Continue | Wait | WaitForEvent | Defer | Finish


@dataclass(frozen=True)
class StepType:
    """A registered kind of node: its catalogue entry, its config schema and how it runs."""

    key: str
    category: str
    name: str
    description: str
    icon: str
    config_schema: dict
    output_schema: dict
    run: Callable[[StepContext], StepResult]
    side_effects: bool = False
    retry: RetryPolicy = NO_RETRY
    branches: Callable[[Mapping], list[str]] | None = None  # exits of a branching node, from its config
    check: Callable[[Mapping], list[dict]] | None = None  # semantic config checks beyond the schema
    terminal: bool = False  # has no exit (end)

    def exits(self, config: Mapping) -> list[str]:
        """The branch names this node's edges must carry; [] for a node with one unnamed exit."""
        return list(self.branches(config)) if self.branches else []

    def describe(self) -> dict:
        """The catalogue entry (ActionDefinition) for the API and the builder."""
        return {"type": self.key, "category": self.category, "name": self.name, "description": self.description,
                "icon": self.icon, "config_schema": self.config_schema, "output_schema": self.output_schema,
                "side_effects": self.side_effects, "retry_policy": self.retry.to_dict(), "terminal": self.terminal,
                "branching": self.branches is not None}
