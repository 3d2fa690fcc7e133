"""Alias moves against a real MLflow registry (SQLite): idempotent, audited, explicit on bad targets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.pyfunc import PythonModel
from sklearn.dummy import DummyRegressor

from firebreak.errors import RegistryError
from firebreak.registry.mlflow_registry import Registry
from firebreak.settings import Settings

pytestmark = pytest.mark.integration


class Constant(PythonModel):  # type: ignore[misc]
    """A pyfunc object: logged as such, MLflow would cloudpickle it."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return pd.DataFrame({"y": [1.0] * len(model_input)})


@pytest.fixture
def registry(firebreak_home: Path) -> Registry:
    settings = Settings.from_env()
    return Registry(settings)


def register(registry: Registry, value: float, *, run_name: str = "t", tags: dict[str, str] | None = None) -> str:
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    return registry.register(
        "toy",
        DummyRegressor(strategy="constant", constant=value).fit(frame, [value, value]),
        input_example=frame,
        reference=frame,
        tags={"firebreak.golden.mae": str(value)} if tags is None else tags,
        run_name=run_name,
    ).version


def test_move_alias_is_idempotent_and_audited(registry: Registry) -> None:
    v1, v2 = register(registry, 1.0), register(registry, 2.0)
    assert registry.move_alias("toy", "champion", v1, incident_id=None, actor="t", reason="release") is True
    assert registry.move_alias("toy", "champion", v1, incident_id=None, actor="t", reason="again") is False
    assert registry.move_alias("toy", "champion", v2, incident_id="i-1", actor="t", reason="promote") is True
    assert registry.aliases("toy") == {"champion": v2}
    ledger = registry.ledger.entries("toy")
    assert [(e.alias, e.old_version, e.new_version, e.status, e.incident_id) for e in ledger] == [
        ("champion", None, v1, "applied", None),
        ("champion", v1, v2, "applied", "i-1"),
    ]
    # Reading back what was registered: the reference data and the golden baseline.
    version = registry.get_version("toy", v2)
    assert registry.golden_baseline(version) == {"mae": 2.0}
    assert list(registry.reference_frame(version)["x"]) == [1.0, 2.0]


def test_rollback_reads_back_and_keeps_the_old_value_in_the_ledger(registry: Registry) -> None:
    """Reliability case 12: champion v3 -> v2; read-back shows v2; the ledger has the old value."""
    _, v2, v3 = register(registry, 1.0), register(registry, 2.0), register(registry, 3.0)
    registry.move_alias("toy", "champion", v3, incident_id=None, actor="t", reason="release")
    registry.move_alias("toy", "champion", v2, incident_id="i-9", actor="t", reason="rollback")
    champion = registry.version_for("toy", "champion")
    assert champion is not None and champion.version == v2
    last = registry.ledger.entries("toy")[-1]
    assert (last.old_version, last.new_version, last.status) == (v3, v2, "applied")


def test_a_deleted_target_is_an_explicit_error_and_changes_nothing(registry: Registry) -> None:
    """Reliability case 15: no silent fallback to another version."""
    v1, v2 = register(registry, 1.0), register(registry, 2.0)
    registry.move_alias("toy", "champion", v1, incident_id=None, actor="t", reason="release")
    registry.client.delete_model_version("toy", v2)
    with pytest.raises(RegistryError, match=f"model 'toy' has no version '{v2}'"):
        registry.move_alias("toy", "champion", v2, incident_id="i-1", actor="t", reason="promote")
    assert registry.aliases("toy") == {"champion": v1}
    assert len(registry.ledger.entries("toy")) == 1


def test_unset_alias_reads_as_none(registry: Registry) -> None:
    register(registry, 1.0)
    assert registry.version_for("toy", "last-known-good") is None
    with pytest.raises(RegistryError, match="model 'nope' is not registered"):
        registry.aliases("nope")


def test_a_re_run_finds_the_version_its_crashed_attempt_registered(registry: Registry) -> None:
    """A remediation task killed after registering, then retried, reuses that version."""
    # The crashed attempt: registered, but killed before tagging the version.
    crashed = registry.get_version("toy", register(registry, 3.0, run_name="inc-1-retrain", tags={}))
    register(registry, 4.0)  # another training run of the model, not this incident's
    found = registry.registered_by_run("toy", "inc-1-retrain", {"firebreak.incident_id": "inc-1"})
    assert found is not None and found.version == crashed.version
    assert registry.get_version("toy", crashed.version).tags["firebreak.incident_id"] == "inc-1"
    assert registry.registered_by_run("toy", "inc-2-retrain", {}) is None
    assert registry.registered_by_run("toy", "t", {}) is not None  # by run name, whatever the model
    assert registry.registered_by_run("other", "inc-1-retrain", {}) is None


def test_a_pickled_python_model_is_refused_and_nothing_is_registered(registry: Registry) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(RegistryError, match="never a pickled PythonModel"):
        registry.register("toy", Constant(), input_example=frame, reference=frame, tags={}, run_name="t")
    assert registry.client.search_model_versions("name='toy'") == []
