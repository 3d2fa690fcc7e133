"""Receivers on loopback for the on-call tests: a PagerDuty-shaped Events API, a Slack-shaped
incoming webhook, and a real SMTP server (aiosmtpd).

PagerDuty and Slack cannot be reached from CI: these receivers stand in for them and check
every body they get — PagerDuty's against the published Events API v2 schema
(``tests/unit/schemas/pagerduty_events_v2.json``), Slack's against the incoming-webhook
shape (``text`` and ``blocks``). A body that breaks the schema is answered 400, as PagerDuty
would, and kept in ``rejected`` so a test can fail on it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SCHEMA = json.loads((Path(__file__).parent / "unit" / "schemas" / "pagerduty_events_v2.json").read_text())
ROUTING_KEYS = {"pagerduty_pricing": "R" * 32, "pagerduty_ml_platform": "B" * 32}
SLACK_TOKEN = "T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"


def pagerduty_errors(body: dict[str, Any], change: bool) -> list[str]:
    """What is wrong with an Events API v2 body by the published schema (empty: valid)."""
    from jsonschema import Draft202012Validator

    schema = {**SCHEMA["change" if change else "alert"], "$defs": SCHEMA["$defs"]}
    return [e.message for e in Draft202012Validator(schema).iter_errors(body)]


@dataclass
class Received:
    at: float  # time.time() when the receiver got it
    path: str
    body: dict[str, Any]


@dataclass
class HttpReceiver:
    """A loopback HTTP server that records every JSON body POSTed to it."""

    kind: str  # "pagerduty" | "slack"
    received: list[Received] = field(default_factory=list)
    rejected: list[tuple[dict[str, Any], list[str]]] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with 503 (PagerDuty's "retry later")

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._answer(400, {"status": "invalid event", "message": "JSON parse error"})
                    return
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self._answer(503, {"status": "unavailable"})
                    return
                errors = receiver.check(self.path, body)
                if errors:
                    receiver.rejected.append((body, errors))
                    self._answer(
                        400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
                    )
                    return
                receiver.received.append(Received(time.time(), self.path, body))
                if receiver.kind == "slack":
                    self._answer(200, None)
                else:
                    self._answer(
                        202, {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key", "")}
                    )

            def _answer(self, code: int, body: dict[str, Any] | None) -> None:
                data = b"ok" if body is None else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain" if body is None else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def check(self, path: str, body: dict[str, Any]) -> list[str]:
        if self.kind == "pagerduty":
            if path not in ("/v2/enqueue", "/v2/change/enqueue"):
                return [f"unknown endpoint {path}"]
            return pagerduty_errors(body, change=path == "/v2/change/enqueue")
        if path != f"/services/{SLACK_TOKEN}":
            return [f"unknown webhook {path}"]
        errors = [] if isinstance(body.get("text"), str) and body["text"] else ["'text' is required"]
        if not isinstance(body.get("blocks", []), list):
            errors.append("'blocks' must be a list")
        return errors

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()

    def events(self, action: str | None = None, routing_key: str | None = None) -> list[Received]:
        return [
            r
            for r in self.received
            if (action is None or r.body.get("event_action", "change" if "change" in r.path else None) == action)
            and (routing_key is None or r.body.get("routing_key") == routing_key)
        ]


class MailReceiver:
    """A real SMTP server on loopback (aiosmtpd) keeping every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[tuple[float, Any]] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                outer.messages.append((time.time(), message_from_bytes(envelope.content)))
                return "250 Message accepted for delivery"

        from firebreak_dev.services import free_port

        # aiosmtpd checks its own server by connecting to the port it was given: not 0.
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> MailReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class Receivers:
    pagerduty: HttpReceiver
    slack: HttpReceiver
    mail: MailReceiver

    def connections(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables pointing the policies' connections at the receivers."""
        pd = {
            f"AIRFLOW_CONN_{conn.upper()}": json.dumps(
                {"conn_type": "pagerduty_events", "host": self.pagerduty.url, "password": key}
            )
            for conn, key in ROUTING_KEYS.items()
        }
        slack = json.dumps(
            {"conn_type": "slack_incoming_webhook", "host": f"{self.slack.url}/services", "password": SLACK_TOKEN}
        )
        smtp = json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": self.mail.port,
                "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "firebreak@example.com"},
            }
        )
        return {**pd, "AIRFLOW_CONN_SLACK_PRICING": slack, "AIRFLOW_CONN_SMTP_DEFAULT": smtp}


@contextmanager
def receivers() -> Iterator[Receivers]:
    found = Receivers(HttpReceiver("pagerduty").start(), HttpReceiver("slack").start(), MailReceiver().start())
    try:
        yield found
    finally:
        found.pagerduty.stop()
        found.slack.stop()
        found.mail.stop()
