"""The step registry: a dict behind register() and get(). Built-in step types register on import."""
from __future__ import annotations

from atlas.core.steps.base import StepType

_REGISTRY: dict[str, StepType] = {}


class UnknownStepType(KeyError):
    """No step type is registered under this key."""


def register(step_type: StepType) -> StepType:
    """Add a step type; a key can be registered once."""
    if step_type.key in _REGISTRY:
        raise ValueError(f"step type {step_type.key!r} is already registered")
    _REGISTRY[step_type.key] = step_type
    return step_type


def get(key: str) -> StepType:
    """The step type registered under key."""
    try:
        return _REGISTRY[key]
    except KeyError:
        raise UnknownStepType(key) from None


def all_types() -> list[StepType]:
    """Every registered step type, by category then name."""
    return sorted(_REGISTRY.values(), key=lambda t: (t.category, t.name))


def _load_builtins() -> None:
    from atlas.core.steps import control, crm, integration, messaging  # noqa: F401  (each registers its step types)


_load_builtins()
