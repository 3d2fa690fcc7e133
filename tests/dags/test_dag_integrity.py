"""Every DAG loads, follows the house rules, and stays cheap to parse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
# Importing any of these at DAG module level costs seconds on every parse.
HEAVY = ["pandas", "numpy", "sklearn", "mlflow", "great_expectations", "evidently", "scipy", "firebreak"]


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert "incident_response" in dagbag.dags


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_one_dag_per_file_named_after_it(dagbag, path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = [d for d, dag in dagbag.dags.items() if Path(dag.fileloc).name == path.name]
    assert ids == [path.stem]


def test_house_rules(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id} has no docs"
        assert dag.catchup is False, dag_id
        assert dag.max_active_runs >= 1, dag_id
        for t in dag.tasks:
            assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parse_imports_nothing_heavy(path: Path, tmp_path: Path) -> None:
    """Parse the file in a clean interpreter; report its parse time, assert no heavy import.

    The time is printed for the record (docs/benchmarks.md has the measured figures);
    the assertion is on what was imported, which is what makes parsing slow.
    """
    probe = f"""
import importlib.util, json, sys, time
import airflow.sdk  # Airflow itself is paid for once per parser process
before = set(sys.modules)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_under_test", {str(path)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
loaded = sorted({{m.split('.')[0] for m in set(sys.modules) - before}})
print(json.dumps({{"seconds": elapsed, "loaded": loaded}}))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{path.name}: parsed in {result['seconds'] * 1000:.1f} ms")
    heavy = sorted(set(result["loaded"]) & set(HEAVY))
    assert heavy == [], f"{path.name} imports {heavy} at module level"


def test_form_choices_match_the_library() -> None:
    """The DAG keeps literal enums (cheap to parse); they must equal the library's."""
    import importlib.util

    from firebreak.incidents.enums import FailureClass, Remediation, Severity

    spec = importlib.util.spec_from_file_location("incident_response_dag", REPO / "dags" / "incident_response.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sorted(module.FAILURE_TYPES) == sorted(c.value for c in FailureClass)
    assert module.FAILURE_TYPES[0] == "unknown"  # the form's default comes first
    assert module.SEVERITIES == ["auto", *[s.value for s in Severity]]
    assert module.REMEDIATIONS == ["auto", *[r.value for r in Remediation]]


def test_every_param_explains_itself(dagbag) -> None:  # type: ignore[no-untyped-def]
    params = dagbag.dags["incident_response"].params
    expected = {"model", "failure_type", "severity", "description", "remediation", "dry_run", "dedup_key"}
    assert expected <= set(params.keys())
    for name in expected:
        param = params.get_param(name)
        assert param.schema.get("title") and param.description, f"param {name} lacks title/description"
        assert param.schema.get("section"), f"param {name} has no form section"
    for name in ("failure_type", "severity", "remediation"):
        assert "enum" in params.get_param(name).schema
    assert "unknown" in params.get_param("failure_type").schema["enum"]
    assert "auto" in params.get_param("severity").schema["enum"]


def test_on_call_deadlines_cover_every_severity_and_target() -> None:
    """The plugin keeps literal copies (it is imported at parse time); they must equal the library's."""
    import firebreak_oncall
    from firebreak.incidents.enums import Severity
    from firebreak.oncall.escalation import UPDATES_SCHEDULED

    assert list(firebreak_oncall.SEVERITIES) == [s.value for s in Severity]
    assert firebreak_oncall.CADENCE_UPDATES == UPDATES_SCHEDULED


def test_approval_waits_between_the_gate_and_the_promotion(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["incident_response"]
    approval = dag.get_task("approve_promotion")
    assert approval.upstream_task_ids == {"verify"} and approval.downstream_task_ids == {"promote"}
    assert approval.options == ["Approve", "Reject"]


def test_with_a_scheduler_every_severity_target_is_a_deadline_alert_the_scheduler_can_read() -> None:
    """Parsed as a dag-processor next to a scheduler would (alerts on), serialized, and each alert decoded
    the way the scheduler does when it creates a run (the custom reference found through the plugin)."""
    probe = f"""
import importlib.util, json
from airflow.serialization.serialized_objects import DagSerialization
from airflow.serialization.decoders import decode_deadline_alert
from airflow.serialization.enums import DagAttributeTypes as DAT, Encoding
from airflow.serialization.definitions.deadline import DeadlineAlertFields as F
spec = importlib.util.spec_from_file_location("dag_under_test", {str(REPO / "dags" / "incident_response.py")!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
alerts = DagSerialization.serialize_dag(module.incident_response())["deadline"]
decoded = [
    decode_deadline_alert({{Encoding.TYPE: DAT.DEADLINE_ALERT, Encoding.VAR: {{
        F.REFERENCE: a["reference"], F.INTERVAL: a["interval"], F.CALLBACK: a["callback"]}}}})
    for a in alerts
]
print(json.dumps([
    [d.reference.inner_ref.severity, d.reference.inner_ref.target, d.reference.inner_ref.nth, d.callback.path]
    for d in decoded
]))
"""
    env = {**__import__("os").environ, "FIREBREAK_DEADLINE_ALERTS": "on"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    alerts = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(alerts) == 4 * 5  # SEV1..SEV4 x (acknowledge, contain, three cadence updates)
    assert {tuple(a[:3]) for a in alerts} >= {("SEV1", "acknowledge", 1), ("SEV2", "contain", 1), ("SEV4", "update", 3)}
    assert {a[3] for a in alerts} == {"firebreak_oncall.on_deadline"}


def test_the_trigger_form_offers_model_names_not_file_stems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names MLflow accepts but files cannot hold ("Fraud Detector", "Crédit Scoring") are stored
    under a hashed stem; the form must offer (and accept) the name an incident is opened with."""
    import importlib.util

    import yaml

    from firebreak.model_names import model_stem

    for name in ("pricing", "Fraud Detector", "Crédit Scoring"):
        text = yaml.safe_dump({"model": name}, allow_unicode=True)
        (tmp_path / f"{model_stem(name)}.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "Broken-0123456789.yaml").write_text("model: [unclosed", encoding="utf-8")
    monkeypatch.setenv("FIREBREAK_POLICIES_DIR", str(tmp_path))
    spec = importlib.util.spec_from_file_location("incident_response_form", REPO / "dags" / "incident_response.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.MODELS == ["Crédit Scoring", "Fraud Detector", "pricing"]
    dag = module.incident_response()  # the decorated function builds the DAG the file registers
    assert dag.params.get_param("model").schema["enum"] == module.MODELS
