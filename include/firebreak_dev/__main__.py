"""``python -m firebreak_dev up``: the local stack behind ``make up``, until interrupted.

Airflow (api-server, scheduler, dag-processor, triggerer, via ``airflow standalone``) with the
alert intake, and the MLflow UI, on 127.0.0.1 with the demo's state (FIREBREAK_HOME).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from firebreak.errors import FirebreakError
from firebreak.settings import Settings
from firebreak_dev.local import LocalStack


def up(settings: Settings, airflow_port: int, mlflow_port: int) -> int:
    """Start Airflow (with the alert intake) and the MLflow UI on loopback until interrupted."""
    if not (settings.home / "state.db").exists():
        print("note: no demo state yet; run `make demo` first to have an incident to look at", file=sys.stderr)
    stack = LocalStack(settings, airflow_port=airflow_port, mlflow_port=mlflow_port)
    print(f"starting Airflow and MLflow on 127.0.0.1 (state: {settings.home}) ...")
    stack.start()
    print(
        f"""
  Airflow UI     {stack.airflow_url}   login: admin / {stack.admin_password()}
  Incidents      {stack.airflow_url}/plugin/firebreak-incidents   (the console, after logging in)
  MLflow UI      {stack.mlflow_url}
  Alert intake   {stack.intake_url}/alertmanager   (and /generic)
  Alert token    {stack.alert_token}

  Try an alert:
    curl -s -X POST {stack.intake_url}/generic -H 'Authorization: Bearer {stack.alert_token}' \\
      -H 'Content-Type: application/json' \\
      -d '{{"model": "pricing", "signal": "low_confidence_rate", "value": 0.4, "threshold": 0.2, "dedup_key": "try-1"}}'

  Logs in {settings.home / "stack-logs"}. Ctrl-C stops everything."""
    )
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping:
            for service in stack.services:
                if service.process is not None and service.process.poll() is not None:
                    print(
                        f"{service.name} exited ({service.process.returncode}); see {service.log_path}", file=sys.stderr
                    )
                    return 1
            time.sleep(1)
    finally:
        print("stopping ...")
        stack.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firebreak_dev", description="Firebreak's development tooling.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser(
        "up", help="Airflow (with the alert intake) and the MLflow UI on loopback, on the demo's state"
    )
    p_up.add_argument("--airflow-port", type=int, default=8080)
    p_up.add_argument("--mlflow-port", type=int, default=5000)
    p_record = sub.add_parser(
        "record-incidents",
        help="write the state-DB rows of finished incidents to firebreak_dev/recorded_incidents.json",
    )
    p_record.add_argument("incidents", nargs="+", metavar="INCIDENT_ID=SCENARIO")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        if args.command == "record-incidents":
            from firebreak_dev.recorded import RECORDING, export

            chosen = dict(item.split("=", 1) for item in args.incidents)
            RECORDING.write_text(json.dumps(export(settings, chosen), indent=1, default=str) + "\n")
            print(f"recorded {len(chosen)} incident(s) to {RECORDING}")
            return 0
        return up(settings, args.airflow_port, args.mlflow_port)
    except FirebreakError as exc:
        print(f"firebreak_dev: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
