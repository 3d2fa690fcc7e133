"""The containment fallback onboarding picks: last-known-good, a baseline model, or disable.

SOP stage *Contain* depends on it: when an incident (or the gateway's breaker) takes
traffic off the champion, the policy's route answers instead. The gateway serves the
version under alias ``fallback`` for ``containment.route: fallback_model``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class FallbackChoice:
    """What answers when the champion is contained, and why onboarding chose it."""

    route: str  # fallback_model | disabled
    source: str  # last-known-good | baseline | disable | existing
    version: str | None  # the version alias `fallback` points at (None: disabled, or not registered yet)
    why: str
    description: str  # the policy's containment.description
    fitted_on: str = ""  # a baseline's task, label and inputs (tag firebreak.fallback_fitted_on): reused only alike


def baseline_estimator(task: str, numeric: list[str], categorical: list[str]) -> Any:
    """A plain, robust model for containment: linear on scaled numbers and one-hot categories.

    Logistic regression for a classifier, ridge regression otherwise: few assumptions, quick to
    fit, stable under drift in a way a tuned champion need not be. Missing values are imputed
    and unknown categories ignored, so it answers whatever the contract lets through.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if numeric:
        parts.append(("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric))
    if categorical:
        parts.append(
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", min_frequency=5),
                ),
                categorical,
            )
        )
    final = LogisticRegression(max_iter=2000) if task == "classification" else Ridge(alpha=1.0)
    return Pipeline([("columns", ColumnTransformer(parts)), ("model", final)])


def fitted_on(task: str, label: str, inputs: list[str]) -> str:
    """What a baseline was fitted for, as its tag reads: a later onboarding reuses it only when this matches."""
    digest = hashlib.sha256(json.dumps([task, label, sorted(inputs)]).encode()).hexdigest()[:16]
    return f"{task} of {label!r} on {len(inputs)} inputs (sha256 {digest})"[:5000]


def fit_baseline(task: str, numeric: list[str], categorical: list[str], rows: pd.DataFrame, label: str) -> Any:
    """The baseline fitted on ``rows`` (the reference minus the golden set)."""
    model = baseline_estimator(task, numeric, categorical)
    frame = rows[[*numeric, *categorical]].copy()
    for column in categorical:  # plain objects, as logged requests arrive (a pandas category would not)
        frame[column] = frame[column].astype(object)
    model.fit(frame, rows[label])
    return model
