"""The fairness scenario end to end through dag.test(): a tainted outcome loop, diagnosed as bias,
remediated by a reweighted retrain that the gate checks for fairness *and* accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import firebreak_env, pricing_conf, run_incident, settings

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("airflow_db")]

REPO = Path(__file__).resolve().parents[2]
MODEL = "loan_approval"


def conf(dedup_key: str) -> dict[str, Any]:
    from firebreak.scenarios import fairness

    return pricing_conf(dedup_key, model=MODEL, **fairness.ALERT)


def world() -> dict[str, Any]:
    from firebreak.registry.mlflow_registry import Registry
    from tests.state import State

    s = settings()
    store = State(s.state_db_url)
    routing = store.routing.get_routing(MODEL)
    return {
        "aliases": Registry(s).aliases(MODEL),
        "ledger": [(e.alias, e.old_version, e.new_version, e.status) for e in store.ledger.entries(MODEL)],
        "routing": (routing.route, routing.generation) if routing else None,
    }


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory, airflow_db: None):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("fairness")
    with firebreak_env(FIREBREAK_HOME=str(home), MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}"):
        from firebreak.scenarios import fairness

        facts = fairness.setup(settings())
        before = world()
        result = run_incident(conf("alert-fairness-a"))
        yield {"home": home, "facts": facts, "before": before, "result": result, "after": world()}


def test_bias_incident_is_diagnosed_reweighted_and_promoted(promoted: dict[str, Any]) -> None:
    from firebreak.incidents.identity import incident_id_for
    from tests.state import State

    result, before, after = promoted["result"], promoted["before"], promoted["after"]
    assert result.state == "success", result.task_states
    assert promoted["facts"]["worst_group"] == "18-25" and promoted["facts"]["selection_rate_ratio"] < 0.8
    assert before["aliases"] == {"champion": "1"}
    # v1 harmed a protected group: it never becomes last-known-good.
    assert after["aliases"] == {"champion": "2"}
    assert after["ledger"] == [
        ("champion", None, "1", "applied"),
        ("challenger", None, "2", "applied"),
        ("champion", "1", "2", "applied"),
        ("challenger", "2", None, "applied"),
    ]
    assert after["routing"] == ("champion", 2)
    assert result.task_states["fairness_audit"] == "success" and result.task_states["retrain"] == "success"

    with firebreak_env(
        FIREBREAK_HOME=str(promoted["home"]), MLFLOW_TRACKING_URI=f"sqlite:///{promoted['home'] / 'mlflow.db'}"
    ):
        s = settings()
        store = State(s.state_db_url)
        incident_id = incident_id_for(MODEL, "alert-fairness-a")
        incident = store.incidents.get_incident(incident_id)
        assert incident is not None and str(incident.status) == "resolved"
        assert incident.failure_class == "bias"
        ev = store.incidents.get_evidence(incident_id)
        # Before: the decisions applicants got break the four-fifths rule, and the worst band is named.
        fairness = ev["fairness"]
        assert fairness["breached"] is True and fairness["worst"] == "18-25"
        assert fairness["selection_rate_ratio"] < 0.8
        assert fairness["equalized_odds_difference"] > 0.15
        groups = fairness["groups"]
        assert groups["18-25"]["true_positive_rate"] < min(
            g["true_positive_rate"] for b, g in groups.items() if b != "18-25"
        )
        assert ev["diagnosis"]["failure_class"] == "bias" and "age_band=18-25" in ev["diagnosis"]["root_cause"]
        # Harm to a protected group is SEV1 (the SOP's matrix): triage could not see it, diagnose re-ranked.
        assert ev["diagnosis"]["severity"]["before"] != "SEV1" and incident.severity == "SEV1"
        assert any(
            e.kind == "severity_reranked" and "-> SEV1 by protected_group_harm" in e.message
            for e in store.incidents.events(incident_id)
        )
        # The remediation weighted the suppressed cell (young, repaid) up.
        weights = ev["candidate"]["training"]["weights"]
        assert weights["18-25/1"] > 1.0 > weights["18-25/0"]
        # After: the gate checked fairness and accuracy, and both held.
        gate = ev["gate"]
        checks = {c["name"]: c for c in gate["checks"]}
        assert gate["passed"] is True
        ratio = checks["selection-rate ratio (four-fifths rule)"]
        assert ratio["passed"] and ratio["candidate"] >= ratio["limit"] == 0.8
        assert checks["equalized-odds difference"]["candidate"] <= 0.15
        assert (
            gate["fairness"]["champion"]["selection_rate_ratio"]
            < 0.8
            <= gate["fairness"]["candidate"]["selection_rate_ratio"]
        )
        assert checks["golden accuracy no worse than champion"]["passed"]
        assert gate["candidate"]["recent"]["mae"] <= gate["champion"]["recent"]["mae"]

        text = (s.postmortem_dir / f"{incident_id}.md").read_text()
        for expected in (
            "`resolved`",
            "**Failure class:** bias",
            "**Fairness** (`age_band`",
            "| before: decisions served | " + str(fairness["selection_rate_ratio"]),
            "| after: candidate | " + str(gate["fairness"]["candidate"]["selection_rate_ratio"]),
            "| selection-rate ratio (four-fifths rule) |",
            "| 18-25 | " + str(groups["18-25"]["selection_rate"]),
            "| `champion` | 1 | 2 | applied |",
        ):
            assert expected in text, expected


@pytest.mark.parametrize(
    ("recipe", "failed", "held"),
    [
        # Equal approval quotas per band: fair on paper, and a third of the decisions wrong.
        ("train_equal_quotas", "golden accuracy no worse than champion", "selection-rate ratio (four-fifths rule)"),
        # The released recipe again: as accurate as the champion, and as unfair.
        ("train_unweighted", "selection-rate ratio (four-fifths rule)", "golden accuracy no worse than champion"),
    ],
    ids=["fair-but-inaccurate", "accurate-but-unfair"],
)
def test_candidate_failing_fairness_or_accuracy_is_refused(
    firebreak_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recipe: str, failed: str, held: str
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    policy = yaml.safe_load((REPO / "include" / "policies" / f"{MODEL}.yaml").read_text())
    policy["training"]["recipe"] = f"firebreak.scenarios.lending:{recipe}"
    (policies / f"{MODEL}.yaml").write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("FIREBREAK_POLICIES_DIR", str(policies))
    from firebreak.incidents.identity import incident_id_for
    from firebreak.scenarios import fairness
    from tests.state import State

    fairness.setup(settings())
    result = run_incident(conf(f"alert-fairness-{recipe}"))

    assert result.state == "failed"
    assert result.task_states["verify"] == "failed"
    assert result.task_states["promote"] == "upstream_failed"
    after = world()
    assert after["aliases"] == {"champion": "1", "challenger": "2"}
    assert after["routing"] == ("heuristic", 1)
    incident_id = incident_id_for(MODEL, f"alert-fairness-{recipe}")
    store = State(settings().state_db_url)
    incident = store.incidents.get_incident(incident_id)
    assert incident is not None and str(incident.status) == "contained_needs_human"
    assert failed in (incident.outcome or "")
    checks = {c["name"]: c["passed"] for c in store.incidents.get_evidence(incident_id)["gate"]["checks"]}
    assert checks[failed] is False and checks[held] is True
    text = (settings().postmortem_dir / f"{incident_id}.md").read_text()
    assert "`contained_needs_human`" in text and failed in text
    assert "Routing now:** heuristic" in text
