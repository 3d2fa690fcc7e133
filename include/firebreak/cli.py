"""The ``firebreak`` command: run the demo, set up scenarios, read incidents.

Anything the DAG does is a plain library call; this command never imports Airflow
(the demo runs the real DAG through the ``airflow`` command of the same environment).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import time
import warnings
from datetime import UTC, datetime

from firebreak import prediction_log_cli, scenarios
from firebreak.containment import route_cli
from firebreak.detection import drift_cli
from firebreak.embedded import airflow_env, migrate, run_incident
from firebreak.errors import ExitCode, FirebreakError, NotFound
from firebreak.investigation import triage_cli
from firebreak.onboarding import cli as onboarding_cli
from firebreak.oncall import cli as oncall_cli
from firebreak.serving import cli as serving_cli
from firebreak.settings import Settings


def demo(scenario: str, settings: Settings) -> int:
    """Set the scenario up, run the real incident_response DAG on it, print the summary."""
    from firebreak.incidents.identity import incident_id_from_conf

    started = time.perf_counter()
    print(f"firebreak demo: scenario {scenario!r}, state in {settings.home}")
    setup_log = settings.home / "demo-setup.log"
    setup_log.parent.mkdir(parents=True, exist_ok=True)
    # MLflow narrates every registration on stderr; keep it in a file, not in the summary.
    with setup_log.open("w") as log, contextlib.redirect_stderr(log), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")  # read when mlflow is first imported
        facts = scenarios.setup(scenario, settings)
    print(
        f"  set up: {facts['model']} v{facts['champion']} is champion; {facts['logged_predictions']} predictions "
        f"logged ({facts['labelled']} labelled)"
    )
    migrated = migrate(settings)
    if migrated.returncode != 0:
        print(migrated.stdout[-2000:], migrated.stderr[-4000:], file=sys.stderr)
        return 1
    conf = {
        "model": facts["model"],
        "failure_type": "unknown",
        "severity": "auto",
        "remediation": "auto",
        "dry_run": False,
        **scenarios.alert(scenario),
        "dedup_key": f"demo-{scenario}-{datetime.now(UTC):%Y%m%dT%H%M%S}",
    }
    incident_id = incident_id_from_conf(conf, "")
    print(f"  running incident_response for incident {incident_id} (the DAG in-process, run id = incident id) ...")
    run_started = time.perf_counter()
    log_path = settings.home / "demo-airflow.log"
    returncode = run_incident(conf, settings, log_path, run_id=incident_id)
    run_seconds = time.perf_counter() - run_started
    print(f"  DAG run finished in {run_seconds:.1f} s (exit {returncode}); Airflow output: {log_path}")
    print()
    print(summary(incident_id, settings))
    print(f"\ndemo wall time {time.perf_counter() - started:.1f} s")
    return 0 if show_status(incident_id, settings) in {"resolved", "contained_needs_human"} else 1


def show_status(incident_id: str, settings: Settings) -> str | None:
    from firebreak.incidents.store import IncidentStore

    incident = IncidentStore(settings.state_db_url).get_incident(incident_id)
    return str(incident.status) if incident else None


def summary(incident_id: str, settings: Settings) -> str:
    """The short incident summary: what happened, by the evidence.

    Raises:
        NotFound: no such incident in this state DB.
    """
    from firebreak.incidents.store import IncidentStore
    from firebreak.registry.mlflow_registry import Registry

    store = IncidentStore(settings.state_db_url)
    incident = store.get_incident(incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id!r} not found in {settings.state_db_url}")
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
    aliases = Registry(settings).aliases(incident.model)
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


# Commands that only read a state: an absent FIREBREAK_HOME is an error, never a new empty state.
READS_STATE = {"incident", "incidents"}
# Commands that write one: a new FIREBREAK_HOME is said out loud.
WRITES_STATE = {"demo", "setup", "serve", "breaker", "route"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="firebreak", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run a demo scenario end to end through the incident_response DAG")
    p_demo.add_argument("--scenario", default="pricing", choices=list(scenarios.SCENARIOS))
    p_setup = sub.add_parser("setup", help="(re)build a scenario's data, models and traffic")
    p_setup.add_argument("scenario", choices=list(scenarios.SCENARIOS))
    p_show = sub.add_parser("incident", help="print an incident's summary")
    p_show.add_argument("incident_id")
    sub.add_parser("incidents", help="list incidents")
    drift_cli.add_parser(sub)
    serving_cli.add_parsers(sub)
    triage_cli.add_parser(sub)
    onboarding_cli.add_parsers(sub)
    route_cli.add_parser(sub)
    oncall_cli.add_parser(sub)
    prediction_log_cli.add_parsers(sub)
    sub.add_parser("airflow-env", help="print the environment for the embedded Airflow (for `eval`)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command in READS_STATE and not settings.home.is_dir():
        print(f"firebreak: error: no Firebreak state at {settings.home} (set FIREBREAK_HOME)", file=sys.stderr)
        return ExitCode.NOT_FOUND
    if args.command in WRITES_STATE and settings.ensure_home():
        print(f"firebreak: created FIREBREAK_HOME at {settings.home}", file=sys.stderr)
    try:
        if args.command == "demo":
            return demo(args.scenario, settings)
        if args.command == "drift":
            return drift_cli.run(args)
        if args.command == "serve":
            return serving_cli.serve(args, settings)
        if args.command == "breaker":
            return serving_cli.breaker(args, settings)
        if args.command == "triage":
            return triage_cli.run(args)
        if args.command == "route":
            return route_cli.run(args, settings)
        if args.command == "ack":
            return oncall_cli.run(args, settings)
        if args.command in ("log", "labels"):
            return prediction_log_cli.run(args, settings)
        if args.command in onboarding_cli.COMMANDS:
            return onboarding_cli.run(args, settings, summary)
        if args.command == "setup":
            print(json.dumps(scenarios.setup(args.scenario, settings), indent=2))
        elif args.command == "incident":
            print(summary(args.incident_id, settings))
        elif args.command == "incidents":
            from firebreak.incidents.store import IncidentStore

            for inc in IncidentStore(settings.state_db_url).list_incidents():
                print(
                    f"{inc.id}  {inc.model:<12} {inc.status:<22} {inc.severity or '-':<5} {inc.opened_at:%Y-%m-%d %H:%M}  {inc.outcome or ''}"
                )
        elif args.command == "airflow-env":
            env = airflow_env(settings)
            for key in sorted(k for k in env if k.startswith(("AIRFLOW", "FIREBREAK"))):
                print(f"export {key}={shlex.quote(env[key])}")
    except NotFound as exc:
        print(f"firebreak: error: {exc}", file=sys.stderr)
        return ExitCode.NOT_FOUND
    except FirebreakError as exc:
        print(f"firebreak: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    return ExitCode.OK


def command() -> None:
    """The ``firebreak`` executable: :func:`main`, then leave without the interpreter's native teardown.

    pyarrow's thread pools can abort a process in that teardown after a Parquet read
    (``std::terminate`` on a still-joinable thread: apache/arrow#34314): measured on a 2-core
    machine, 11 of 172 short runs that read a Parquet file ended in SIGABRT (exit 134,
    "terminate called without an active exception") instead of their exit code; none of 120
    leaving this way did.
    Everything Python's own exit runs still runs first: other threads are waited for, the
    exit handlers (MLflow's, logging's, multiprocessing's) run, output is flushed.
    """
    import atexit
    import threading

    try:
        code: int | str | None = main()
    except SystemExit as exc:  # argparse: --help, usage errors
        code = exc.code
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    # What the interpreter's own exit does first: threading's exit callbacks (a thread pool's
    # workers told to stop), then every non-daemon thread joined; then the atexit handlers.
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    command()
