"""Delivering the outbox through channels (one per target type) and saying what happened on the timeline.

The channels that reach PagerDuty, Slack and SMTP are Airflow notifiers
(:mod:`firebreak.oncall.airflow`); tests pass loopback ones. A failed send never fails the
SOP: it is recorded on the notification and the timeline, and retried by the next delivery
when the receiver may recover (network errors, 429, 5xx — PagerDuty's own retry rules).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from firebreak.errors import FirebreakError
from firebreak.incidents.enums import EventKind
from firebreak.incidents.store import IncidentStore
from firebreak.oncall.outbox import Outbox

log = logging.getLogger(__name__)


class DeliveryError(FirebreakError):
    """A channel could not hand a notification over; ``retry`` says whether trying again may help.

    ``unconfigured``: the target's Airflow connection does not exist — said once per incident
    and target on the timeline, not for every notification (a demo has no connections at all).
    """

    def __init__(self, message: str, *, retry: bool, unconfigured: bool = False) -> None:
        super().__init__(message)
        self.retry = retry
        self.unconfigured = unconfigured


class Channel(Protocol):
    def send(self, conn_id: str, payload: dict[str, Any]) -> None:
        """Hand ``payload`` to the receiver behind the connection ``conn_id``; raise DeliveryError."""


@dataclass(frozen=True)
class Delivered:
    sent: int
    failed: int
    pending: int  # failed for now, to be retried


def deliver(state_db_url: str, channels: Mapping[str, Channel], incident_id: str | None = None) -> Delivered:
    """Send what is pending (for one incident, or all); each row is claimed first, so it goes out once."""
    outbox, incidents = Outbox(state_db_url), IncidentStore(state_db_url)
    sent = failed = retrying = 0
    for note in outbox.claim(incident_id):
        channel = channels.get(note.target_type)
        where = f"{note.event} to {note.target} ({note.target_type})"
        try:
            if channel is None:
                raise DeliveryError(f"no channel for target type {note.target_type!r}", retry=False)
            channel.send(note.conn_id, note.payload)
        except DeliveryError as exc:
            said = exc.unconfigured and note.target in outbox.unconfigured_targets(note.incident_id)
            status = outbox.mark_failed(note.id, str(exc), retry=exc.retry, unconfigured=exc.unconfigured)
            if status != "pending":
                failed += 1
            if status != "pending" and not said:
                what = (
                    f"{note.target} ({note.target_type}) is not told about this incident"
                    if exc.unconfigured
                    else f"{where} not sent"
                )
                incidents.add_event(
                    note.incident_id,
                    EventKind.NOTIFY_FAILED,
                    f"{what}: {exc}",
                    {"notification": note.id, "target": note.target},
                )
            if status == "pending":
                retrying += 1
            log.warning("notification %s: %s (%s)", note.dedup_key, exc, status)
            continue
        outbox.mark_sent(note.id)
        sent += 1
        incidents.add_event(
            note.incident_id, EventKind.NOTIFIED, f"{where} sent", {"notification": note.id, "target": note.target}
        )
    return Delivered(sent, failed, retrying)
