"""Shadow evaluation: a better challenger exposes the champion (incident); a worse one is blocked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("fresh_dags")]

REPO = Path(__file__).resolve().parents[2]


def register_challenger(model_config: dict[str, Any] | None, seasonal: bool) -> str:
    import pandas as pd

    from firebreak.registry.mlflow_registry import Registry
    from firebreak.scenarios import pricing
    from firebreak.settings import Settings

    settings = Settings.from_env()
    registry = Registry(settings)
    history = pd.read_parquet(settings.data_dir / "pricing" / "history.parquet")
    model = pricing.train_seasonal_v2(history) if seasonal else pricing.train_holiday_v1(history)
    version = registry.register(
        "pricing",
        model,
        input_example=history[pricing.INPUTS].head(5),
        reference=history[pricing.INPUTS],
        tags={},
        run_name="challenger",
        model_config=model_config,
    ).version
    registry.move_alias("pricing", "challenger", version, incident_id=None, actor="test", reason="candidate")
    return version


def test_a_better_challenger_opens_an_incident_against_the_champion(firebreak_home: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from firebreak.scenarios import pricing
    from firebreak.settings import Settings

    pricing.setup(Settings.from_env())
    version = register_challenger(None, seasonal=True)
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["shadow_evaluation"]
    run = dag.test()
    with create_session() as session:
        states = {
            (ti.task_id, ti.map_index): str(ti.state)
            for ti in session.query(TaskInstance).filter(
                TaskInstance.dag_id == "shadow_evaluation", TaskInstance.run_id == run.run_id
            )
        }
        opened = [
            r.conf
            for r in session.query(DagRun).filter(DagRun.dag_id == "incident_response")
            if str(r.conf.get("dedup_key", "")).startswith("audit:shadow_evaluation:")
        ]
    assert states[("audit", 0)] == "success" and states[("open_incidents", 0)] == "success"
    [conf] = opened
    assert conf["dedup_key"].endswith(f":v{version}:shadow")
    assert f"challenger v{version} vs champion v1" in conf["description"]


def test_a_worse_challenger_is_blocked_and_the_gate_refuses_it(firebreak_home: Path) -> None:
    from firebreak.audits import shadow_evaluation
    from firebreak.registry.mlflow_registry import TAG_BLOCKED, Registry
    from firebreak.scenarios import pricing
    from firebreak.settings import Settings

    settings = Settings.from_env()
    pricing.setup(settings)
    assert shadow_evaluation("pricing", settings=settings) is None  # no challenger yet: nothing to compare
    version = register_challenger({"min_price_to_cost": 2.5}, seasonal=False)  # prices at 2.5x cost
    result = shadow_evaluation("pricing", settings=settings)
    assert result is not None
    [finding] = result.findings
    assert finding.breached is False and "challenger blocked from promotion" in finding.summary
    assert finding.figures["verdict"] == "challenger_worse"
    assert finding.figures["challenger_mae"] > finding.figures["champion_mae"]
    assert result.incident_request() is None
    tags = Registry(settings).get_version("pricing", version).tags
    assert tags[TAG_BLOCKED].startswith("shadow_evaluation ")
