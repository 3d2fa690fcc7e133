"""Alert intake: store the delivery, deduplicate, open at most one incident per episode.

The rules senders rely on:
- the raw delivery is stored before any answer; a store that is down answers 503, so
  Alertmanager retries (it retries 5xx and network errors only — never answer 429);
- malformed JSON is 400, a body that breaks the schema 422, and nothing starts;
- an episode (Alertmanager: ``fingerprint|startsAt``; generic: the sender's dedup key)
  maps to one deterministic incident id, which is the DAG run id: replays, repeat
  notifications and concurrent duplicates find the run that exists and answer 2xx;
- ``resolved`` goes on the incident's timeline; a resolved episode never reopens.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from pydantic import ValidationError

from firebreak.alerts.schemas import (
    VENDOR_PARSERS,
    Alert,
    AlertmanagerWebhook,
    GenericAlert,
    from_alertmanager,
    from_generic,
)
from firebreak.alerts.store import DeliveryStore
from firebreak.errors import FirebreakError, PolicyError, UnknownModelError
from firebreak.incidents.clock import stamp
from firebreak.incidents.enums import ClockMark
from firebreak.incidents.identity import incident_id_for
from firebreak.incidents.store import IncidentStore
from firebreak.policy.schema import load_policy
from firebreak.state_db import utcnow

log = logging.getLogger(__name__)

Source = Literal["alertmanager", "generic", "grafana", "arize", "fiddler"]


class IntakeUnavailable(FirebreakError):
    """A dependency is down for now (state DB, orchestrator): the sender should retry."""


class StartRejected(FirebreakError):
    """The orchestrator refused the incident's parameters."""


class IncidentStarter(Protocol):
    def __call__(self, run_id: str, conf: dict[str, Any]) -> bool:
        """Start incident_response with this run id; False when that run already exists."""


@dataclass
class IntakeResult:
    status_code: int
    delivery_id: int | None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"delivery_id": self.delivery_id, "alerts": self.alerts}
        if self.error:
            out["error"] = self.error
        return out


def receive(
    source: Source, body: bytes, *, state_db_url: str, starter: IncidentStarter, policies_dir: Path
) -> IntakeResult:
    """Handle one delivery end to end; never raises for bad input or a dependency outage."""
    text = body.decode("utf-8", errors="replace")
    try:
        store, incidents = DeliveryStore(state_db_url), IncidentStore(state_db_url)
    except (sa.exc.SQLAlchemyError, OSError) as exc:  # the store cannot even be opened: the sender retries
        log.error("alert intake: state DB unavailable, answering 503: %s", exc)
        return IntakeResult(503, None, error="state DB unavailable; retry")
    try:
        delivery_id = store.record_delivery(source, text)
    except sa.exc.SQLAlchemyError as exc:
        log.error("alert intake: state DB unavailable, answering 503: %s", exc)
        return IntakeResult(503, None, error="state DB unavailable; retry")
    try:
        alerts, notes = _parse(source, text)
    except _Rejected as exc:
        store.finish_delivery(delivery_id, "rejected", {"error": str(exc)})
        return IntakeResult(exc.status_code, delivery_id, error=str(exc))
    try:
        results = [
            _handle(alert, delivery_id, store=store, incidents=incidents, starter=starter, policies_dir=policies_dir)
            for alert in alerts
        ]
    except (IntakeUnavailable, sa.exc.SQLAlchemyError) as exc:
        log.error("alert intake: delivery %s not fully processed, answering 503: %s", delivery_id, exc)
        _finish_quietly(store, delivery_id, {"error": str(exc), "retry": True})
        return IntakeResult(503, delivery_id, error=f"temporarily unavailable: {exc}; retry")
    accepted = [r for r in results if r["action"] != "rejected"]
    status = 200 if accepted else 422
    store.finish_delivery(delivery_id, "processed" if accepted else "rejected", {"alerts": results, **notes})
    error = None if accepted else "; ".join(r["detail"] for r in results)
    return IntakeResult(status, delivery_id, results, error)


class _Rejected(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def _parse(source: Source, text: str) -> tuple[list[Alert], dict[str, Any]]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Rejected(400, f"body is not valid JSON: {exc}") from exc
    try:
        if source == "alertmanager":
            webhook = AlertmanagerWebhook.model_validate(payload)
            notes = {}
            if webhook.truncatedAlerts:
                # Alertmanager dropped alerts from this group to respect max_alerts: they are
                # not lost to Alertmanager, but this delivery does not carry them.
                log.warning("alertmanager group %s truncated %d alerts", webhook.groupKey, webhook.truncatedAlerts)
                notes["truncated_alerts"] = webhook.truncatedAlerts
            return from_alertmanager(webhook), notes
        if source in VENDOR_PARSERS:
            return VENDOR_PARSERS[source](payload), {}
        return [from_generic(GenericAlert.model_validate(payload))], {}
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise _Rejected(422, f"invalid {source} alert: {problems}") from exc


def _handle(
    alert: Alert,
    delivery_id: int,
    *,
    store: DeliveryStore,
    incidents: IncidentStore,
    starter: IncidentStarter,
    policies_dir: Path,
) -> dict[str, Any]:
    base = {"model": alert.model, "dedup_key": alert.dedup_key, "status": alert.status}
    if not alert.model:
        return {**base, "action": "rejected", "detail": "alert has no 'model' label"}
    try:
        load_policy(alert.model, policies_dir)
    except (UnknownModelError, PolicyError) as exc:
        return {**base, "action": "rejected", "detail": str(exc)}
    incident_id = incident_id_for(alert.model, alert.dedup_key)
    episode = store.touch_episode(incident_id, alert.model, alert.dedup_key, resolved=alert.status == "resolved")
    where = f"{alert.source} delivery #{delivery_id}"
    if alert.status == "resolved":
        incidents.add_event(
            incident_id, "alert_resolved", f"{where}: alert resolved at the source", {"delivery_id": delivery_id}
        )
        return {**base, "incident_id": incident_id, "action": "resolved", "detail": "recorded on the timeline"}
    if episode["resolved_at"] is not None:
        incidents.add_event(incident_id, "alert_ignored", f"{where}: firing after the episode resolved; not reopened")
        return {**base, "incident_id": incident_id, "action": "ignored", "detail": "episode already resolved"}
    # The clock's `detected`: when the sender saw the breach begin (the first delivery wins), set
    # before the run exists so open_incident finds it.
    now = utcnow()  # a sender's clock running ahead never puts detection in the future
    detected = min(alert.started_at, now) if alert.started_at and alert.started_at.tzinfo else now
    stamp(incidents, incident_id, ClockMark.DETECTED, detected, f"{alert.source} alert")
    try:
        created = starter(incident_id, alert.conf())
    except StartRejected as exc:
        incidents.add_event(incident_id, "alert_rejected", f"{where}: {exc}")
        return {**base, "incident_id": incident_id, "action": "rejected", "detail": str(exc)}
    action = "opened" if created else "duplicate"
    message = (
        "started incident_response" if created else f"duplicate (delivery {episode['deliveries']} of this episode)"
    )
    incidents.add_event(incident_id, f"alert_{action}", f"{where}: {message}", {"delivery_id": delivery_id})
    return {**base, "incident_id": incident_id, "action": action, "detail": message}


def _finish_quietly(store: DeliveryStore, delivery_id: int, detail: dict[str, Any]) -> None:
    try:
        store.finish_delivery(delivery_id, "received", detail)
    except sa.exc.SQLAlchemyError:
        log.exception("could not annotate delivery %s", delivery_id)
