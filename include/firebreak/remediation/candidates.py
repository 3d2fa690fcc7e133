"""Registering a remediation's model as a new version, with its golden figures as the baseline.

Idempotent across crashes: a re-run finds the version its killed attempt registered (by the
training run's name) instead of registering a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

if TYPE_CHECKING:
    from firebreak.policy.schema import Policy
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.settings import Settings


class CandidateJudge(Protocol):
    """What registering needs from the model's kind (:class:`firebreak.kinds.ModelKind` is one)."""

    def candidate_figures(
        self, predict: Callable[[pd.DataFrame], pd.DataFrame], settings: Settings, tags: dict[str, str]
    ) -> Any: ...

    def input_example(self, reference: pd.DataFrame) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Registered:
    version: str
    reused: bool  # an earlier attempt of the same incident registered it


def register_candidate(
    registry: Registry,
    kind: CandidateJudge,
    settings: Settings,
    python_model: Any,
    *,
    policy: Policy,
    model: str,
    incident_id: str,
    reference: pd.DataFrame,
    tags: dict[str, str],
    run_name: str,
    model_config: dict[str, Any] | None = None,
) -> Registered:
    """Register ``python_model`` for ``model`` with the kind's golden figures as its baseline tags.

    ``python_model`` is a pyfunc ``PythonModel`` (a recipe's) or a fitted scikit-learn
    estimator (a refit of the champion), logged with the sklearn flavor.
    """
    from firebreak.registry.flavors import object_predictor
    from firebreak.registry.mlflow_registry import golden_tags

    if model_config is not None:
        python_model.load_context(SimpleNamespace(model_config=model_config))  # as MLflow will on load
    figures = kind.candidate_figures(object_predictor(python_model, policy), settings, tags)
    all_tags = {"firebreak.incident_id": incident_id, **tags, **golden_tags(figures)}
    name = f"{incident_id}-{run_name}"
    found = registry.registered_by_run(model, name, all_tags)
    if found is not None:
        return Registered(found.version, True)
    version = registry.register(
        model,
        python_model,
        input_example=kind.input_example(reference).head(5),
        reference=reference,
        tags=all_tags,
        run_name=name,
        model_config=model_config,
    )
    return Registered(version.version, False)
