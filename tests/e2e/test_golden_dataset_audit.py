"""The nightly golden dataset audit finds the pricing drift before anyone reports it, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("fresh_dags")]

REPO = Path(__file__).resolve().parents[2]


def audit_runs() -> list[dict[str, Any]]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == "incident_response")
        return [
            {"run_id": r.run_id, "conf": r.conf}
            for r in runs
            if str(r.conf.get("dedup_key", "")).startswith("audit:golden_dataset_audit:")
        ]


def run_audit_dag() -> dict[str, str | None]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["golden_dataset_audit"]
    run = dag.test()
    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run.run_id)
        return {f"{ti.task_id}[{ti.map_index}]": (str(ti.state) if ti.state else None) for ti in tis}


def test_audit_opens_one_incident_for_the_drift_and_leaves_evidence(firebreak_home: Path) -> None:
    from firebreak.incidents.identity import incident_id_for
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.scenarios import pricing
    from firebreak.settings import Settings

    settings = Settings.from_env()
    pricing.setup(settings)
    states = run_audit_dag()
    # Every model with a policy is audited; models never released (no champion) have nothing to audit.
    assert {v for k, v in states.items() if k.startswith("audit[")} == {"success"}, states
    assert states["open_incidents[0]"] == "success", states
    [run] = audit_runs()
    day = datetime.now(UTC).date().isoformat()
    assert run["conf"]["dedup_key"] in {
        f"audit:golden_dataset_audit:{d}:drift"
        for d in (day, (datetime.now(UTC) - timedelta(minutes=5)).date().isoformat())
    }
    assert run["run_id"] == incident_id_for("pricing", run["conf"]["dedup_key"])
    assert run["conf"]["failure_type"] == "drift" and run["conf"]["model"] == "pricing"
    assert "inputs drifted (top: demand_index" in run["conf"]["description"]

    registry = Registry(settings)
    exp = registry.client.get_experiment_by_name("firebreak-audits")
    [audit_run] = registry.client.search_runs([exp.experiment_id])
    assert audit_run.data.metrics["breaches"] == 1.0
    artifacts = {a.path for a in registry.client.list_artifacts(audit_run.info.run_id, "audit")}
    assert {"audit/findings.json", "audit/drift_report.html", "audit/contract.json"} <= artifacts

    # Audited again the same day: the same breach finds its incident; nothing new opens.
    states = run_audit_dag()
    assert {v for k, v in states.items() if k.startswith("audit[")} == {"success"}, states
    assert [k for k in states if k.startswith("open_incidents[") and k != "open_incidents[-1]"] in (
        [],
        ["open_incidents[0]"],
    )
    assert states.get("open_incidents[0]") in (None, "skipped")
    assert len(audit_runs()) == 1


def test_audit_of_healthy_traffic_opens_nothing(firebreak_home: Path) -> None:
    from firebreak.audits import golden_dataset_audit
    from firebreak.scenarios import pricing
    from firebreak.settings import Settings

    settings = Settings.from_env()
    now = datetime.now(UTC)
    pricing.setup(settings, now=now)
    # The day that ended 24 h ago held only in-season traffic, which v1 was trained for.
    result = golden_dataset_audit("pricing", settings=settings, now=now - timedelta(hours=24))
    checks = {f.check: f.breached for f in result.findings}
    assert checks == {"golden": False, "contract": False, "drift": False, "fairness": None}
    assert result.incident_request() is None


def test_fairness_names_the_group_served_worse(
    firebreak_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd
    import yaml

    from firebreak.audits import golden_dataset_audit
    from firebreak.prediction_log import LabelStore, PredictionLog
    from firebreak.scenarios import pricing
    from firebreak.settings import Settings

    policy = yaml.safe_load((REPO / "include" / "policies" / "pricing.yaml").read_text())
    policy["fairness"] = {"protected_attribute": "category", "max_error_ratio": 1.5}
    (tmp_path / "pricing.yaml").write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("FIREBREAK_POLICIES_DIR", str(tmp_path))
    settings = Settings.from_env()
    now = datetime.now(UTC)
    pricing.setup(settings, now=now)
    day_end = now - timedelta(hours=24)  # the in-season day, served well by v1 for every category

    fair = golden_dataset_audit("pricing", settings=settings, now=day_end)
    [finding] = [f for f in fair.findings if f.check == "fairness"]
    assert finding.breached is False and set(finding.figures["groups"]) == set(pricing.CATEGORIES)

    # Now grocery shoppers get prices 30% under the optimum, everyone else as before.
    grocery = pricing.generate_requests(5, 600, holiday=True).query("category == 'grocery'").reset_index(drop=True)
    rows = grocery[pricing.INPUTS].assign(
        request_id=[f"grocery-{i}" for i in range(len(grocery))],
        ts=[day_end - timedelta(hours=3, seconds=i) for i in range(len(grocery))],
        model="pricing",
        model_version="1",
        route="champion",
        recommended_price=(grocery[pricing.LABEL] * 0.7).round(2),
        confidence=0.9,
        contract_violations="",
        upstream_source=pricing.UPSTREAM_SOURCE,
        feature_pipeline_version=pricing.PIPELINE_VERSION,
    )
    PredictionLog(settings.prediction_log_dir).append(rows)
    LabelStore(settings.labels_dir).append(
        "pricing", pd.DataFrame({"request_id": rows["request_id"], pricing.LABEL: grocery[pricing.LABEL]})
    )

    unfair = golden_dataset_audit("pricing", settings=settings, now=day_end)
    [finding] = [f for f in unfair.findings if f.check == "fairness"]
    assert finding.breached is True and finding.figures["worst"] == "grocery"
    assert finding.summary.startswith("category=grocery gets")
    request = unfair.incident_request()
    assert request is not None and "category=grocery gets" in request["conf"]["description"]
    # The injected grocery traffic also shifts the day's input mix (drift); with two breached
    # checks the audit leaves the failure class to the incident's diagnosis.
    breached = sorted(f.check for f in unfair.breaches)
    assert "fairness" in breached
    assert request["conf"]["failure_type"] == ("bias" if breached == ["fairness"] else "unknown")
