"""The pricing incident end to end through dag.test(): what a user would see afterwards."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import firebreak_env, pricing_conf, run_incident, settings

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("airflow_db")]

REPO = Path(__file__).resolve().parents[2]
INVESTIGATION = ["validate_contract", "trace_lineage", "drift_report", "golden_eval"]


def world() -> dict[str, Any]:
    """What a user can look at: aliases, ledger, routing, incidents."""
    from firebreak.registry.mlflow_registry import Registry
    from tests.state import State

    s = settings()
    store = State(s.state_db_url)
    routing = store.routing.get_routing("pricing")
    return {
        "aliases": Registry(s).aliases("pricing"),
        "ledger": [(e.alias, e.old_version, e.new_version, e.status) for e in store.ledger.entries("pricing")],
        "routing": (routing.route, routing.generation) if routing else None,
        "incidents": [(i.id, str(i.status)) for i in store.incidents.list_incidents("pricing")],
    }


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory, airflow_db: None):  # type: ignore[no-untyped-def]
    """Scenario (a): pricing drift, retrain, promoted. Shared by the replay test."""
    home = tmp_path_factory.mktemp("promoted")
    with firebreak_env(FIREBREAK_HOME=str(home), MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}"):
        from firebreak.scenarios import pricing

        pricing.setup(settings())
        before = world()
        result = run_incident(pricing_conf("alert-pricing-a"))
        yield {"home": home, "before": before, "result": result, "after": world()}


def test_drift_incident_is_contained_retrained_and_promoted(promoted: dict[str, Any]) -> None:
    from firebreak.incidents.identity import incident_id_for
    from firebreak.registry.mlflow_registry import Registry
    from tests.state import State

    result, before, after = promoted["result"], promoted["before"], promoted["after"]
    assert result.state == "success", result.task_states
    assert before["aliases"] == {"champion": "1"}
    assert before["routing"] == ("champion", 0)

    # Registry: v2 (the retrained seasonal model) is champion, v1 is last-known-good.
    assert after["aliases"] == {"champion": "2", "last-known-good": "1"}
    # Every alias move is in the ledger, applied, in order.
    assert after["ledger"] == [
        ("champion", None, "1", "applied"),  # the scenario's initial release
        ("challenger", None, "2", "applied"),
        ("last-known-good", None, "1", "applied"),
        ("champion", "1", "2", "applied"),
        ("challenger", "2", None, "applied"),
    ]
    # Routing went to the heuristic fallback and back: two compare-and-set moves.
    assert after["routing"] == ("champion", 2)
    incident_id = incident_id_for("pricing", "alert-pricing-a")
    assert after["incidents"] == [(incident_id, "resolved")]
    assert result.task_states["retrain"] == "success"
    assert {result.task_states[t] for t in ("rollback", "parameter_update", "upstream_fix")} == {"skipped"}

    with firebreak_env(
        FIREBREAK_HOME=str(promoted["home"]), MLFLOW_TRACKING_URI=f"sqlite:///{promoted['home'] / 'mlflow.db'}"
    ):
        s = settings()
        store = State(s.state_db_url)
        incident = store.incidents.get_incident(incident_id)
        assert incident is not None
        assert incident.severity == "SEV1"  # prices below cost on most requests
        assert incident.failure_class == "drift"
        events = [e.kind for e in store.incidents.events(incident_id)]
        # Containment never waits for root cause: it precedes every investigation step.
        assert events.index("containment") < min(events.index(k) for k in ("contract", "lineage", "drift", "golden"))
        ev = store.incidents.get_evidence(incident_id)
        assert ev["containment"]["previous_route"] == "champion" and ev["containment"]["route"] == "heuristic"
        assert ev["containment"]["fallback_on_recent"]["sanity_violation_rate"] == 0.0
        drifted = [c["column"] for c in ev["drift"]["columns"] if c["drifted"]]
        assert "demand_index" in drifted and "day_of_year" in drifted
        assert ev["contract"]["passed"] is True and ev["lineage"]["passed"] is True
        assert ev["golden"]["regressed"] is False
        assert ev["gate"]["passed"] is True
        gate = {c["name"]: c for c in ev["gate"]["checks"]}
        assert gate["recent MAE improves on champion"]["candidate"] < gate["recent MAE improves on champion"]["limit"]

        # Evidence artifacts are in the incident's MLflow run.
        client = Registry(s).client
        listed = {
            a.path
            for d in ("drift", "contract", "postmortem")
            for a in client.list_artifacts(incident.mlflow_run_id, d)
        }
        assert {"drift/drift_report.html", "drift/drift_report.json", "contract/contract_result.json"} <= listed
        assert f"postmortem/{incident_id}.md" in listed and f"postmortem/{incident_id}.html" in listed
        run = client.get_run(incident.mlflow_run_id).data
        assert run.tags["firebreak.status"] == "resolved"
        # The incident's run reads well in MLflow: severity, failure class, description; figures as metrics.
        assert run.tags["firebreak.severity"] == "SEV1" and run.tags["firebreak.failure_class"] == "drift"
        assert run.tags["mlflow.note.content"] == "pricing confidence under the 0.70 floor"
        assert {"triage_sanity_violation_rate", "drift_share", "gate_passed", "impact_below_floor"} <= set(run.metrics)
        assert run.metrics["impact_below_floor"] > 0
        # The post-mortem's charts are images beside it, and inline in its HTML version.
        charts = {p.name for p in (s.postmortem_dir / incident_id).glob("*.png")}
        assert {"drift.png", "outputs.png", "confidence.png", "serving.png"} <= charts
        assert "data:image/png;base64," in (s.postmortem_dir / f"{incident_id}.html").read_text()
        # The Airflow run's note summarises the outcome.
        assert promoted["result"].note.startswith(f"Incident {incident_id}: resolved · SEV1 drift · pricing.")

        # The post-mortem tells the story with figures.
        text = (s.postmortem_dir / f"{incident_id}.md").read_text()
        for expected in (
            "## Timeline",
            "## Evidence",
            "## Detection: what it saw and what it missed",
            "## Action items",
            "## Impact",
            "price requests answered below the sanity floor",
            "## Clock against the SOP's targets",
            "| contained (traffic off the model) |",
            "`resolved`",
            "demand_index",
            "Promotion gate:** passed",
            "| `champion` | 1 | 2 | applied |",
            "golden dataset does not cover recent traffic",
            "an hourly check would have fired",
        ):
            assert expected in text, expected


def test_the_same_incident_again_changes_nothing(promoted: dict[str, Any]) -> None:
    with firebreak_env(
        FIREBREAK_HOME=str(promoted["home"]), MLFLOW_TRACKING_URI=f"sqlite:///{promoted['home'] / 'mlflow.db'}"
    ):
        from firebreak.incidents.identity import incident_id_for

        s = settings()
        postmortem = s.postmortem_dir / f"{incident_id_for('pricing', 'alert-pricing-a')}.md"
        text_before = postmortem.read_text()
        result = run_incident(pricing_conf("alert-pricing-a"))
        assert result.task_states["open_incident"] == "skipped"
        assert {s for t, s in result.task_states.items() if t != "open_incident"} == {"skipped"}
        assert world() == promoted["after"]
        assert postmortem.read_text() == text_before


def test_an_alert_about_the_fixed_version_is_closed_stale_and_routing_untouched(promoted: dict[str, Any]) -> None:
    """Reliability case 33: after the fix (v2 champion) a repeated alert about v1 contained the healthy v2."""
    with firebreak_env(
        FIREBREAK_HOME=str(promoted["home"]), MLFLOW_TRACKING_URI=f"sqlite:///{promoted['home'] / 'mlflow.db'}"
    ):
        from firebreak.incidents.identity import incident_id_for
        from tests.state import State

        before = world()
        result = run_incident(pricing_conf("alert-pricing-v1-again", model_version="1"))
        assert result.state == "success", result.task_states
        assert result.task_states["triage"] == "skipped" and result.task_states["contain"] == "skipped"
        assert result.task_states["close_incident"] == "success"
        after = world()
        assert (after["aliases"], after["ledger"], after["routing"]) == (
            before["aliases"],
            before["ledger"],
            before["routing"],
        )
        incident_id = incident_id_for("pricing", "alert-pricing-v1-again")
        store = State(settings().state_db_url)
        incident = store.incidents.get_incident(incident_id)
        assert incident is not None and str(incident.status) == "stale"
        assert "the alert is about v1, and v2 serves now" in (incident.outcome or "")
        triaged = store.incidents.get_evidence(incident_id)["triage"]
        assert triaged["champion_version"] == "2" and triaged["rows"] == 0  # v1's answers are not evidence about v2
        assert "stale" in [e.kind for e in store.incidents.events(incident_id)]


# A required approval that is refused: tests/e2e/test_oncall_incident.py (the run waits for the answer).


@pytest.mark.parametrize(
    ("gate_change", "reason"),
    [({"recent_min_improvement": 0.99}, "recent MAE improves on champion")],  # a 99% error cut: v2 cannot
    ids=["candidate-not-good-enough"],
)
def test_gate_refusal_keeps_traffic_on_the_fallback(
    firebreak_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gate_change: dict[str, Any], reason: str
) -> None:
    """A candidate the gate does not let through: champion stays, traffic stays contained, the run fails honestly."""
    policies = tmp_path / "policies"
    policies.mkdir()
    policy = yaml.safe_load((REPO / "include" / "policies" / "pricing.yaml").read_text())
    policy["gate"].update(gate_change)
    (policies / "pricing.yaml").write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("FIREBREAK_POLICIES_DIR", str(policies))
    from firebreak.incidents.identity import incident_id_for
    from firebreak.scenarios import pricing
    from tests.state import State

    pricing.setup(settings())
    result = run_incident(pricing_conf("alert-pricing-b"))

    assert result.state == "failed"
    assert result.task_states["verify"] == "failed"
    assert result.task_states["promote"] == "upstream_failed"
    assert result.task_states["restore_traffic"] == "upstream_failed"
    assert result.task_states["postmortem"] == "success" and result.task_states["close_incident"] == "success"
    after = world()
    assert after["aliases"] == {"champion": "1", "challenger": "2"}
    assert after["routing"] == ("heuristic", 1)
    incident_id = incident_id_for("pricing", "alert-pricing-b")
    store = State(settings().state_db_url)
    incident = store.incidents.get_incident(incident_id)
    assert incident is not None and str(incident.status) == "contained_needs_human"
    assert reason in (incident.outcome or "")
    text = (settings().postmortem_dir / f"{incident_id}.md").read_text()
    assert "`contained_needs_human`" in text and reason in text
    assert "Routing now:** heuristic" in text
    assert "| 1 | Take over the incident: traffic is still on the fallback" in text  # first action item
    # The failed task says why in words, each gate check on its own line, not a stack trace.
    failed = [e.message for e in store.incidents.events(incident_id) if e.kind == "task_failed"]
    assert failed and failed[-1].startswith("verify failed: ") and reason in failed[-1]
    assert "Traceback" not in failed[-1]
    if gate_change.get("recent_min_improvement"):  # a refused gate lists every check
        checks = [line.strip() for line in failed[-1].splitlines()[1:]]
        assert "FAILED  recent MAE improves on champion" in " ".join(checks) and any(c.startswith("ok") for c in checks)


def test_dry_run_changes_nothing_but_plans(firebreak_home: Path) -> None:
    from firebreak.incidents.identity import incident_id_for
    from firebreak.scenarios import pricing
    from tests.state import State

    pricing.setup(settings())
    before = world()
    result = run_incident(pricing_conf("alert-pricing-dry", dry_run=True))
    assert result.state == "success", result.task_states
    after = world()
    assert after["aliases"] == before["aliases"] and after["ledger"] == before["ledger"]
    assert after["routing"] == before["routing"]
    incident_id = incident_id_for("pricing", "alert-pricing-dry")
    assert after["incidents"] == [(incident_id, "dry_run")]
    ev = State(settings().state_db_url).incidents.get_evidence(incident_id)
    assert ev["candidate"]["detail"].startswith("dry run: would train")
    assert ev["diagnosis"]["failure_class"] == "drift"


@pytest.mark.parametrize(
    ("conf_change", "policy_change", "message"),
    [
        ({"severty": "SEV1"}, None, "severty: Extra inputs are not permitted"),
        (
            {},
            {"detection": {"confidence_floor": 1.7}},
            "detection.confidence_floor: Input should be less than or equal to 1",
        ),
        ({}, {"gate": {"bogus": 1}}, "gate.bogus: Extra inputs are not permitted"),
    ],
    ids=["unknown-param", "policy-out-of-range", "policy-unknown-field"],
)
def test_bad_input_fails_at_open_incident_and_changes_nothing(
    firebreak_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    conf_change: dict[str, Any],
    policy_change: dict[str, Any] | None,
    message: str,
) -> None:
    from firebreak import stages
    from firebreak.errors import FirebreakError
    from firebreak.scenarios import pricing

    pricing.setup(settings())
    if policy_change is not None:
        policies = tmp_path / "policies"
        policies.mkdir()
        policy = yaml.safe_load((REPO / "include" / "policies" / "pricing.yaml").read_text())
        for section, values in policy_change.items():
            policy[section].update(values)
        (policies / "pricing.yaml").write_text(yaml.safe_dump(policy))
        monkeypatch.setenv("FIREBREAK_POLICIES_DIR", str(policies))
    conf = pricing_conf("alert-bad", **conf_change)
    before = world()

    # The library names the problem ...
    with pytest.raises(FirebreakError, match=message.replace("(", r"\(").replace(")", r"\)")):
        stages.open_incident(conf, run_id="manual__bad")
    # ... and the DAG stops right there.
    result = run_incident(conf)
    assert result.state == "failed"
    assert result.task_states["open_incident"] == "failed"
    assert result.task_states["contain"] == "upstream_failed"
    assert world() == before


def test_params_schema_rejects_malformed_conf_before_a_run_exists(firebreak_home: Path) -> None:
    """A bad severity, or a model without a policy (the form offers only those that have one)."""
    from airflow.sdk.exceptions import ParamValidationError

    from firebreak import stages
    from firebreak.errors import UnknownModelError

    with pytest.raises(ParamValidationError, match="severity"):
        run_incident(pricing_conf("alert-bad-params", severity="CRITICAL"))
    with pytest.raises(ParamValidationError, match="model"):
        run_incident(pricing_conf("alert-bad-model", model="inventory"))
    with pytest.raises(UnknownModelError, match="no policy for model 'inventory'"):  # the library says the same
        stages.open_incident(pricing_conf("alert-bad-model", model="inventory"), run_id="manual__bad")
    shutil.rmtree(firebreak_home, ignore_errors=True)
