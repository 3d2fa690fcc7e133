"""A team's own MLflow and models, registered the way teams do, and ``firebreak onboard`` as they run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from firebreak.cli import main


@pytest.fixture
def team(firebreak_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A team's MLflow (the home's) with its own experiment, and an empty policies folder."""
    import mlflow

    monkeypatch.setenv("FIREBREAK_POLICIES_DIR", str(tmp_path / "policies"))
    uri = f"sqlite:///{firebreak_home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # an earlier test's registry URI stays set in the process otherwise
    firebreak_home.mkdir(parents=True, exist_ok=True)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("team", artifact_location=str(tmp_path / "team")))
    return tmp_path


def register(model: Any, inputs: pd.DataFrame, name: str) -> None:
    """Log a fitted scikit-learn model with its signature and register it as ``name`` (version 1 first)."""
    import mlflow
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(inputs, model.predict(inputs)),
            registered_model_name=name,
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
        )


def onboard(team: Path, reference: pd.DataFrame, *args: str) -> int:
    """``firebreak onboard --reference <reference as Parquet> *args``; returns the exit code."""
    reference.to_parquet(team / "reference.parquet")
    return main(["onboard", "--reference", str(team / "reference.parquet"), *args])
