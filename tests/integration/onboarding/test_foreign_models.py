"""``firebreak onboard`` on models the project did not write, registered the way teams do.

Real MLflow (SQLite), real scikit-learn and pyfunc models, the command as a user runs it.
Each case either onboards with a policy that fits the model, or exits 2 naming the problem
and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.integration.onboarding.conftest import onboard, register

pytestmark = pytest.mark.integration


def _diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame  # shipped with scikit-learn


def _progression() -> pd.DataFrame:
    """The diabetes table; a gradient-boosting regressor of its target registered as ``Progression`` v1."""
    from sklearn.ensemble import GradientBoostingRegressor

    frame = _diabetes()
    inputs = frame.drop(columns="target")
    register(GradientBoostingRegressor(random_state=0).fit(inputs, frame["target"]), inputs, "Progression")
    return frame


def _policy(team: Path) -> dict[str, Any]:
    (path,) = (team / "policies").glob("*.yaml")
    return dict(yaml.safe_load(path.read_text()))


def test_a_regressor_whose_error_is_in_large_units_onboards_with_its_measured_slack(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    frame = _progression()  # the target runs from 25 to 346: an MAE of tens
    assert onboard(team, frame, "--model", "Progression", "--label", "target") == 0, capsys.readouterr().err
    policy = _policy(team)
    assert policy["features"]["task"] == "regression" and policy["gate"]["metric"] == "mae"
    assert policy["gate"]["golden_slack"] > 1  # in the label's units: the refit's optimism gap


def test_a_regressor_of_whole_numbers_is_a_regressor(team: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    frame = _diabetes()
    frame["severity"] = pd.qcut(frame.pop("target"), 10, labels=False).astype(int) + 1  # 1 .. 10
    inputs = frame.drop(columns="severity")
    register(GradientBoostingRegressor(random_state=0).fit(inputs, frame["severity"]), inputs, "Severity")
    assert onboard(team, frame, "--model", "Severity", "--label", "severity") == 0, capsys.readouterr().err
    policy = _policy(team)
    assert policy["features"]["task"] == "regression" and policy["gate"]["metric"] == "mae"
    assert "GradientBoostingRegressor" in capsys.readouterr().out  # the reason is the model's own


def test_a_model_answering_in_other_columns_is_refused_naming_them(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow
    import mlflow.pyfunc

    class TwoColumns(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
            score = 1 / (1 + np.exp(-(model_input["x1"] - model_input["x2"])))
            return pd.DataFrame({"label": (score > 0.5).astype(int), "score": score})

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=400), "x2": rng.normal(size=400)})
    frame["y"] = (frame["x1"] > frame["x2"]).astype(int)
    with mlflow.start_run():
        mlflow.pyfunc.log_model(name="model", python_model=TwoColumns(), registered_model_name="Scorer")
    assert onboard(team, frame, "--model", "Scorer", "--label", "y") == 2
    assert "Scorer v1 answers with columns ['label', 'score'], not 'prediction': name its column with --output" in (
        capsys.readouterr().err
    )
    assert not (team / "policies").exists() or not any((team / "policies").iterdir())


def test_a_threshold_free_metric_for_three_classes_is_refused(team: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    frame = load_iris(as_frame=True).frame
    inputs = frame.drop(columns="target")
    register(LogisticRegression(max_iter=500).fit(inputs, frame["target"]), inputs, "Species")
    assert onboard(team, frame, "--model", "Species", "--label", "target", "--metric", "auc") == 2
    assert "--metric auc needs two classes; label column 'target' holds 3" in capsys.readouterr().err


def test_a_name_with_an_emoji_and_a_space_round_trips_and_is_quoted_in_the_hint(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"f1": rng.normal(size=300), "f2": rng.normal(size=300)})
    frame["y"] = (frame["f1"] > 0).astype(int)
    name = "Modèle Crédit 🚀 v2"
    register(LogisticRegression().fit(frame[["f1", "f2"]], frame["y"]), frame[["f1", "f2"]], name)
    assert onboard(team, frame, "--model", name, "--label", "y") == 0, capsys.readouterr().err
    assert _policy(team)["model"] == name
    assert "`firebreak check 'Modèle Crédit 🚀 v2'`" in capsys.readouterr().out


def _register_unnamed(model: Any, name: str) -> None:
    """As teams log a model fitted on an array: no signature, no column names anywhere."""
    import mlflow
    import mlflow.sklearn
    import skops.io

    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
        )


def _cancer_fitted_on_an_array() -> pd.DataFrame:
    """Registers "Cancer", a pipeline fitted on the breast-cancer table as an array, without a
    signature; returns the table (shipped with scikit-learn)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_breast_cancer(as_frame=True).frame
    inputs = frame.drop(columns="target").to_numpy()
    _register_unnamed(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(inputs, frame["target"]), "Cancer"
    )
    return frame


