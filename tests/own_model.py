"""A model no scenario uses, registered as a team would: a scikit-learn pipeline with string categoricals.

Shared by the sidecar and prediction-log tests: a small card-payment world (``amount``,
``account_age_days`` numeric; ``channel`` a string category), a ``ColumnTransformer`` +
``HistGradientBoostingClassifier`` champion logged with plain ``mlflow.sklearn.log_model``,
a logistic-regression ``fallback``, and a policy and contract written as files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL = "payments"
NUMERIC = ["amount", "account_age_days"]
CATEGORICAL = ["channel"]
INPUTS = [*NUMERIC, *CATEGORICAL]
LABEL = "fraud"
CHANNELS = ["web", "store", "phone"]


def generate(seed: int, n: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(4, 1, n).round(2),
            "account_age_days": rng.integers(1, 3000, n),
            "channel": rng.choice(CHANNELS, n, p=[0.5, 0.3, 0.2]),
        }
    )
    risk = (frame["amount"] > 150).astype(int) + (frame["account_age_days"] < 60) + (frame["channel"] == "phone")
    frame[LABEL] = (risk + rng.random(n) > 1.8).astype(int)
    return frame


def pipeline(final: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    columns = ColumnTransformer(
        [("channel", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)], remainder="passthrough"
    )
    return Pipeline([("columns", columns), ("model", final)])


POLICY = """
model: {model}
description: card payments fraud classifier (tests)
owner: tests
features: {{numeric: {numeric}, categorical: {categorical}, label: {label}, output: prediction, confidence: confidence}}
contract: {contract}
golden: {golden}
detection: {{confidence_floor: 0.0, window_hours: 24, min_predictions: 10, golden_tolerance: 0.1}}
severity: {{rules: [{{severity: SEV2, when: {{low_confidence_rate: 0.5}}}}]}}
containment: {{route: fallback_model, description: logistic regression on the same inputs}}
training: {{recipe: "tests.own_model:generate", dataset: data/payments.parquet}}
remediation: {{by_failure_class: {{drift: retrain}}}}
gate: {{golden_max_regression: 0.05, recent_min_improvement: 0.1}}
serving: {{upstream: {{timeout_seconds: 10.0}}, breaker: {{min_calls: 5, window_seconds: 600}}}}
"""


def write_policy(home: Path) -> Path:
    """The policy, the contract (derived from the training data) and a golden CSV; returns the policies dir."""
    from firebreak.investigation.evidence import derive_contract

    home.mkdir(parents=True, exist_ok=True)
    train = generate(0, 400)
    contract = home / "payments.json"
    contract.write_text(json.dumps(derive_contract(train[INPUTS], name="payments_inputs")))
    golden = home / "payments-golden.csv"
    train.to_csv(golden, index=False)
    policies = home / "policies"
    policies.mkdir(exist_ok=True)
    (policies / f"{MODEL}.yaml").write_text(
        POLICY.format(
            model=MODEL,
            numeric=json.dumps(NUMERIC),
            categorical=json.dumps(CATEGORICAL),
            label=LABEL,
            contract=contract,
            golden=golden,
        )
    )
    return policies


def register(settings: Any) -> dict[str, str]:
    """Champion (HGB pipeline) and fallback (logistic regression pipeline), logged with mlflow.sklearn."""
    import mlflow
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from firebreak.incidents.enums import Alias
    from firebreak.registry.mlflow_registry import Registry

    train = generate(1, 2000)
    registry = Registry(settings)
    versions = {}
    for alias, final in (
        (Alias.CHAMPION, HistGradientBoostingClassifier(max_iter=30, random_state=0)),
        (Alias.FALLBACK, LogisticRegression(max_iter=500)),
    ):
        model = pipeline(final).fit(train[INPUTS], train[LABEL])
        with mlflow.start_run(experiment_id=registry.experiment_id("payments")):
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=train[INPUTS].head(3),
                registered_model_name=MODEL,
                serialization_format="cloudpickle",
            )
        version = str(info.registered_model_version)
        registry.move_alias(MODEL, alias, version, incident_id=None, actor="tests", reason="test world")
        versions[str(alias)] = version
    return versions
