"""A refitted champion is judged by the gate on labelled traffic it never trained on.

A team's own scikit-learn model, onboarded with ``firebreak onboard``, its traffic and late
labels imported with ``firebreak log import`` / ``labels import``; then the SOP's retrain and
verify stages on an incident, as the DAG calls them. Real MLflow (SQLite), real refit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from firebreak.cli import main
from tests.integration.onboarding.conftest import onboard, register

pytestmark = pytest.mark.integration

MODEL = "Router"
INPUTS = ["x1", "x2"]


def test_a_refit_that_memorised_noisy_labels_is_refused_on_the_rows_it_never_saw(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Traffic from a new region of x1 whose labels are 30% noise: the champion's rule still holds there.

    A fully grown tree refitted on that traffic learns the noise: on its own training rows it
    looks perfect, on fresh rows it is worse than the champion. The gate must see the latter.
    """
    from sklearn.tree import DecisionTreeClassifier

    from firebreak import stages
    from firebreak.errors import GateRefused
    from firebreak.incidents.enums import EvidenceKind
    from firebreak.policy.schema import load_policy
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.settings import Settings
    from firebreak.stages.context import Context
    from firebreak.verification.held_out import split

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x1": rng.uniform(0, 1, 800), "x2": rng.uniform(0, 1, 800)})
    reference["y"] = (reference["x2"] > 0.5).astype(int)
    register(DecisionTreeClassifier(random_state=0).fit(reference[INPUTS], reference["y"]), reference[INPUTS], MODEL)
    assert onboard(team, reference, "--model", MODEL, "--label", "y", "--metric", "accuracy") == 0, (
        capsys.readouterr().err
    )

    now = datetime.now(UTC)
    traffic = pd.DataFrame({"x1": rng.uniform(2, 3, 1000), "x2": rng.uniform(0, 1, 1000)})
    traffic["prediction"] = (traffic["x2"] > 0.5).astype(int)  # what the champion answered
    traffic["request_id"] = [f"req-{i}" for i in range(len(traffic))]
    traffic["ts"] = [(now - timedelta(minutes=60 - i * 0.05)).isoformat() for i in range(len(traffic))]
    traffic["outcome"] = traffic["prediction"] ^ (rng.random(len(traffic)) < 0.3)
    traffic.drop(columns="outcome").to_csv(team / "log.csv", index=False)
    traffic[["request_id", "outcome"]].to_csv(team / "labels.csv", index=False)
    assert main(["log", "import", "--model", MODEL, str(team / "log.csv")]) == 0, capsys.readouterr().err
    assert main(["labels", "import", "--model", MODEL, str(team / "labels.csv"), "--id-column", "request_id",
                 "--label", "outcome"]) == 0, capsys.readouterr().err  # fmt: skip

    opened = stages.open_incident({"model": MODEL, "description": "accuracy fell", "dedup_key": "refit"}, run_id="r1")
    incident_id = str(opened["incident_id"])
    candidate = stages.retrain(incident_id)
    with pytest.raises(GateRefused, match="recent accuracy improves on champion") as refused:
        stages.verify(incident_id)

    settings = Settings.from_env()
    policy = load_policy(MODEL, settings.policies_dir)
    parts = split(traffic.rename(columns={"outcome": "y"}), policy.gate.held_out_share)
    assert 250 < len(parts.held_out) < 350  # 30% of 1,000, by a hash of each request id
    assert f"+ {len(parts.train)} labelled traffic rows" in candidate["detail"]
    assert f"{len(parts.held_out)} more held out for the gate" in candidate["detail"]

    gate = Context.load(incident_id).evidence()[EvidenceKind.GATE]
    assert gate["passed"] is False and gate["candidate"]["recent"]["rows"] == len(parts.held_out)
    assert gate["recent_rows"].startswith(f"{len(parts.held_out)} labelled rows held out from the retrain (30%")
    assert f"Recent figures on {len(parts.held_out)} labelled rows held out" in str(refused.value)
    # On fresh rows the memorising candidate is worse than the champion ...
    assert gate["candidate"]["recent"]["accuracy"] < gate["champion"]["recent"]["accuracy"] - 0.05
    # ... while on the rows it trained on it looks perfect: what the gate would have judged otherwise.
    registry = Registry(settings)
    challenger = registry.predictor(registry.get_version(MODEL, candidate["version"]), policy)
    trained_on = parts.train.reset_index(drop=True)
    answered = pd.DataFrame(challenger(trained_on[INPUTS]))["prediction"].to_numpy()
    assert (answered == trained_on["y"].to_numpy()).mean() > 0.99
    assert registry.aliases(MODEL)["champion"] == "1"  # nothing promoted
    stages.write_postmortem(incident_id)
    postmortem = (settings.home / "postmortems" / f"{incident_id}.md").read_text()
    assert f"Recent figures on {len(parts.held_out)} labelled rows held out from the retrain" in postmortem
    assert f"| candidate on recent ({len(parts.held_out)} rows) |" in postmortem
