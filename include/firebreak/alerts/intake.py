"""Alert intake: store the delivery, deduplicate, open at most one incident per episode.

The rules senders rely on:
- a body that is not JSON within limits (size, nesting depth, number length: see
  :mod:`firebreak.bounded_json`) is 400/413 and nothing is stored: it could never be
  parsed, and a 5xx would make Alertmanager resend it forever;
- every parseable delivery is stored before any answer; a store that is down answers 503,
  so Alertmanager retries (it retries 5xx and network errors only — never answer 429);
- a body that breaks the schema is 422 (stored, rejected), and nothing starts;
- an episode (Alertmanager: ``fingerprint|startsAt``; generic: the sender's dedup key)
  maps to one deterministic incident id, which is the DAG run id: replays, repeat
  notifications and concurrent duplicates find the run that exists and answer 2xx;
- ``resolved`` goes on the incident's timeline; a resolved episode never reopens;
- work per delivery is bounded: at most :data:`MAX_ALERTS_PER_DELIVERY` alerts are acted
  on, and a model never has more than its policy's ``alerts.max_open_incidents`` incidents
  opened by alerts at once. Alerts past either cap are answered 200 (a retry would not
  change them), kept in the stored delivery, and summed up on the timeline of the model's
  open incident; a capped episode that fires again once the model is under its cap opens then.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
from firebreak.bounded_json import JsonLimits, JsonRejected, loads
from firebreak.errors import FirebreakError, PolicyError, UnknownModelError
from firebreak.incidents.clock import stamp
from firebreak.incidents.enums import ClockMark
from firebreak.incidents.identity import incident_id_for
from firebreak.incidents.store import IncidentStore
from firebreak.policy.schema import Policy, load_policy
from firebreak.state_db import utcnow

log = logging.getLogger(__name__)

Source = Literal["alertmanager", "generic", "grafana", "arize", "fiddler"]

# The body limits of every source (the HTTP app enforces the same while reading).
LIMITS = JsonLimits(max_bytes=1_000_000, max_depth=32, max_number_chars=100)
# Alerts acted on per delivery. Alertmanager's own `max_alerts` (webhook_config) should be set
# to this or less, so the excess is counted in `truncatedAlerts` instead of sent.
MAX_ALERTS_PER_DELIVERY = 100
# A run the intake started but whose incident row does not exist yet is counted as open for
# this long (queued behind the scheduler); after it, a run that never opened does not block.
QUEUED_GRACE = timedelta(hours=1)
# A sender's start older than this is not when this breach was detected (a vendor's sample
# payload, a test button, an alert that fired for weeks before it was routed here): the
# delivery time is, and the clock says why.
MAX_ALERT_AGE = timedelta(days=7)


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
    try:
        payload = loads(body, LIMITS)
    except JsonRejected as exc:  # never parseable: answered 4xx, nothing stored, nothing retried
        return IntakeResult(exc.status_code, None, error=str(exc))
    text = body.decode("utf-8")
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
        alerts, notes = _parse(source, payload)
    except _Rejected as exc:
        store.finish_delivery(delivery_id, "rejected", {"error": str(exc)})
        return IntakeResult(exc.status_code, delivery_id, error=str(exc))
    excess = alerts[MAX_ALERTS_PER_DELIVERY:]
    if excess:
        notes["excess_alerts"] = len(excess)
    delivery = _Delivery(delivery_id, store, incidents, starter, policies_dir)
    try:
        results = [delivery.handle(alert) for alert in alerts[:MAX_ALERTS_PER_DELIVERY]]
        delivery.record_capped(excess)
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


def _parse(source: Source, payload: Any) -> tuple[list[Alert], dict[str, Any]]:
    try:
        if source == "alertmanager":
            webhook = AlertmanagerWebhook.model_validate(payload)
            notes: dict[str, Any] = {}
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


class _Delivery:
    """One delivery's alerts, acted on in order: each policy read once, each model's open incidents counted once."""

    def __init__(
        self,
        delivery_id: int,
        store: DeliveryStore,
        incidents: IncidentStore,
        starter: IncidentStarter,
        policies_dir: Path,
    ) -> None:
        self.id = delivery_id
        self.store = store
        self.incidents = incidents
        self.starter = starter
        self.policies_dir = policies_dir
        self._policies: dict[str, Policy | str] = {}
        self._open: dict[str, list[str]] = {}
        self._capped: dict[str, list[Alert]] = defaultdict(list)

    def policy(self, model: str) -> Policy | str:
        """The model's policy, or why there is none, in words fit for the sender.

        The sender is outside: the answer names the model, never a server path or the other
        models this server knows (the intake's log has the whole error).
        """
        if model not in self._policies:
            try:
                self._policies[model] = load_policy(model, self.policies_dir)
            except UnknownModelError as exc:
                log.warning("alert for a model without a policy: %s", exc)
                self._policies[model] = f"no policy for model {model!r}"
            except PolicyError as exc:
                log.error("alert for a model whose policy is not valid: %s", exc)
                self._policies[model] = f"the policy of model {model!r} is not valid (the intake's log says why)"
        return self._policies[model]

    def open_incidents(self, model: str) -> list[str]:
        """Incidents alerts opened for ``model`` that are not closed (or whose run is still queued)."""
        if model not in self._open:
            opened = self.store.opened_episodes(model)
            statuses = self.incidents.statuses([incident_id for incident_id, _ in opened])
            self._open[model] = [
                incident_id
                for incident_id, at in opened
                if (incident_id in statuses and not statuses[incident_id].is_final)
                or (incident_id not in statuses and at >= utcnow() - QUEUED_GRACE)
            ]
        return self._open[model]

    def handle(self, alert: Alert) -> dict[str, Any]:
        base = {"model": alert.model, "dedup_key": alert.dedup_key, "status": alert.status}
        if not alert.model:
            return {**base, "action": "rejected", "detail": "alert has no 'model' label"}
        policy = self.policy(alert.model)
        if isinstance(policy, str):
            return {**base, "action": "rejected", "detail": policy}
        incident_id = incident_id_for(alert.model, alert.dedup_key)
        where = f"{alert.source} delivery #{self.id}"
        if alert.status == "resolved":
            self.store.touch_episode(incident_id, alert.model, alert.dedup_key, resolved=True)
            self.incidents.add_event(
                incident_id, "alert_resolved", f"{where}: alert resolved at the source", {"delivery_id": self.id}
            )
            return {**base, "incident_id": incident_id, "action": "resolved", "detail": "recorded on the timeline"}
        open_now = self.open_incidents(alert.model)
        if incident_id not in open_now and len(open_now) >= policy.alerts.max_open_incidents:
            if not self.store.episode_opened(incident_id):
                self._capped[alert.model].append(alert)
                detail = f"{alert.model} has {len(open_now)} open incidents (cap {policy.alerts.max_open_incidents})"
                return {**base, "incident_id": incident_id, "action": "capped", "detail": detail}
        episode = self.store.touch_episode(incident_id, alert.model, alert.dedup_key, resolved=False)
        if episode["resolved_at"] is not None:
            self.incidents.add_event(
                incident_id, "alert_ignored", f"{where}: firing after the episode resolved; not reopened"
            )
            return {**base, "incident_id": incident_id, "action": "ignored", "detail": "episode already resolved"}
        # The clock's `detected`: when the sender saw the breach begin (the first delivery wins), set
        # before the run exists so open_incident finds it.
        detected, by = detection(alert.started_at, utcnow())
        stamp(self.incidents, incident_id, ClockMark.DETECTED, detected, f"{alert.source} alert{by}")
        try:
            created = self.starter(incident_id, alert.conf())
        except StartRejected as exc:
            self.incidents.add_event(incident_id, "alert_rejected", f"{where}: {exc}")
            return {**base, "incident_id": incident_id, "action": "rejected", "detail": str(exc)}
        if created or episode["opened_at"] is None:
            self.store.mark_opened(incident_id)
            if incident_id not in open_now:
                open_now.append(incident_id)
        action = "opened" if created else "duplicate"
        message = (
            "started incident_response" if created else f"duplicate (delivery {episode['deliveries']} of this episode)"
        )
        self.incidents.add_event(incident_id, f"alert_{action}", f"{where}: {message}", {"delivery_id": self.id})
        return {**base, "incident_id": incident_id, "action": action, "detail": message}

    def record_capped(self, excess: list[Alert]) -> None:
        """One timeline line per model on its newest open incident: how many alerts were not acted on, and why."""
        for alert in excess:
            if alert.model:
                self._capped[alert.model].append(alert)
        for model, alerts in self._capped.items():
            policy = self.policy(model)
            open_now = self.open_incidents(model) if not isinstance(policy, str) else []
            if not open_now:
                continue  # no incident to note it on: the stored delivery keeps them
            keys = ", ".join(a.dedup_key for a in alerts[:5]) + (", ..." if len(alerts) > 5 else "")
            self.incidents.add_event(
                open_now[-1],
                "alert_capped",
                f"{alerts[0].source} delivery #{self.id}: {len(alerts)} more alerts for {model} not opened "
                f"(at most {MAX_ALERTS_PER_DELIVERY} alerts per delivery, "
                f"{len(open_now)} of {model}'s incidents already open): {keys}",
                {"delivery_id": self.id, "alerts": len(alerts), "dedup_keys": [a.dedup_key for a in alerts[:100]]},
            )


def _finish_quietly(store: DeliveryStore, delivery_id: int, detail: dict[str, Any]) -> None:
    try:
        store.finish_delivery(delivery_id, "received", detail)
    except sa.exc.SQLAlchemyError:
        log.exception("could not annotate delivery %s", delivery_id)


def detection(started_at: datetime | None, now: datetime) -> tuple[datetime, str]:
    """The clock's ``detected`` for an alert the sender says began at ``started_at``, and a note when not that.

    The sender's start, when it is a time with a zone between :data:`MAX_ALERT_AGE` ago and
    now; a sender's clock running ahead never puts detection in the future, and a start older
    than that is not taken (time to contain would read years).
    """
    if started_at is None or started_at.tzinfo is None:
        return now, ""
    if started_at > now:
        return now, ""
    if now - started_at > MAX_ALERT_AGE:
        return (
            now,
            f" (its start {started_at:%Y-%m-%d %H:%M %Z} is over {MAX_ALERT_AGE.days} days old: delivery time taken)",
        )
    return started_at, ""
