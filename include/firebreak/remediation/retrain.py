"""Retrain and parameter update: new model versions from the policy's recipe or parameters."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from firebreak.errors import RemediationError
from firebreak.policy.entry_points import resolve_entry_point
from firebreak.policy.schema import Policy

if TYPE_CHECKING:
    from firebreak.registry.mlflow_registry import Registry, Version
    from firebreak.settings import Settings


@dataclass(frozen=True)
class Retrained:
    """A model the recipe trained, the data it saw, and what to say about it."""

    python_model: Any
    reference: pd.DataFrame
    detail: str
    training: dict[str, Any] = field(default_factory=dict)


def retrain(policy: Policy, settings: Settings) -> Retrained:
    """Train the policy's recipe (``training.recipe``) on its dataset (``training.dataset``).

    A recipe that reads more than its dataset (e.g. the feedback store) takes ``settings``.

    Raises:
        RemediationError: The dataset does not exist.
        ConfigurationError: The recipe cannot be imported.
    """
    recipe_name = policy.training.recipe
    recipe = resolve_entry_point(recipe_name)
    dataset = settings.resolve(policy.training.dataset)
    if not dataset.is_file():
        raise RemediationError(f"training dataset {dataset} for {policy.model} does not exist")
    history = pd.read_parquet(dataset)
    takes_settings = "settings" in inspect.signature(recipe).parameters
    trained = recipe(history, settings=settings) if takes_settings else recipe(history)
    training = dict(getattr(trained, "training_summary", None) or {})
    detail = f"retrained with {recipe_name} on {len(history)} rows"
    if "excluded_actors" in training:
        actors = ", ".join(f"{a} ({n})" for a, n in training["excluded_actors"].items()) or "none"
        detail += (
            f"; {training.get('feedback_events')} feedback events used, "
            f"{training.get('excluded_events')} excluded from poisoned slices (actors: {actors})"
        )
    return Retrained(trained, history[policy.features.inputs], detail, training)


@dataclass(frozen=True)
class ParameterUpdate:
    """The champion's model with the policy's parameters over its own configuration."""

    python_model: Any
    model_config: dict[str, Any]
    parameters: dict[str, Any]


def parameters_to_update(policy: Policy) -> dict[str, Any]:
    """The policy's ``remediation.parameter_update``.

    Raises:
        RemediationError: The policy sets none.
    """
    params = dict(policy.remediation.parameter_update)
    if not params:
        raise RemediationError(f"policy of {policy.model} sets no remediation.parameter_update")
    return params


def update_parameters(policy: Policy, registry: Registry, champion: Version) -> ParameterUpdate:
    """The champion with ``remediation.parameter_update`` applied over its own configuration.

    The champion's own config stays (an LLM's pinned prompt); the policy's parameters override it.
    """
    params = parameters_to_update(policy)
    loaded = registry.load(champion)
    return ParameterUpdate(loaded.unwrap_python_model(), {**(loaded.model_config or {}), **params}, params)