def _untouched(team: Path, name: str) -> None:
    """Nothing written: no policy files, no alias, no version beside the team's own."""
    from mlflow import MlflowClient

    assert not (team / "policies").exists() or not any((team / "policies").iterdir())
    client = MlflowClient()
    assert client.get_registered_model(name).aliases == {}
    assert [str(v.version) for v in client.search_model_versions(f"name = '{name}'")] == ["1"]


def test_a_model_fed_its_inputs_in_another_order_is_refused_until_the_weak_baseline_is_accepted(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _cancer_fitted_on_an_array()
    inputs = frame.drop(columns="target")
    reordered = frame[[*reversed(inputs.columns), "target"]]  # the team's table, columns in another order
    assert onboard(team, reordered, "--model", "Cancer", "--label", "target") == 2
    err = capsys.readouterr().err
    assert (
        "Cancer v1 scores auc 0.5000 on the 114 golden rows of its reference, no better than always answering 1" in err
    )
    assert "a Pipeline refitted on the reference's other rows scores 0.9" in err  # the data is learnable
    assert "the model names no inputs (no signature, fitted on an array)" in err
    assert "pass --allow-weak-baseline" in err
    _untouched(team, "Cancer")

    assert onboard(team, reordered, "--model", "Cancer", "--label", "target", "--allow-weak-baseline") == 0
    out = capsys.readouterr().out
    assert "note          weak baseline recorded as asked (--allow-weak-baseline): Cancer v1 scores auc 0.5000" in out
    assert _policy(team)["model"] == "Cancer"


def test_a_model_without_input_names_onboards_on_the_references_order_and_says_so(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    frame = _cancer_fitted_on_an_array()
    assert onboard(team, frame, "--model", "Cancer", "--label", "target") == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "note          the model names no inputs (no signature, fitted on an array), so it is given the " in out
    assert "['mean radius', 'mean texture'," in out
    golden_auc = float(MlflowClient().get_model_version("Cancer", "1").tags["firebreak.golden.auc"])
    assert golden_auc > 0.95


def test_a_reference_whose_label_is_in_other_units_is_refused_naming_units_and_label(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    frame = _progression()
    hundredths = frame.assign(target=frame["target"] / 100)  # the reference's label in other units
    assert onboard(team, hundredths, "--model", "Progression", "--label", "target") == 2
    err = capsys.readouterr().err
    assert "Progression v1 scores mae 147.8" in err  # in the model's units
    assert "no better than always answering 1.38 (0.633" in err  # the golden rows' median, in the reference's
    assert "the same units and codes) and that --label 'target' is the column it predicts" in err
    _untouched(team, "Progression")


def test_onboarding_again_as_another_task_fits_a_new_fallback_and_alike_reuses_it(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow
    import mlflow.pyfunc
    from mlflow import MlflowClient

    class Severity(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
            answer = np.clip(np.round(5.5 + 2 * model_input["x1"] - model_input["x2"]), 1, 10).astype(int)
            return pd.DataFrame({"prediction": answer})

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x1": rng.normal(size=600), "x2": rng.normal(size=600)})
    frame["severity"] = np.clip(np.round(5.5 + 2 * frame["x1"] - frame["x2"] + rng.normal(0, 0.3, 600)), 1, 10)
    frame["severity"] = frame["severity"].astype(int)
    with mlflow.start_run():
        mlflow.pyfunc.log_model(name="model", python_model=Severity(), registered_model_name="Triage Score")
    args = ("--model", "Triage Score", "--label", "severity")
    client = MlflowClient()

    assert onboard(team, frame, *args) == 0, capsys.readouterr().err  # whole numbers: classes, at first
    assert "baseline logistic regression on the same inputs" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("Triage Score", "fallback").version) == "2"

    assert onboard(team, frame, *args, "--task", "regression", "--force") == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "baseline ridge regression on the same inputs" in out
    assert "(the baseline v2 an earlier onboarding registered was fitted for classification of 'severity'" in out
    fallback = client.get_model_version_by_alias("Triage Score", "fallback")
    assert str(fallback.version) == "3"
    assert fallback.tags["firebreak.fallback_fitted_on"].startswith("regression of 'severity' on 2 inputs")

    assert onboard(team, frame, *args, "--task", "regression", "--force") == 0, capsys.readouterr().err
    assert "v3 is the baseline an earlier onboarding of v1 registered" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("Triage Score", "fallback").version) == "3"


@pytest.mark.parametrize("answer", ["series", "array", "list"])
def test_a_pyfunc_answering_bare_values_is_read_as_its_output_column(
    team: Path, capsys: pytest.CaptureFixture[str], answer: str
) -> None:
    import mlflow
    import mlflow.pyfunc
    from mlflow import MlflowClient

    class Bare(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def __init__(self, kind: str) -> None:
            self.kind = kind

        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            decided = (model_input["x1"] > model_input["x2"]).astype(int)
            return {"series": decided, "array": decided.to_numpy(), "list": decided.tolist()}[self.kind]

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x1": rng.normal(size=400), "x2": rng.normal(size=400)})
    frame["y"] = (frame["x1"] > frame["x2"]).astype(int)
    with mlflow.start_run():
        mlflow.pyfunc.log_model(name="model", python_model=Bare(answer), registered_model_name="Bare")
    assert onboard(team, frame, "--model", "Bare", "--label", "y") == 0, capsys.readouterr().err
    assert float(MlflowClient().get_model_version("Bare", "1").tags["firebreak.golden.accuracy"]) == 1.0


def test_a_label_that_holds_none_of_the_models_classes_is_refused(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"income": rng.normal(50, 10, 500), "debt": rng.normal(20, 5, 500)})
    frame["decision"] = np.where(frame["income"] - 2 * frame["debt"] > 10, "approve", "refer")
    inputs = frame[["income", "debt"]]
    register(LogisticRegression().fit(inputs, frame["decision"]), inputs, "Loans")
    recoded = frame.assign(decision=(frame["decision"] == "approve").astype(int))  # the team's 0/1 copy
    assert onboard(team, recoded, "--model", "Loans", "--label", "decision") == 2
    err = capsys.readouterr().err
    assert "Loans v1 answers ['" in err and "none of which is a value of --label 'decision' ([0, 1])" in err
    _untouched(team, "Loans")


def test_a_model_answering_class_names_gets_fairness_figures_once_its_selecting_class_is_named(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ "approve"/"refer" answers: which one selects is the team's to say; then every fairness figure reads it."""
    from sklearn.linear_model import LogisticRegression

    from firebreak.detection.fairness import fairness_on
    from firebreak.policy.schema import load_policy
    from firebreak.settings import Settings

    rng = np.random.default_rng(8)
    frame = pd.DataFrame(
        {"income": rng.normal(50, 10, 600), "debt": rng.normal(20, 5, 600), "band": rng.integers(0, 2, 600)}
    )
    frame["decision"] = np.where(frame["income"] - 2 * frame["debt"] - 12 * frame["band"] > 5, "approve", "refer")
    inputs = frame[["income", "debt", "band"]]
    register(LogisticRegression(max_iter=1000).fit(inputs, frame["decision"]), inputs, "Loans")
    argv = ["--model", "Loans", "--label", "decision", "--protected", "band"]
    assert onboard(team, frame, *argv) == 2
    assert "or --positive-class naming the class that counts as selected; 'decision' holds ['approve', 'refer']" in (
        capsys.readouterr().err
    )
    assert onboard(team, frame, *argv, "--positive-class", "approved") == 2
    assert "--positive-class 'approved' is not a class of 'decision' (['approve', 'refer'])" in capsys.readouterr().err
    assert onboard(team, frame, *argv[:4], "--positive-class", "approve") == 2
    assert "--positive-class names the selected class of a classifier's fairness figures: it goes with --protected" in (
        capsys.readouterr().err
    )
    _untouched(team, "Loans")

    assert onboard(team, frame, *argv, "--positive-class", "approve") == 0, capsys.readouterr().err
    assert _policy(team)["fairness"]["positive_class"] == "approve"
    policy = load_policy("Loans", Settings.from_env().policies_dir)
    answers = pd.DataFrame({"prediction": frame["decision"]})
    result = fairness_on(frame, answers, policy).to_dict()
    approved = (frame["decision"] == "approve").groupby(frame["band"]).mean()
    assert result["groups"]["0"]["selection_rate"] == round(approved[0], 4)
    assert result["groups"]["1"]["selection_rate"] == round(approved[1], 4)
    assert result["breached"] is True and result["worst"] == "1"  # band 1 approved far less: four-fifths rule


def test_a_champion_far_behind_a_refit_on_its_own_reference_onboards_with_a_warning(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(1500, 4)), columns=["x1", "x2", "x3", "x4"])
    frame["y"] = ((2 * frame["x1"] + 0.7 * frame["x2"] + rng.normal(0, 0.7, 1500)) > 0).astype(int)
    _register_unnamed(LogisticRegression().fit(frame[["x1", "x2", "x3", "x4"]].to_numpy(), frame["y"]), "Swapped")
    swapped = frame[["x2", "x1", "x3", "x4", "y"]]  # two inputs in each other's place: better than a coin
    assert onboard(team, swapped, "--model", "Swapped", "--label", "y") == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "note          a LogisticRegression refitted on the reference's other rows scores auc 0.9" in out
    assert "check the reference's column order, units and --label (the model names no inputs" in out
    assert "(no better: nothing to allow for)" in out  # the slack's reason does not claim it saw them


def test_one_run_registered_under_two_names_keeps_a_drift_reference_for_each(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A team registers one trained model twice (all patients; the under-45 clinic) and onboards each with its own reference."""
    import mlflow

    from firebreak.registry.mlflow_registry import Registry
    from firebreak.settings import Settings

    frame = _progression()
    registry = Registry(Settings.from_env())
    first = registry.get_version("Progression", "1")
    mlflow.register_model(f"runs:/{first.run_id}/model", "Progression Young")  # the same run, another name
    young = frame[frame["age"] < 0]  # the table's ages are centred: the younger half
    assert onboard(team, frame, "--model", "Progression", "--label", "target") == 0, capsys.readouterr().err
    assert onboard(team, young, "--model", "Progression Young", "--label", "target", "--fallback", "disable") == 0, (
        capsys.readouterr().err
    )
    second = registry.get_version("Progression Young", "1")
    assert second.run_id == first.run_id
    assert len(registry.reference_frame(first)) == len(frame)  # not replaced by the second onboarding
    assert len(registry.reference_frame(second)) == len(young)
    assert f"runs:/{first.run_id}/reference/Progression/v1/reference.parquet" in capsys.readouterr().out


def test_check_fails_a_champion_moved_by_hand_to_a_version_firebreak_never_recorded(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient
    from sklearn.ensemble import GradientBoostingRegressor

    from firebreak.cli import main

    frame = _progression()
    assert onboard(team, frame, "--model", "Progression", "--label", "target") == 0, capsys.readouterr().err
    assert main(["check", "Progression"]) == 0, capsys.readouterr().out
    assert "v1, its artifacts as Firebreak recorded them" in capsys.readouterr().out
    inputs = frame.drop(columns="target")
    register(GradientBoostingRegressor(random_state=1, max_depth=2).fit(inputs, frame["target"]), inputs, "Progression")
    client = MlflowClient()
    newest = max(int(v.version) for v in client.search_model_versions("name = 'Progression'"))
    client.set_registered_model_alias("Progression", "champion", str(newest))  # by hand, outside Firebreak
    assert main(["check", "Progression"]) != 0
    out = capsys.readouterr().out
    assert "FAIL  champion" in out and f"v{newest} was never registered or promoted through Firebreak" in out, out
