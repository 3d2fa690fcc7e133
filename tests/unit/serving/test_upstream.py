"""Reading ``--upstream URL`` and the upstream's answers (no server: the request path is in the integration tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from firebreak.errors import ConfigurationError, UpstreamError
from firebreak.policy.schema import load_policy
from firebreak.serving.upstream import UpstreamSpec, _answers, _mlflow_outputs, _v2_outputs
from tests import own_model


@pytest.mark.parametrize(
    ("url", "protocol", "endpoint", "chosen"),
    [
        ("http://127.0.0.1:5001", "auto", "http://127.0.0.1:5001/invocations", "mlflow"),
        ("http://models:5001/invocations", "auto", "http://models:5001/invocations", "mlflow"),
        ("http://kserve/v2/models/fraud", "auto", "http://kserve/v2/models/fraud/infer", "v2"),
        ("https://t:8000/v2/models/fraud/versions/3/", "auto", "https://t:8000/v2/models/fraud/versions/3/infer", "v2"),
        ("http://mlserver:8080/v2/models/fraud/infer", "v2", "http://mlserver:8080/v2/models/fraud/infer", "v2"),
    ],
)
def test_the_upstream_url_names_its_endpoint_and_protocol(url: str, protocol: str, endpoint: str, chosen: str) -> None:
    spec = UpstreamSpec.parse(url, protocol)
    assert (spec.url, spec.protocol) == (endpoint, chosen)


@pytest.mark.parametrize(
    ("url", "protocol", "message"),
    [
        ("ftp://host/models", "auto", "must be an http\\(s\\) URL"),
        ("models:5001", "auto", "must be an http\\(s\\) URL"),
        ("http://user:secret@host:5001", "auto", "must not carry credentials"),
        ("http://host:5001/v2/models", "v2", "is .../v2/models/<name>"),
        ("http://host:5001", "grpc", "protocol must be one of auto, mlflow, v2"),
    ],
)
def test_a_bad_upstream_is_refused_naming_the_problem(url: str, protocol: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        UpstreamSpec.parse(url, protocol)


def test_mlflow_answers_become_the_output_column_or_the_answered_columns() -> None:
    index = pd.RangeIndex(2)
    scalars = _mlflow_outputs({"predictions": [1, 0]}, "prediction", index, "u")
    assert scalars.to_dict("list") == {"prediction": [1, 0]}
    records = _mlflow_outputs({"predictions": [{"p": 1, "c": 0.9}, {"p": 0, "c": 0.8}]}, "p", index, "u")
    assert records.to_dict("list") == {"p": [1, 0], "c": [0.9, 0.8]}
    with pytest.raises(UpstreamError, match="answered 1 predictions for 2 rows"):
        _mlflow_outputs({"predictions": [1]}, "prediction", index, "u")


def test_v2_answers_map_tensors_to_columns_and_refuse_a_wrong_length() -> None:
    index = pd.RangeIndex(2)
    lone = _v2_outputs({"outputs": [{"name": "predict", "data": [[3.5], [4.5]]}]}, "price", index, "u")
    assert lone.to_dict("list") == {"price": [3.5, 4.5]}
    two = {"outputs": [{"name": "label", "data": ["a", "b"]}, {"name": "confidence", "data": [0.7, 0.9]}]}
    assert _v2_outputs(two, "label", index, "u").to_dict("list") == {"label": ["a", "b"], "confidence": [0.7, 0.9]}
    with pytest.raises(UpstreamError, match="has 3 values for 2 rows"):
        _v2_outputs({"outputs": [{"name": "predict", "data": [1, 2, 3]}]}, "price", index, "u")
    with pytest.raises(UpstreamError, match="no v2 'outputs'"):
        _v2_outputs({"error": "model not ready"}, "price", index, "u")


def test_serve_refuses_a_bad_upstream_before_starting_and_hands_a_good_one_to_every_worker(
    firebreak_home: object, tmp_path: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from firebreak.cli import main
    from firebreak.serving import app
    from tests import own_model

    monkeypatch.setenv("FIREBREAK_POLICIES_DIR", str(own_model.write_policy(Path(str(tmp_path)) / "files")))
    assert main(["serve", "--model", "payments", "--upstream", "ftp://models/fraud"]) == 2
    assert "--upstream must be an http(s) URL with a host" in capsys.readouterr().err
    monkeypatch.setenv("FIREBREAK_SERVE_UPSTREAM", "http://127.0.0.1:5001/v2/models/payments")
    monkeypatch.setenv("FIREBREAK_SERVE_UPSTREAM_PROTOCOL", "v2")
    assert app._upstream_from_env() == UpstreamSpec("http://127.0.0.1:5001/v2/models/payments/infer", "v2")
    monkeypatch.delenv("FIREBREAK_SERVE_UPSTREAM")
    assert app._upstream_from_env() is None


@pytest.mark.parametrize(
    ("answered", "message"),
    [
        ({"prediction": [1, float("nan")]}, "prediction=nan: not a value to serve"),
        ({"prediction": [1, float("inf")]}, "prediction=inf: not a value to serve"),
        ({"prediction": [1, None]}, "prediction=nan: not a value to serve"),  # pandas reads null as NaN
        ({"prediction": [1, {"nested": 1}]}, "prediction={'nested': 1}: not a value to serve"),
        ({"prediction": [1, 10**30]}, "prediction=1000000000000000000000000000000: not a value to serve"),
        ({"prediction": [1, "\ud800"]}, "not a value to serve"),  # a lone surrogate: no log can hold it
        ({"prediction": [1, 0], "confidence": [0.9, 5.0]}, "confidence=5.0: not a number in \\[0, 1\\]"),
        ({"prediction": [1, 0], "confidence": [0.9, None]}, "confidence=nan: not a number in \\[0, 1\\]"),
        ({"answer": [1, 0]}, "answered no 'prediction' \\(it answered 'answer'\\)"),
    ],
)
def test_an_upstream_answer_the_gateway_cannot_serve_fails_the_call(
    tmp_path: Path, answered: dict[str, list[Any]], message: str
) -> None:
    policy = load_policy(own_model.MODEL, own_model.write_policy(tmp_path))
    with pytest.raises(UpstreamError, match=message):
        _answers(pd.DataFrame(answered), policy, "u")


def test_an_upstream_answer_keeps_only_the_output_and_confidence_and_a_stated_regressor_answers_numbers(
    tmp_path: Path,
) -> None:
    policy = load_policy(own_model.MODEL, own_model.write_policy(tmp_path))
    forged = pd.DataFrame({"prediction": ["yes", "no"], "confidence": [0.9, 0.6], "request_id": "x", "model": "y"})
    assert _answers(forged, policy, "u").to_dict("list") == {"prediction": ["yes", "no"], "confidence": [0.9, 0.6]}
    regressor = policy.model_copy(update={"features": policy.features.model_copy(update={"task": "regression"})})
    assert _answers(pd.DataFrame({"prediction": [1.5, 2]}), regressor, "u")["prediction"].tolist() == [1.5, 2.0]
    with pytest.raises(UpstreamError, match="prediction='13.0': not a value to serve"):
        _answers(pd.DataFrame({"prediction": [1.5, "13.0"]}), regressor, "u")
