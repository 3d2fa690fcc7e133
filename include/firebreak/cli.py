"""The ``firebreak`` command: run the demo, set up scenarios, read incidents.

Anything the DAG does is a plain library call; this command never imports Airflow
(the demo runs the real DAG through the ``airflow`` command of the same environment).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from firebreak.errors import FirebreakError
from firebreak.settings import INCLUDE_DIR, Settings

REPO = INCLUDE_DIR.parent
SCENARIOS = ["pricing"]


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for an embedded Airflow on SQLite whose state lives under FIREBREAK_HOME."""
    airflow_home = settings.home / "airflow"
    env = dict(os.environ)
    env.update(
        {
            "FIREBREAK_HOME": str(settings.home),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": env.get(
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{airflow_home / 'airflow.db'}"
            ),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
            "GIT_PYTHON_REFRESH": "quiet",
        }
    )
    return env


def _airflow(settings: Settings, *args: str, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("airflow")
    if not exe.exists():
        found = shutil.which("airflow")
        if found is None:
            raise FirebreakError("the 'airflow' command is not installed in this environment")
        exe = Path(found)
    return subprocess.run([str(exe), *args], env=airflow_env(settings), text=True, capture_output=quiet, check=False)


def setup_scenario(name: str, settings: Settings) -> dict[str, Any]:
    if name != "pricing":
        raise FirebreakError(f"unknown scenario {name!r}; known: {SCENARIOS}")
    from firebreak.scenarios import pricing

    return pricing.setup(settings)


def demo(scenario: str, settings: Settings) -> int:
    """Set the scenario up, run the real incident_response DAG on it, print the summary."""
    from firebreak.response import incident_id_from_conf

    started = time.perf_counter()
    print(f"firebreak demo: scenario {scenario!r}, state in {settings.home}")
    facts = setup_scenario(scenario, settings)
    print(
        f"  set up: {facts['model']} v{facts['champion']} is champion; {facts['logged_predictions']} predictions "
        f"logged ({facts['labelled']} labelled)"
    )
    migrated = _airflow(settings, "db", "migrate", quiet=True)
    if migrated.returncode != 0:
        print(migrated.stdout[-2000:], migrated.stderr[-4000:], file=sys.stderr)
        return 1
    conf = {
        "model": facts["model"],
        "failure_type": "unknown",
        "severity": "auto",
        "description": "Alert: pricing confidence under the 0.70 floor on more than 20% of requests",
        "remediation": "auto",
        "dry_run": False,
        "dedup_key": f"demo-{scenario}-{datetime.now(UTC):%Y%m%dT%H%M%S}",
    }
    incident_id = incident_id_from_conf(conf, "")
    print(f"  running incident_response for incident {incident_id} (airflow dags test) ...")
    run_started = time.perf_counter()
    log_path = settings.home / "demo-airflow.log"
    with log_path.open("w") as log:
        exe = Path(sys.executable).with_name("airflow")
        result = subprocess.run(
            [str(exe), "dags", "test", "incident_response", "--conf", json.dumps(conf)],
            env=airflow_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    run_seconds = time.perf_counter() - run_started
    print(f"  DAG run finished in {run_seconds:.1f} s (exit {result.returncode}); Airflow output: {log_path}")
    print()
    print(summary(incident_id, settings))
    print(f"\ndemo wall time {time.perf_counter() - started:.1f} s")
    return 0 if show_status(incident_id, settings) in {"resolved", "contained_needs_human"} else 1


def show_status(incident_id: str, settings: Settings) -> str | None:
    from firebreak.incidents.store import StateStore

    incident = StateStore(settings.state_db_url).get_incident(incident_id)
    return str(incident.status) if incident else None


def summary(incident_id: str, settings: Settings) -> str:
    """The short incident summary: what happened, by the evidence."""
    from firebreak.incidents.store import StateStore
    from firebreak.registry.mlflow_registry import Registry

    store = StateStore(settings.state_db_url)
    incident = store.get_incident(incident_id)
    if incident is None:
        return f"incident {incident_id}: not found in {settings.state_db_url}"
    ev = store.get_evidence(incident_id)
    drift = ev.get("drift", {})
    top = [f"{c['column']} ({c['score']:.3g})" for c in drift.get("columns", []) if c.get("drifted")][:3]
    contain = ev.get("containment", {})
    cand = ev.get("candidate", {})
    gate = ev.get("gate", {})
    figures = "; ".join(
        f"{c['name']}: {c['candidate']} (limit {c['limit']}){'' if c['passed'] else ' FAILED'}"
        for c in gate.get("checks", [])
    )
    aliases = Registry(settings, store).aliases(incident.model)
    lines = [
        f"Incident {incident.id}  [{incident.status}]",
        f"  model            {incident.model}",
        f"  severity         {incident.severity}",
        f"  failure class    {incident.failure_class}",
        f"  root cause       {ev.get('diagnosis', {}).get('root_cause', '-')}",
        f"  top drifted      {', '.join(top) or '-'}",
        f"  contained        {contain.get('previous_route', '-')} -> {contain.get('route', '-')}: {contain.get('description', '-')}",
        f"  remediation      {cand.get('remediation', '-')}: {cand.get('detail', '-')}",
        f"  gate             {'passed' if gate.get('passed') else 'refused' if gate else '-'}: {figures or '-'}",
        f"  champion now     v{aliases.get('champion', '-')} (last-known-good v{aliases.get('last-known-good', '-')})",
        f"  outcome          {incident.outcome}",
        f"  post-mortem      {ev.get('postmortem', {}).get('path', '-')}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="firebreak", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run a demo scenario end to end through the incident_response DAG")
    p_demo.add_argument("--scenario", default="pricing", choices=SCENARIOS)
    p_setup = sub.add_parser("setup", help="(re)build a scenario's data, models and traffic")
    p_setup.add_argument("scenario", choices=SCENARIOS)
    p_show = sub.add_parser("incident", help="print an incident's summary")
    p_show.add_argument("incident_id")
    sub.add_parser("incidents", help="list incidents")
    sub.add_parser("airflow-env", help="print the environment for the embedded Airflow (for `eval`)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        if args.command == "demo":
            return demo(args.scenario, settings)
        if args.command == "setup":
            print(json.dumps(setup_scenario(args.scenario, settings), indent=2))
        elif args.command == "incident":
            print(summary(args.incident_id, settings))
        elif args.command == "incidents":
            from firebreak.incidents.store import StateStore

            for inc in StateStore(settings.state_db_url).list_incidents():
                print(
                    f"{inc.id}  {inc.model:<12} {inc.status:<22} {inc.severity or '-':<5} {inc.opened_at:%Y-%m-%d %H:%M}  {inc.outcome or ''}"
                )
        elif args.command == "airflow-env":
            env = airflow_env(settings)
            for key in sorted(k for k in env if k.startswith(("AIRFLOW", "FIREBREAK"))):
                print(f"export {key}={env[key]}")
    except FirebreakError as exc:
        print(f"firebreak: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
