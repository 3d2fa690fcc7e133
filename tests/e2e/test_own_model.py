"""A team's own model put under Firebreak with the CLI only (issue: "Put your own model under Firebreak").

The team's side is plain code any team would have: statsmodels' shipped ``fair`` survey data
(no scenario uses it; nothing is downloaded), a ``ColumnTransformer`` + ``HistGradientBoosting``
pipeline with string categoricals logged with plain ``mlflow.sklearn.log_model``, served by a
real ``mlflow models serve``, and the team's own request log and late labels as CSV files.
Firebreak's side is only ``firebreak`` commands and the files they write: ``onboard``,
``check``, ``serve --upstream``, ``log import``, ``labels import``, ``open``. Assertions read
what a user would look at: the files, MLflow's aliases and tags, the gateway's answers, the
incident's outcome.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from firebreak_dev.services import free_port

pytestmark = pytest.mark.e2e

MODEL = "AffairRisk"  # a name the old rule refused: capitals
LABEL = "had_affair"
JOBS = {1: "student", 2: "farming", 3: "white-collar", 4: "teacher", 5: "professional", 6: "business"}
BIN = Path(sys.executable).parent
INCLUDE = Path(__file__).resolve().parents[2] / "include"


@dataclass
class Team:
    folder: Path
    env: dict[str, str]

    def firebreak(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "firebreak"), *args],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def mlflow(self) -> Any:
        from mlflow import MlflowClient

        uri = self.env["MLFLOW_TRACKING_URI"]
        return MlflowClient(tracking_uri=uri, registry_uri=uri)  # never this process's global registry

    def aliases(self) -> dict[str, str]:
        return {alias: str(v) for alias, v in self.mlflow().get_registered_model(MODEL).aliases.items()}


def survey() -> pd.DataFrame:
    """The team's labelled table: statsmodels' ``fair`` survey, occupations as names."""
    import statsmodels.api as sm

    data = sm.datasets.fair.load_pandas().data
    for column in ("occupation", "occupation_husb"):
        data[column] = data[column].astype(int).map(JOBS)
    data[LABEL] = (data.pop("affairs") > 0).astype(int)
    return data.sample(frac=1.0, random_state=0).reset_index(drop=True)


TRAIN = """
import sys
import mlflow, mlflow.sklearn, pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

data = pd.read_parquet(sys.argv[1])
X, y = data.drop(columns="had_affair"), data["had_affair"]
columns = ColumnTransformer(
    [("jobs", OneHotEncoder(handle_unknown="ignore"), ["occupation", "occupation_husb"])], remainder="passthrough"
)
model = Pipeline([("columns", columns), ("model", HistGradientBoostingClassifier(max_iter=100, random_state=0))])
model.fit(X, y)
with mlflow.start_run():
    mlflow.sklearn.log_model(
        model, name="model", registered_model_name="AffairRisk", input_example=X.head(3),
        serialization_format="cloudpickle",
    )
