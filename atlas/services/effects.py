"""The engine's effects port: how steps with side effects reach the database and the providers.

A step in atlas/core asks `ctx.perform(kind, params)`; the runner gives the engine `port(EffectContext)`, which
calls the handler registered for `kind` here. Handlers live with their use-case (messaging, crm_actions,
http_actions, subworkflows) and register with @handler. In a test run with mocked services (`ctx.mock`) a handler
records what it would have done and sends nothing.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from atlas.core.steps.base import StepError

HANDLER_MODULES = ("atlas.services.messaging", "atlas.services.crm_actions", "atlas.services.http_actions",
                   "atlas.services.subworkflows")
_HANDLERS: dict[str, Callable[["EffectContext", dict], dict]] = {}
_LOADED: list[bool] = []  # every handler module imported (one of them may have been imported, and registered, earlier)


@dataclass(frozen=True)
class EffectContext:
    """Who a side effect acts for: the organization, the run (if any) and its contact, and whether to really act."""

    org_id: str
    execution_id: str | None = None
    workflow_id: str | None = None
    contact_id: str | None = None
    test_mode: bool = False
    mock: bool = False  # record what would have been done instead of doing it
    depth: int = 0  # sub-workflow nesting of the run


def handler(kind: str):
    """Register the function that performs effects of this kind."""

    def register(fn):
        if kind in _HANDLERS and _HANDLERS[kind] is not fn:
            raise ValueError(f"an effect handler for {kind!r} is already registered")
        _HANDLERS[kind] = fn
        return fn

    return register


def _load() -> None:
    for name in HANDLER_MODULES:
        importlib.import_module(name)
    _LOADED.append(True)


def perform(ctx: EffectContext, kind: str, params: dict) -> dict:
    """Run the handler for `kind`; an unknown kind is a step error, not a crash."""
    if not _LOADED:
        _load()
    fn = _HANDLERS.get(kind)
    if fn is None:
        raise StepError(f"No handler performs {kind!r}.", code="UNKNOWN_EFFECT")
    return fn(ctx, params)


def port(ctx: EffectContext) -> Callable[[str, dict], dict]:
    """The callable the engine hands to steps."""
    return lambda kind, params: perform(ctx, kind, params)


def for_execution(execution) -> Callable[[str, dict], dict]:
    """The port for a run: test runs mock external services unless the caller asked for real ones."""
    mock = bool(execution.test_mode and (execution.input_data or {}).get("mockExternalServices", True))
    return port(EffectContext(org_id=execution.organization_id, execution_id=execution.id,
                              workflow_id=execution.workflow_id, contact_id=execution.contact_id,
                              test_mode=execution.test_mode, mock=mock,
                              depth=int((execution.context or {}).get("depth", 0))))
