"""Spine benchmarks: DAG parse time and one pricing incident's wall time, each against an anchor.

Anchors, measured in the same run:
- parse: an empty DAG file (just `airflow.sdk` and one @dag with one @task) — Airflow's floor;
- incident: a one-task DAG through `dag.test()` — the fixed cost of a run on SQLite.

Run: `.venv/bin/python benchmarks/bench_spine.py [--repeat N]`; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANCHOR_DAG = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import dag, task

    @dag(dag_id="anchor", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
    def anchor():
        @task
        def noop():
            return {"ok": True}
        noop()

    anchor()
    """
)
# The dag-processor forks each parsing child from a process that has Airflow core loaded
# (airflow.dag_processing.processor and what it imports): that is the state a DAG file is
# parsed in, so the probe loads the same first, and freezes the garbage collector's view of
# it as the manager does before forking (airflow/dag_processing/manager.py): without that a
# full collection over Airflow's objects lands inside whichever file allocates enough to
# trigger it (~140 ms, most of a parse). What differs per file is its own imports and work.
PARSE_PROBE = """
import gc, importlib.util, sys, time
import airflow.sdk, pendulum
import airflow.dag_processing.processor
gc.freeze()
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("d", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - start)
"""


def parse_seconds(path: Path, repeat: int, airflow_home: Path) -> list[float]:
    """Parse one DAG file in a fresh interpreter, configured as Airflow's parser is (plugins on the path)."""
    env = dict(
        os.environ,
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(path.parent),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
    )
    return [
        float(
            subprocess.run(
                [sys.executable, "-c", PARSE_PROBE, str(path)], capture_output=True, text=True, check=True, env=env
            ).stdout
        )
        for _ in range(repeat)
    ]


def incident_seconds(dags: Path, dag_id: str, conf: dict[str, object], home: Path, setup: bool) -> float:
    """One dag.test() in a fresh interpreter, the way `airflow dags test` runs it."""
    script = f"""
import json, time
from firebreak.scenarios import pricing
from firebreak.settings import Settings
if {setup!r}:
    pricing.setup(Settings.from_env())
from airflow.utils import db
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder={str(dags)!r}).dags[{dag_id!r}]
start = time.perf_counter()
run = dag.test(run_conf=json.loads({json.dumps(conf)!r}))
assert str(run.state) == "success", run.state
print(time.perf_counter() - start)
"""
    airflow_home = home / "airflow"
    env = dict(
        os.environ,
        FIREBREAK_HOME=str(home),
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        # The DAGs import the plugins' modules (the inbox trigger, the on-call notifiers).
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{airflow_home}/airflow.db",
        # dag.test() runs no scheduler to fire Deadline Alerts (as `airflow dags test`, firebreak demo).
        FIREBREAK_DEADLINE_ALERTS="off",
        GIT_PYTHON_REFRESH="quiet",
    )
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, check=True)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--parse-only", action="store_true", help="skip the incident runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        anchor_dir = tmp_path / "anchor_dags"
        anchor_dir.mkdir()
        (anchor_dir / "anchor.py").write_text(ANCHOR_DAG)
        rows = []
        anchor_parse = statistics.median(parse_seconds(anchor_dir / "anchor.py", args.repeat, tmp_path / "parse-home"))
        rows.append(("parse: anchor (empty one-task DAG)", anchor_parse, 1.0))
        for path in sorted((REPO / "dags").glob("*.py")):
            median = statistics.median(parse_seconds(path, args.repeat, tmp_path / "parse-home"))
            rows.append((f"parse: dags/{path.name}", median, median / anchor_parse))
        anchor_runs, incident_runs = [], []
        for i in range(0 if args.parse_only else max(1, args.repeat // 2)):
            anchor_runs.append(incident_seconds(anchor_dir, "anchor", {}, tmp_path / f"a{i}", setup=False))
            conf = {"model": "pricing", "dedup_key": f"bench-{i}", "description": "benchmark"}
            started = time.perf_counter()
            incident_runs.append(
                incident_seconds(REPO / "dags", "incident_response", conf, tmp_path / f"p{i}", setup=True)
            )
            print(
                f"run {i}: anchor {anchor_runs[-1]:.1f}s, incident {incident_runs[-1]:.1f}s "
                f"(with setup {time.perf_counter() - started:.1f}s)",
                file=sys.stderr,
            )
        if incident_runs:
            anchor_run = statistics.median(anchor_runs)
            incident = statistics.median(incident_runs)
            rows.append(("dag.test: anchor (one no-op task)", anchor_run, 1.0))
            rows.append(("dag.test: incident_response, pricing incident", incident, incident / anchor_run))
    print("| measurement | median | × anchor |")
    print("|---|---|---|")
    for name, seconds, ratio in rows:
        value = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.1f} s"
        print(f"| {name} | {value} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
