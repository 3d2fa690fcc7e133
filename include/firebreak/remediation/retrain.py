"""Retrain and parameter update: new model versions from the policy's recipe or parameters."""

from __future__ import annotations

import inspect
from collections.abc import Callable
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


@dataclass(frozen=True)
class Champion:
    """What a refit without a recipe needs: the champion to clone and the incident's labelled traffic.

    The refit learns from the part of the traffic the gate does not judge on
    (:mod:`firebreak.verification.held_out`).
    """

    registry: Registry
    version: Version
    labelled: Callable[[], pd.DataFrame]
    failure_class: str | None


def describe(policy: Policy, champion: Version) -> str:
    """What ``retrain`` will do, for a dry run."""
    if policy.training.recipe:
        return f"train {policy.training.recipe}"
    return f"refit a clone of v{champion.version} on {policy.training.dataset} plus labelled traffic"


def candidate_tags(policy: Policy, champion: Version) -> dict[str, str]:
    """Tags saying where a retrained version came from."""
    if policy.training.recipe:
        return {"firebreak.recipe": policy.training.recipe}
    return {"firebreak.refit_of": champion.version}


def retrain(policy: Policy, settings: Settings, champion: Champion | None = None) -> Retrained:
    """Train the policy's recipe (``training.recipe``) on its dataset (``training.dataset``);
    without a recipe, refit a clone of the scikit-learn ``champion`` (:mod:`firebreak.remediation.refit`).

    A recipe that reads more than its dataset (e.g. the feedback store) takes ``settings``.

    Raises:
        RemediationError: The dataset does not exist; or no recipe and the champion is not a
            scikit-learn model (then a recipe is the way: docs/SOP.md).
        ConfigurationError: The recipe cannot be imported.
    """
    recipe_name = policy.training.recipe
    if recipe_name is None:
        if champion is None:
            raise RemediationError(f"policy of {policy.model} names no training.recipe and no champion to refit")
        return _refit_champion(policy, settings, champion)
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


def _refit_champion(policy: Policy, settings: Settings, champion: Champion) -> Retrained:
    from firebreak.registry.flavors import sklearn_estimator
    from firebreak.remediation.refit import refit, training_rows
    from firebreak.verification.held_out import split

    loaded = champion.registry.load(champion.version)
    estimator = sklearn_estimator(loaded)
    if estimator is None:
        flavors = ", ".join(sorted(loaded.metadata.flavors or {}))
        raise RemediationError(
            f"{policy.model} v{champion.version.version} is not a scikit-learn model (flavors: {flavors}): "
            "name a training.recipe (module:function) in its policy"
        )
    share = policy.gate.held_out_share
    traffic = split(champion.labelled(), share)
    done = refit(
        estimator, policy, training_rows(policy, settings), traffic.train, failure_class=champion.failure_class
    )
    detail = f"{done.detail}; {len(traffic.held_out)} more held out for the gate"
    training = {**done.training, "held_out_rows": len(traffic.held_out), "held_out_share": share}
    return Retrained(done.estimator, done.inputs, detail, training)


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
    from firebreak.registry import own_models

    params = parameters_to_update(policy)
    loaded = registry.load(champion)
    return ParameterUpdate(own_models.python_model(loaded), {**(loaded.model_config or {}), **params}, params)
