"""Firebreak's own models as data: rebuilt exactly from their state, and nothing they do not trust is loaded."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import skops.io
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from firebreak.errors import RegistryError
from firebreak.registry import own_models
from firebreak.scenarios import bad_release, lending, pricing, support_bot


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return pricing.generate_history(seed=3, years=1, rows_per_day=6)


def round_trip(model: object, folder: Path) -> object:
    artifacts, config = own_models.save(model, folder)
    assert not list(folder.glob("*.pkl"))
    return own_models.restore(config, artifacts)


@pytest.mark.parametrize("train", [pricing.train_holiday_v1, pricing.train_seasonal_v2, bad_release.train_truncated_v2])
def test_a_pricing_model_is_rebuilt_from_data_and_answers_the_same(
    train: object, history: pd.DataFrame, tmp_path: Path
) -> None:
    model = train(history)  # type: ignore[operator]
    restored = round_trip(model, tmp_path)
    requests = pricing.generate_requests(5, 300, holiday=False)
    assert isinstance(restored, pricing.PricingModel) and restored.recipe == model.recipe
    pd.testing.assert_frame_equal(restored.predict_frame(requests), model.predict_frame(requests))


def test_a_loan_model_keeps_its_thresholds_and_summary(tmp_path: Path) -> None:
    applications = lending.generate_applications(4, 3000)
    model = lending.train_equal_quotas(applications)
    restored = round_trip(model, tmp_path)
    assert isinstance(restored, lending.LoanModel)
    assert (restored.thresholds, restored.training_summary) == (model.thresholds, model.training_summary)
    pd.testing.assert_frame_equal(restored.predict_frame(applications), model.predict_frame(applications))


def test_the_support_bot_keeps_its_knowledge_and_prompt(tmp_path: Path) -> None:
    model = support_bot.build_responder().configure("Answer only from the knowledge base.", temperature=0.3, seed=5)
    restored = round_trip(model, tmp_path)
    assert isinstance(restored, support_bot.SupportResponder)
    assert (restored.kb_version, restored.prompt_text, restored.temperature, restored.seed) == (
        model.kb_version,
        model.prompt_text,
        model.temperature,
        model.seed,
    )
    questions = ["Do students get a discount?", "My order never came and I am furious", "what is the moon made of"]
    assert [restored.answer(q) for q in questions] == [model.answer(q) for q in questions]


def test_a_part_holding_a_function_its_class_does_not_trust_is_refused_when_logged(
    history: pd.DataFrame, tmp_path: Path
) -> None:
    model = pricing.train_holiday_v1(history)
    model.pipeline = Pipeline([("anything", FunctionTransformer(os.getcwd))])
    with pytest.raises(RegistryError, match=r"holds types it does not trust: \['posix.getcwd'\]"):
        own_models.save(model, tmp_path)


def test_an_artifact_swapped_after_logging_is_refused_when_loaded(history: pd.DataFrame, tmp_path: Path) -> None:
    artifacts, config = own_models.save(pricing.train_holiday_v1(history), tmp_path)
    skops.io.dump(Pipeline([("anything", FunctionTransformer(os.getcwd))]), artifacts["pipeline"])
    with pytest.raises(RegistryError, match="part 'pipeline' of a PricingModel holds types it does not trust"):
        own_models.restore(config, artifacts)


def test_a_config_naming_any_other_class_is_refused(history: pd.DataFrame, tmp_path: Path) -> None:
    artifacts, _ = own_models.save(pricing.train_holiday_v1(history), tmp_path)
    for kind in ("os:system", "firebreak.scenarios.pricing:PricingModel", None):
        with pytest.raises(RegistryError, match="not one of Firebreak's own models"):
            own_models.restore({own_models.KIND_KEY: kind}, artifacts)


def test_loading_skops_in_an_airflow_process_writes_no_warnings() -> None:
    """An Airflow task that loads a model imports skops beside Airflow's deprecated modules, which warn on
    every attribute skops looks up at import (1,160 warnings in the task's log). Through Firebreak, none."""
    import json
    import subprocess
    import sys

    script = """
import json, sys, warnings
import airflow.sdk, airflow.utils.timezone, airflow.serialization.serde
from firebreak.registry.flavors import skops_io
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    sio = skops_io()
    quiet = len(caught)
    getattr(sys.modules["airflow.utils.timezone"], "agm", None)  # one of the lookups skops made, made here in the open
print(json.dumps({"import": quiet, "one_lookup": len(caught) - quiet, "ufuncs": len(sio._trusted_types.SCIPY_UFUNC_TYPE_NAMES)}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300)
    counts = json.loads(done.stdout.splitlines()[-1])
    assert counts["ufuncs"] > 100 and counts["one_lookup"] == 1, counts  # skops looked them all up; each warns
    assert counts["import"] == 0, counts
