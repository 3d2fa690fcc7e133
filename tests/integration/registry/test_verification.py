"""Serve only what the gate verified (reliability case 32), on the pricing world's real MLflow and state DB.

A version written to MLflow outside Firebreak, an alias moved in MLflow directly, and an
artifact changed after Firebreak recorded it: the gateway and the workers' loader refuse
each, and the out-of-band move becomes an `unverified_promotion` alert the intake accepts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from firebreak.settings import Settings

pytestmark = pytest.mark.integration


class Rogue:
    """A pyfunc anyone with write access to MLflow could register: its load would run this code."""

    marker = ""

    def load_context(self, context: Any) -> None:
        Path(self.marker).write_text("rogue code ran")

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return pd.DataFrame({"recommended_price": 0.01, "confidence": 1.0}, index=model_input.index)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("verification")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIREBREAK_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        from firebreak.scenarios import pricing

        settings = Settings.from_env()
        pricing.setup(settings)
        yield settings


def register_outside_firebreak(settings: Settings, marker: Path) -> str:
    """Log and register a version with MLflow's own API, as the MLflow UI or a script would."""
    import mlflow
    from mlflow.pyfunc import PythonModel

    rogue = type("RogueModel", (Rogue, PythonModel), {"marker": str(marker)})()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=rogue, registered_model_name="pricing")
    return str(info.registered_model_version)


def test_an_out_of_band_champion_is_not_followed_not_loaded_and_opens_an_incident(
    world: Settings, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from firebreak.alerts.intake import receive
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.registry.verification import UnverifiedModel
    from firebreak.serving.gateway import Gateway

    marker = tmp_path / "rogue-ran"
    rogue = register_outside_firebreak(world, marker)
    marker.unlink(missing_ok=True)  # MLflow's own log_model loads it once to validate: not ours
    MlflowClient(world.mlflow_tracking_uri).set_registered_model_alias("pricing", "champion", rogue)  # the UI's move

    gateway = Gateway("pricing", world, refresh_seconds=3600)
    gateway.refresh()
    assert gateway.aliases.champion_version == "1"  # the ledger's champion, not the registry's
    assert gateway.describe()["version"] == "1"

    registry = Registry(world)
    with pytest.raises(UnverifiedModel, match=rf"pricing v{rogue} was never registered or promoted through Firebreak"):
        registry.load(registry.get_version("pricing", rogue))  # what every worker's load goes through
    assert not marker.exists(), "the rogue version's code ran"

    [alert_file] = sorted(world.alert_inbox_dir.glob("generic-unverified-pricing-*.json"))
    alert = json.loads(alert_file.read_text())
    assert alert["signal"] == "unverified_promotion:champion"
    assert alert["dedup_key"] == f"unverified_promotion:pricing:champion:v{rogue}"
    assert f"points at v{rogue} in MLflow, but Firebreak last moved it to v1" in alert["description"]
    gateway.refresh()  # the drift persists: still one alert
    assert len(list(world.alert_inbox_dir.glob("generic-unverified-pricing-*.json"))) == 1

    # The intake (as the alert_intake DAG calls it) opens the incident; a recording starter stands in
    # for Airflow's trigger_dag here (the HTTP and DAG paths have their own tests).
    started: list[tuple[str, dict[str, Any]]] = []
    result = receive(
        "generic",
        alert_file.read_bytes(),
        state_db_url=world.state_db_url,
        starter=lambda run_id, conf: started.append((run_id, conf)) is None,
        policies_dir=world.policies_dir,
    )
    assert result.status_code == 200 and result.alerts[0]["action"] == "opened"
    [(_, conf)] = started
    assert conf["model"] == "pricing" and conf["severity"] == "SEV2"
    assert conf["description"].startswith("pricing@champion points at v")


def test_an_artifact_changed_after_firebreak_recorded_it_is_never_loaded(world: Settings, tmp_path: Path) -> None:
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.registry.verification import UnverifiedModel, digest_of
    from firebreak.serving.gateway import Gateway
    from tests.state import State

    registry = Registry(world)
    v1 = registry.get_version("pricing", "1")
    recorded = State(world.state_db_url).ledger.digests("pricing", "1")
    assert recorded == {digest_of(registry, v1)}  # registration and the first release agree
    [entry] = [e for e in State(world.state_db_url).ledger.entries("pricing") if e.alias == "champion"][:1]
    assert entry.digest in recorded  # the release's ledger row carries the digest it verified

    stored = Path(registry.client.get_model_version_download_uri("pricing", "1").removeprefix("file://"))
    state = next(stored.rglob("state.json"))
    original = state.read_text()
    state.write_text(original.replace('"recipe": "holiday-v1"', '"recipe": "mine"'))  # write access suffices
    try:
        with pytest.raises(UnverifiedModel, match="pricing v1's artifacts changed since Firebreak recorded them"):
            registry.load(v1)
        gateway = Gateway("pricing", world, refresh_seconds=3600)
        gateway.refresh()
        assert gateway.aliases.champion is None  # not served; the policy's fallback answers instead
        assert gateway.describe()["route"] == "heuristic"
    finally:
        state.write_text(original)  # the module's other tests load v1


def test_firebreaks_own_models_are_logged_from_code_and_load_without_unpickling(world: Settings) -> None:
    import yaml

    from firebreak.registry import own_models
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.scenarios.pricing import PricingModel

    registry = Registry(world)
    stored = Path(registry.client.get_model_version_download_uri("pricing", "1").removeprefix("file://"))
    files = {p.name for p in stored.rglob("*") if p.is_file()}
    assert not [name for name in files if name.endswith((".pkl", ".pickle"))], files
    assert {"state.json", "pipeline.skops", "model_code.py"} <= files
    flavor = yaml.safe_load((stored / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["model_code_path"].endswith("model_code.py") and "python_model" not in flavor
    assert flavor["config"][own_models.KIND_KEY] == "pricing"
    loaded = own_models.python_model(registry.load(registry.get_version("pricing", "1")))
    assert isinstance(loaded, PricingModel) and loaded.recipe == "holiday-v1"
