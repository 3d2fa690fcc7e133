"""Real peers: Prometheus scrapes a metric, a rule fires, Alertmanager delivers to the intake
of a real Airflow (api-server, scheduler, dag-processor, triggerer via `airflow standalone`)
on loopback — and exactly one incident_response run exists, however often Alertmanager
repeats itself. Then the metric recovers and the `resolved` lands on the incident's timeline.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import system_binary

pytestmark = pytest.mark.integration

TOKEN = "peer-test-token"


class Exporter:
    """A metrics endpoint whose value the test controls."""

    def __init__(self) -> None:
        self.value = 0.45
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = (
                    "# TYPE firebreak_low_confidence_rate gauge\n"
                    f'firebreak_low_confidence_rate{{model="pricing"}} {exporter.value}\n'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real Airflow for the module (it takes ~40 s to start)."""
    from firebreak.settings import Settings
    from firebreak_dev.local import LocalStack
    from firebreak_dev.services import free_port

    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("peer") / "firebreak"
        mp.setenv("FIREBREAK_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        # DAGs start paused: incident runs are created and stay queued, so the tests measure
        # the intake, not the SOP; the inbox test unpauses alert_intake itself.
        # Intake only (incident runs stay queued): no preloaded ML libraries to fork from.
        s = LocalStack(
            Settings.from_env(),
            airflow_port=free_port(),
            mlflow_port=None,
            alert_token=TOKEN,
            unpause=False,
            # Unchanged DAG files are parsed again (no STATIC_DAGS): the inbox test unpauses
            # alert_intake, whose asset watcher starts at the next parse.
            extra_env={"FIREBREAK_PRELOAD": "off"},
        )
        s.start(timeout=180)
        try:
            yield s
        finally:
            s.stop()


def start_peers(tmp: Path, exporter: Exporter, intake_url: str) -> list[subprocess.Popen[bytes]]:
    from firebreak_dev.services import free_port

    prometheus, alertmanager = system_binary("prometheus"), system_binary("prometheus-alertmanager")
    am_port, prom_port = free_port(), free_port()
    (tmp / "rules.yml").write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "firebreak",
                        "rules": [
                            {
                                "alert": "PricingLowConfidence",
                                "expr": 'firebreak_low_confidence_rate{model="pricing"} > 0.2',
                                "for": "0s",
                                "labels": {"severity": "critical", "failure_class": "drift"},
                                "annotations": {
                                    "summary": "pricing confidence under the floor on {{ $value }} of requests"
                                },
                            }
                        ],
                    }
                ]
            }
        )
    )
    (tmp / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(tmp / "rules.yml")],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
                "scrape_configs": [
                    {"job_name": "gateway", "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}
                ],
            }
        )
    )
    (tmp / "alertmanager.yml").write_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "firebreak",
                    "group_by": ["alertname", "model"],
                    "group_wait": "1s",
                    "group_interval": "2s",
                    "repeat_interval": "4s",
                },
                "receivers": [
                    {
                        "name": "firebreak",
                        "webhook_configs": [
                            {
                                "url": f"{intake_url}/alertmanager",
                                "send_resolved": True,
                                "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}},
                            }
                        ],
                    }
                ],
            }
        )
    )
    logs = (tmp / "peers.log").open("ab")
    return [
        subprocess.Popen(
            [
                alertmanager,
                f"--config.file={tmp / 'alertmanager.yml'}",
                f"--storage.path={tmp / 'am'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            stdout=logs,
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=logs,
            stderr=subprocess.STDOUT,
        ),
    ]


def test_alertmanager_opens_exactly_one_incident(stack: Any, tmp_path: Path) -> None:
    from tests.state import State

    system_binary("prometheus")
    system_binary("prometheus-alertmanager")
    exporter = Exporter()
    store = State(stack.settings.state_db_url)
    peers = start_peers(tmp_path, exporter, stack.intake_url)
    try:

        def processed() -> list[dict[str, Any]]:
            return [d for d in store.alerts.deliveries("alertmanager") if d["status"] == "processed"]

        first = wait_for(processed, 90, "Alertmanager's first delivery")[0]
        opened = first["detail"]["alerts"][0]
        assert opened["action"] == "opened" and opened["model"] == "pricing"
        incident_id = opened["incident_id"]
        # Alertmanager repeats the notification every repeat_interval: let it, several times.
        wait_for(lambda: len(processed()) >= 4, 60, "Alertmanager's repeat notifications")
        token = stack.api_token()
        runs = stack.api_get("/api/v2/dags/incident_response/dagRuns", token)
        assert runs["total_entries"] == 1
        [run] = runs["dag_runs"]
        assert run["dag_run_id"] == incident_id
        assert run["conf"]["model"] == "pricing"
        assert run["conf"]["severity"] == "SEV1" and run["conf"]["failure_type"] == "drift"
        assert run["conf"]["description"].startswith("[PricingLowConfidence] pricing confidence under the floor")
        repeats = [d["detail"]["alerts"][0]["action"] for d in processed()[1:]]
        assert set(repeats) == {"duplicate"}

        # The metric recovers: Alertmanager sends `resolved`; it lands on the timeline.
        exporter.value = 0.05
        wait_for(
            lambda: any(e.kind == "alert_resolved" for e in store.incidents.events(incident_id)),
            60,
            "the resolved notification",
        )
        assert stack.api_get("/api/v2/dags/incident_response/dagRuns", token)["total_entries"] == 1
    finally:
        for p in peers:
            p.terminate()
            p.wait(timeout=10)
        exporter.server.shutdown()


def test_a_file_in_the_alert_inbox_opens_an_incident_through_the_asset_watcher(stack: Any) -> None:
    """The Airflow-native path, live: triggerer (AssetWatcher) -> alert_intake run -> incident_response run."""
    import json
    import urllib.error

    from firebreak.incidents.identity import incident_id_for

    token = stack.api_token()
    stack.api_request("PATCH", "/api/v2/dags/alert_intake", token, {"is_paused": False})
    inbox = stack.settings.home / "alert-inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    body = {
        "version": "4",
        "groupKey": "inbox",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "PricingDrift", "model": "pricing", "failure_class": "drift"},
                "annotations": {"summary": "psi above 0.2"},
                "startsAt": "2026-11-27T08:00:00Z",
                "fingerprint": "inbox-live",
            }
        ],
    }
    (inbox / "alertmanager-live.json").write_text(json.dumps(body))
    incident_id = incident_id_for("pricing", "inbox-live|2026-11-27T08:00:00+00:00")

    def opened() -> dict[str, Any] | None:
        try:
            return dict(stack.api_get(f"/api/v2/dags/incident_response/dagRuns/{incident_id}", token))
        except urllib.error.HTTPError:
            return None

    run = wait_for(opened, 150, "the incident run opened from the inbox")
    assert run["conf"]["failure_type"] == "drift" and run["conf"]["dedup_key"] == "inbox-live|2026-11-27T08:00:00+00:00"
    assert (inbox / "claimed" / "alertmanager-live.json").exists() and not (inbox / "alertmanager-live.json").exists()
