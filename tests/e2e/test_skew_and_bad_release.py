"""The skew and bad-release scenarios end to end through dag.test(): what a user sees afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import pricing_conf, run_incident, settings

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("airflow_db")]


def world(model: str) -> dict[str, Any]:
    """Aliases, every ledger row, routing, incidents and registered versions of ``model``."""
    from firebreak.registry.mlflow_registry import Registry
    from tests.state import State

    s = settings()
    store = State(s.state_db_url)
    registry = Registry(s)
    routing = store.routing.get_routing(model)
    return {
        "aliases": registry.aliases(model),
        "ledger": [
            (e.alias, e.old_version, e.new_version, e.status, e.incident_id, e.actor)
            for e in store.ledger.entries(model)
        ],
        "routing": (routing.route, routing.generation) if routing else None,
        "versions": sorted(str(v.version) for v in registry.client.search_model_versions(f"name='{model}'")),
    }


def incident(model: str, dedup_key: str) -> tuple[Any, dict[str, Any], str]:
    from firebreak.incidents.identity import incident_id_for
    from tests.state import State

    s = settings()
    store = State(s.state_db_url)
    incident_id = incident_id_for(model, dedup_key)
    found = store.incidents.get_incident(incident_id)
    assert found is not None
    return found, store.incidents.get_evidence(incident_id), (s.postmortem_dir / f"{incident_id}.md").read_text()


# -- skew: prices in cents from an upstream pipeline release -------------------------------


def after_opening() -> datetime:
    # Logged "after the incident opened": dag.test() opens it within seconds of now, and the
    # incident's window ends one minute after opening, so these rows are only in the later check.
    return datetime.now(UTC) + timedelta(minutes=10)


def assert_skew_investigation(ev: dict[str, Any], text: str) -> None:
    failed = {(f["column"], f["expectation"]) for f in ev["contract"]["failures"]}
    assert ("unit_cost", "expect_column_values_to_be_between") in failed
    assert ("feature_pipeline_version", "expect_column_values_to_be_in_set") in failed
    assert ev["lineage"]["passed"] is False
    bad = [g for g in ev["lineage"]["groups"] if not g["allowed"]]
    assert [g["feature_pipeline_version"] for g in bad] == ["features-2.4.0"] and bad[0]["rows"] == 500
    assert ev["diagnosis"]["failure_class"] == "skew"
    assert {"unit_cost", "feature_pipeline_version"} <= set(ev["diagnosis"]["columns"])
    assert "features-2.4.0" in ev["diagnosis"]["root_cause"]
    assert ev["remediation_choice"]["choice"] == "upstream_fix"
    assert "features-2.4.0" in text and "skew" in text


def test_skew_with_upstream_still_broken_stays_contained(firebreak_home: Path) -> None:
    from firebreak.scenarios import skew

    skew.setup(settings())
    skew.log_after_opening(settings(), fixed=False, start=after_opening())
    before = world(skew.MODEL)
    result = run_incident(pricing_conf("alert-skew-broken", model=skew.MODEL))

    assert result.state == "failed"
    assert result.task_states["upstream_fix"] == "failed"
    assert {result.task_states[t] for t in ("retrain", "rollback", "parameter_update")} == {"skipped"}
    assert result.task_states["verify"] == "upstream_failed"
    assert result.task_states["postmortem"] == "success" and result.task_states["close_incident"] == "success"
    after = world(skew.MODEL)
    # The registry is untouched: no new version, no alias move; traffic stays on the fallback.
    assert after["versions"] == before["versions"] == ["1"]
    assert after["aliases"] == {"champion": "1"} and after["ledger"] == before["ledger"]
    assert after["routing"] == ("heuristic", 1)
    found, ev, text = incident(skew.MODEL, "alert-skew-broken")
    assert str(found.status) == "contained_needs_human"
    assert "upstream still broken: 300 predictions logged since the incident opened break the contract" in (
        found.outcome or ""
    )
    assert ev["upstream_check"]["rows"] == 300 and ev["upstream_check"]["passed"] is False
    assert_skew_investigation(ev, text)
    assert "`contained_needs_human`" in text and "upstream still broken" in text


def test_skew_without_fresh_traffic_says_the_fix_is_not_verified(firebreak_home: Path) -> None:
    from firebreak.scenarios import skew

    skew.setup(settings())
    result = run_incident(pricing_conf("alert-skew-quiet", model=skew.MODEL))
    assert result.state == "failed" and result.task_states["upstream_fix"] == "failed"
    found, ev, _ = incident(skew.MODEL, "alert-skew-quiet")
    assert str(found.status) == "contained_needs_human"
    assert "no traffic of pricing-skew logged since the incident opened" in (found.outcome or "")
    assert world(skew.MODEL)["routing"] == ("heuristic", 1)


def test_skew_resolves_when_upstream_is_fixed_without_a_model_change(firebreak_home: Path) -> None:
    from firebreak.scenarios import skew

    skew.setup(settings())
    skew.log_after_opening(settings(), fixed=True, start=after_opening())
    before = world(skew.MODEL)
    result = run_incident(pricing_conf("alert-skew-fixed", model=skew.MODEL))

    assert result.state == "success", result.task_states
    assert result.task_states["upstream_fix"] == "success" and result.task_states["retrain"] == "skipped"
    after = world(skew.MODEL)
    assert after["versions"] == ["1"]  # no new model version
    assert after["aliases"] == {"champion": "1"}
    assert after["ledger"] == before["ledger"]  # no champion move, no challenger
    assert after["routing"] == ("champion", 2)  # to the fallback and back
    found, ev, text = incident(skew.MODEL, "alert-skew-fixed")
    assert str(found.status) == "resolved"
    assert ev["upstream_check"]["passed"] is True and ev["upstream_check"]["rows"] == 300
    assert ev["upstream_check"]["sources"] == [
        {"upstream_source": "erp.sales_daily", "feature_pipeline_version": "features-2.3.1", "rows": 300}
    ]
    assert ev["candidate"]["version"] is None and ev["candidate"]["remediation"] == "upstream_fix"
    assert ev["gate"]["passed"] is True
    assert ev["promotion"]["promoted"] is False
    assert_skew_investigation(ev, text)
    assert "`resolved`" in text and "no model change" in text


# -- bad release: v2 regressed on the golden dataset against v1 --------------------------------


def test_bad_release_is_rolled_back_to_last_known_good(firebreak_home: Path) -> None:
    from firebreak.incidents.identity import incident_id_for
    from firebreak.scenarios import bad_release

    facts = bad_release.setup(settings())
    before = world(bad_release.MODEL)
    assert before["aliases"] == {"champion": "2", "last-known-good": "1"}
    result = run_incident(pricing_conf("alert-release-a", model=bad_release.MODEL))

    assert result.state == "success", result.task_states
    assert result.task_states["rollback"] == "success" and result.task_states["retrain"] == "skipped"
    incident_id = incident_id_for(bad_release.MODEL, "alert-release-a")
    after = world(bad_release.MODEL)
    assert after["aliases"] == {"champion": "1", "last-known-good": "1"}
    assert after["versions"] == ["1", "2"]  # a rollback registers nothing
    assert after["ledger"][len(before["ledger"]) :] == [
        ("challenger", None, "1", "applied", incident_id, "incident_response"),
        ("champion", "2", "1", "applied", incident_id, "incident_response"),
        ("challenger", "1", None, "applied", incident_id, "incident_response"),
    ]
    assert after["routing"] == ("champion", 2)
    found, ev, text = incident(bad_release.MODEL, "alert-release-a")
    assert str(found.status) == "resolved" and found.failure_class == "bad_release"
    golden = ev["golden"]
    assert golden["regressed_vs_last_known_good"] is True and golden["last_known_good"]["version"] == "1"
    assert golden["figures"]["mae"] == facts["golden_baseline"]["mae"]
    assert golden["last_known_good"]["figures"]["mae"] == facts["last_known_good_golden"]["mae"]
    assert ev["diagnosis"]["remediation"] == "rollback"
    assert ev["gate"]["passed"] is True and ev["gate"]["candidate_version"] == "1"
    assert ev["restore"]["champion"] == "1"
    # The post-mortem names the regression with its figures, and the ledger move.
    for expected in (
        "`resolved`",
        "bad_release",
        f"golden MAE {golden['figures']['mae']} vs last-known-good v1 {golden['last_known_good']['figures']['mae']}",
        "| `champion` | 2 | 1 | applied |",
    ):
        assert expected in text, expected


def test_rollback_to_a_deleted_last_known_good_fails_clearly(firebreak_home: Path) -> None:
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.scenarios import bad_release

    bad_release.setup(settings())
    Registry(settings()).client.delete_model_version(bad_release.MODEL, "1")
    before = world(bad_release.MODEL)
    assert before["aliases"] == {"champion": "2"}
    result = run_incident(pricing_conf("alert-release-b", model=bad_release.MODEL, remediation="rollback"))

    assert result.state == "failed"
    assert result.task_states["rollback"] == "failed" and result.task_states["promote"] == "upstream_failed"
    after = world(bad_release.MODEL)
    assert after["aliases"] == {"champion": "2"} and after["ledger"] == before["ledger"]
    assert after["versions"] == ["2"]
    assert after["routing"] == ("heuristic", 1)  # nothing silently served: the fallback holds
    found, _, text = incident(bad_release.MODEL, "alert-release-b")
    assert str(found.status) == "contained_needs_human"
    reason = "'last-known-good' last pointed at v1 (alias ledger), which is gone from the registry (deleted)"
    assert reason in (found.outcome or "") and reason in text