"""


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """The team's folder: its reference table, its model registered in MLflow by its own script."""
    folder = tmp_path_factory.mktemp("own-model")
    home = folder / "firebreak"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREBREAK_", "MLFLOW_", "AIRFLOW_"))}
    env |= {
        "FIREBREAK_HOME": str(home),
        "FIREBREAK_POLICIES_DIR": str(folder / "policies"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(INCLUDE), os.environ.get("PYTHONPATH", "")]),
    }
    survey().to_parquet(folder / "reference.parquet", index=False)
    (folder / "train.py").write_text(TRAIN)
    trained = subprocess.run(
        [sys.executable, "train.py", "reference.parquet"], env=env, cwd=folder, capture_output=True, text=True
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    yield Team(folder, env)


def test_onboarding_writes_reviewable_files_records_baselines_and_picks_a_fallback(team: Team) -> None:
    refused = team.firebreak("onboard", "--model", "NoSuchModel", "--reference", "reference.parquet", "--label", LABEL)
    assert refused.returncode == 2 and "'NoSuchModel' is not registered in MLflow" in refused.stderr
    no_label = team.firebreak("onboard", "--model", MODEL, "--reference", "reference.parquet", "--label", "outcome")
    assert no_label.returncode == 2 and "outcome" in no_label.stderr
    pd.DataFrame(columns=["age", LABEL]).to_parquet(team.folder / "empty.parquet")
    empty = team.firebreak("onboard", "--model", MODEL, "--reference", "empty.parquet", "--label", LABEL)
    assert empty.returncode == 2 and "empty" in empty.stderr
    assert not (team.folder / "policies").exists() or not list((team.folder / "policies").iterdir())
    assert team.aliases() == {}  # nothing recorded by the refusals

    done = team.firebreak(
        "onboard", "--model", MODEL, "--reference", "reference.parquet", "--label", LABEL, "--protected", "occupation"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fallback      fallback_model: baseline logistic regression" in done.stdout
    assert "no last-known-good version" in done.stdout  # it says why
    assert "golden slack  " in done.stdout and "measured: a clone fitted without the golden rows" in done.stdout

    policy = yaml.safe_load((team.folder / "policies" / f"{MODEL}.yaml").read_text())
    assert policy["model"] == MODEL and policy["features"]["task"] == "classification"
    assert policy["features"]["categorical"] == ["occupation", "occupation_husb"]
    assert policy["gate"]["metric"] == "auc" and policy["fairness"]["protected_attribute"] == "occupation"
    contract = json.loads((team.folder / "policies" / MODEL / "contract.json").read_text())
    in_set = {e["kwargs"]["column"]: e["kwargs"]["value_set"] for e in contract["expectations"] if "set" in e["type"]}
    assert sorted(in_set["occupation"]) == sorted(JOBS.values())
    golden = pd.read_parquet(team.folder / "policies" / MODEL / "golden.parquet")
    reference = pd.read_parquet(team.folder / "reference.parquet")
    assert LABEL in golden.columns and 0.1 * len(reference) <= len(golden) <= 0.3 * len(reference)
    assert abs(golden[LABEL].mean() - reference[LABEL].mean()) < 0.01  # stratified by the label

    client = team.mlflow()
    aliases = team.aliases()
    assert aliases["champion"] == "1" and aliases["fallback"] == "2"
    champion = client.get_model_version(MODEL, "1")
    assert 0.7 < float(champion.tags["firebreak.golden.auc"]) <= 1.0
    groups = json.loads(champion.tags["firebreak.golden_groups"])
    assert groups["attribute"] == "occupation" and "professional" in groups["groups"]
    assert client.get_model_version(MODEL, "2").tags["firebreak.fallback_for"] == "1"

    again = team.firebreak("onboard", "--model", MODEL, "--reference", "reference.parquet", "--label", LABEL)
    assert again.returncode == 2 and "already onboarded" in again.stderr and "--force" in again.stderr

    # The team reviews: its occupations were never selected at equal rates (the champion itself fails
    # the four-fifths rule on the golden rows), so it onboards again without a protected attribute.
    redone = team.firebreak(
        "onboard", "--model", MODEL, "--reference", "reference.parquet", "--label", LABEL, "--force"
    )
    assert redone.returncode == 0, redone.stderr[-3000:]
    assert "v2 is the baseline an earlier onboarding of v1 registered" in redone.stdout  # not registered twice
    assert "fairness" not in yaml.safe_load((team.folder / "policies" / f"{MODEL}.yaml").read_text())
    assert team.aliases() == aliases

    checked = team.firebreak("check", MODEL)
    assert checked.returncode == 0, checked.stdout + checked.stderr[-2000:]
    assert "every part works" in checked.stdout
    golden_file = team.folder / "policies" / MODEL / "golden.parquet"
    moved = golden_file.rename(golden_file.with_suffix(".away"))
    try:
        broken = team.firebreak("check", MODEL)
    finally:
        moved.rename(golden_file)
    assert broken.returncode != 0 and "golden" in broken.stdout

    valid = team.firebreak("policy", "validate", f"policies/{MODEL}.yaml")
    assert valid.returncode == 0 and f"valid policy for {MODEL!r}" in valid.stdout, valid.stdout + valid.stderr
    text = (team.folder / "policies" / f"{MODEL}.yaml").read_text()
    (team.folder / "edited.yaml").write_text(text.replace("metric: auc", "metric: rmse"))
    invalid = team.firebreak("policy", "validate", "edited.yaml")
    assert invalid.returncode == 2 and "gate.metric 'rmse' does not apply to a classification model" in invalid.stderr


@pytest.fixture(scope="module")
def upstream(team: Team) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The team's own server: ``mlflow models serve`` of the champion."""
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion", "--env-manager", "local"]
        + ["--host", "127.0.0.1", "-p", str(port)],
        env=team.env,
        cwd=team.folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/ping", proc, "mlflow models serve")
    rows = records(survey().drop(columns=LABEL).head(1))
    warm = httpx.post(f"{url}/invocations", json={"dataframe_records": rows}, timeout=120)  # it loads lazily
    assert warm.status_code == 200, warm.text[:500]
    yield url, proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def wait_for(url: str, proc: subprocess.Popen[Any], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{what} did not answer {url} within {timeout} s"
        time.sleep(0.5)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in frame.to_dict("records")]


def test_the_gateway_fronts_the_teams_server_and_a_dead_server_leaves_users_on_the_fallback(
    team: Team, upstream: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, proc = upstream
    policy = team.folder / "policies" / f"{MODEL}.yaml"
    if "\nserving:" not in policy.read_text():  # the team knows its server: slow on a busy host, never 10 s
        policy.write_text(policy.read_text() + "serving:\n  upstream:\n    timeout_seconds: 10\n")
    rows = survey().drop(columns=LABEL).sample(60, random_state=3)
    port = free_port()
    gateway = subprocess.Popen(
        [str(BIN / "firebreak"), "serve", "--model", MODEL, "--port", str(port), "--upstream", url],
        env=team.env,
        cwd=team.folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/ready", gateway, "firebreak serve")
        users = [  # the service's users, each on its own address: no single caller trips the breaker
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                transport=httpx.HTTPTransport(local_address=f"127.0.0.{n}"),
                timeout=30,
            )
            for n in (21, 22, 23)
        ]

        def ask(batch: pd.DataFrame) -> list[httpx.Response]:
            return [
                users[i % 3].post("/invocations", json={"dataframe_records": [r]}) for i, r in enumerate(records(batch))
            ]

        before = ask(rows[:20])
        direct = httpx.post(f"{url}/invocations", json={"dataframe_records": records(rows[:20])}, timeout=30)
        os.killpg(proc.pid, signal.SIGKILL)  # the team's server dies
        proc.wait(timeout=30)
        after = ask(rows[20:])
        serving = users[0].get("/serving").json()
        for user in users:
            user.close()
    finally:
        os.killpg(gateway.pid, signal.SIGTERM)
        gateway.wait(timeout=90)
    assert {a.headers["X-Firebreak-Route"] for a in before} == {"champion"}
    assert [a.json()["predictions"][0]["prediction"] for a in before] == [
        p if not isinstance(p, dict) else p.get("prediction", p) for p in direct.json()["predictions"]
    ]
    assert [a.status_code for a in after] == [200] * 40  # users never see the failure
    assert {a.headers["X-Firebreak-Route"] for a in after} == {"fallback_model"}
    assert {a.headers["X-Firebreak-Model-Version"] for a in after} == {"2"}  # the baseline onboarding registered
    assert serving["breaker"]["state"] == "open"
    reset = team.firebreak("breaker", "close", "--model", MODEL, "--reason", "the team restarted its server")
    assert reset.returncode == 0, reset.stderr


MAP = ("--map", "req=request_id", "--map", "timestamp=ts", "--map", "predicted=prediction")  # the team's names


def team_log(team: Team, name: str, frame: pd.DataFrame, predictions: np.ndarray) -> Path:
    """The team's own request log: its column names, its time stamps, its ids."""
    now = pd.Timestamp.now(tz="UTC")
    log = frame.drop(columns=LABEL).copy()
    log.insert(0, "req", [f"{name}-{i:05d}" for i in range(len(log))])
    log.insert(1, "timestamp", [now - pd.Timedelta(seconds=2 * (len(log) - i)) for i in range(len(log))])
    log["predicted"] = predictions
    path = team.folder / f"{name}.csv"
    log.to_csv(path, index=False)
    return path


SCORE = """
import sys
import mlflow, pandas as pd

model = mlflow.pyfunc.load_model("models:/AffairRisk@champion")
rows = pd.read_parquet(sys.argv[1])
pd.DataFrame({"predicted": model.predict(rows)}).to_parquet(sys.argv[2])
"""


def score(team: Team, frame: pd.DataFrame) -> np.ndarray:
    """What the team's server answered: the team's own script scores the rows with the champion."""
    (team.folder / "score.py").write_text(SCORE)
    frame.drop(columns=LABEL).to_parquet(team.folder / "rows.parquet", index=False)
    done = subprocess.run(
        [sys.executable, "score.py", "rows.parquet", "answers.parquet"],
        env=team.env,
        cwd=team.folder,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return pd.read_parquet(team.folder / "answers.parquet")["predicted"].to_numpy().astype(int)


def test_a_drift_incident_refits_the_champion_and_promotes_it_through_the_gate(team: Team) -> None:
    reference = survey()
    rng = np.random.default_rng(1)
    weights = np.exp((reference["age"] - reference["age"].mean()) / 4.0)  # an older clientele, in the usual range
    traffic = reference.sample(3000, random_state=2, replace=True, weights=weights).reset_index(drop=True)
    traffic[LABEL] = ((traffic["rate_marriage"] <= 3) | (rng.random(len(traffic)) < 0.1)).astype(int)  # a new relation
    path = team_log(team, "drift", traffic, score(team, traffic))
    imported = team.firebreak("log", "import", "--model", MODEL, str(path), *MAP)
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert '"rows": 3000' in imported.stdout and "v1 is champion now" in imported.stdout
    traffic.assign(req=[f"drift-{i:05d}" for i in range(len(traffic))])[["req", LABEL]].rename(
        columns={LABEL: "outcome"}
    ).to_csv(team.folder / "labels.csv", index=False)
    labelled = team.firebreak(
        "labels", "import", "--model", MODEL, "labels.csv", "--id-column", "req", "--label", "outcome"
    )
    assert labelled.returncode == 0, labelled.stderr[-2000:]

    opened = team.firebreak("open", "--model", MODEL, "--description", "older clientele since the campaign", "--json")
    outcome = json.loads(opened.stdout)
    assert opened.returncode == 0, (outcome, opened.stderr[-2000:])
    assert outcome["status"] == "resolved" and outcome["failure_class"] == "drift", outcome
    assert outcome["remediation"]["choice"] == "retrain" and outcome["gate"]["passed"] is True, outcome
    candidate = outcome["remediation"]["candidate_version"]
    aliases = team.aliases()
    assert aliases["champion"] == candidate != "1" and aliases["last-known-good"] == "1"
    assert Path(outcome["postmortem"]).is_file()


def test_a_units_change_upstream_is_contained_and_waits_for_the_upstream_fix(team: Team) -> None:
    traffic = survey().sample(800, random_state=5).reset_index(drop=True)
    predictions = score(team, traffic)
    traffic["age"] = traffic["age"] * 12  # the upstream pipeline now sends age in months
    path = team_log(team, "units", traffic, predictions)
    imported = team.firebreak("log", "import", "--model", MODEL, str(path), *MAP)
    assert imported.returncode == 0, imported.stderr[-2000:]

    opened = team.firebreak("open", "--model", MODEL, "--description", "ages look odd", "--json")
    outcome = json.loads(opened.stdout)
    assert opened.returncode == 3, (outcome, opened.stderr[-2000:])  # a person takes it from here
    assert outcome["status"] == "contained_needs_human" and outcome["failure_class"] == "skew", outcome
    assert outcome["remediation"]["choice"] == "upstream_fix" and outcome["route"] == "fallback_model"
    assert "age" in outcome["diagnosis"]["root_cause"]
