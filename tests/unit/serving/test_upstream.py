"""Reading ``--upstream URL`` and the upstream's answers (no server: the request path is in the integration tests)."""

from __future__ import annotations

import pandas as pd
import pytest

from firebreak.errors import ConfigurationError, UpstreamError
from firebreak.serving.upstream import UpstreamSpec, _mlflow_outputs, _v2_outputs


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
