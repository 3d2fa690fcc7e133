"""Every name MLflow accepts is a model name; files and partitions use a stem that never collides."""

from __future__ import annotations

import pytest

from firebreak.model_names import ModelNameError, check_model_name, model_stem
from firebreak.prediction_log import PredictionLog


@pytest.mark.parametrize("name", ["FraudDetector", "main.fraud.detector", "Fraud Detector v2", "crédit", "pricing"])
def test_names_mlflow_accepts_are_model_names(name: str) -> None:
    assert check_model_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a/b", "'/'"),
        ("ns:model", "':'"),
        ("..", "'..'"),
        ("x..y", "'..'"),
        ("back\\slash", "'\\\\'"),
        ("bell\x07", "control character"),
        (" padded", "whitespace"),
        ("m" * 101, "at most 100"),
        ("", "non-empty"),
    ],
)
def test_unusable_names_are_refused_naming_the_problem(name: str, problem: str) -> None:
    with pytest.raises(ModelNameError, match="not a valid model name") as refused:
        check_model_name(name)
    assert problem in str(refused.value)


def test_plain_names_are_their_own_stem_and_others_never_collide() -> None:
    assert model_stem("FraudDetector") == "FraudDetector"
    assert model_stem("main.fraud.detector") == "main.fraud.detector"
    spaced, underscored = model_stem("Fraud Detector"), model_stem("Fraud_Detector")
    assert spaced != underscored and spaced.startswith("Fraud_Detector-")
    assert model_stem("Fraud Detector") == spaced  # deterministic
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in model_stem("évil <name> &; rm -rf"))


def test_the_prediction_log_files_any_name_under_its_stem(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    rows = pd.DataFrame(
        {
            "request_id": ["a"],
            "ts": [pd.Timestamp("2026-01-01T10:00Z")],
            "model": ["Fraud Detector"],
            "model_version": ["1"],
            "route": ["champion"],
        }
    )
    log = PredictionLog(tmp_path)
    (written,) = log.append(rows)
    assert f"model={model_stem('Fraud Detector')}/" in written
    assert list(log.read("Fraud Detector")["request_id"]) == ["a"]
    assert log.read("Fraud_Detector").empty
