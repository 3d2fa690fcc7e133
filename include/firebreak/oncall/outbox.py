"""The notification outbox: every page and message, written before anything is sent.

Stages and the acknowledgement paths only *enqueue*; whoever can reach the Airflow
connections (a task callback, the api-server, a deadline callback) *delivers*. One row per
(incident, event, target) — its ``dedup_key`` is unique — so a task that runs twice, or
five copies of one alert, never page twice. A row is claimed by compare-and-set
(``pending`` -> ``sending``) before it is sent, so two deliverers never send it both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from firebreak.incidents.clock import aware
from firebreak.state_db import Store, jsonable, metadata, utcnow

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dedup_key", sa.String(300), nullable=False, unique=True),
    sa.Column("incident_id", sa.String(80), nullable=False, index=True),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("target_type", sa.String(20), nullable=False),
    sa.Column("conn_id", sa.String(200), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    # pending -> sending -> sent | pending (retryable failure) | failed (after MAX_ATTEMPTS or not retryable)
    # | unconfigured (the target's Airflow connection does not exist)
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("claimed_at", sa.DateTime(timezone=True)),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
)

MAX_ATTEMPTS = 5
# A row left in "sending" this long belongs to a deliverer that died: it is claimable again.
STALE_CLAIM = timedelta(minutes=2)


@dataclass(frozen=True)
class Notification:
    id: int
    dedup_key: str
    incident_id: str
    event: str
    target: str
    target_type: str
    conn_id: str
    payload: dict[str, Any]
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    error: str | None

    @property
    def latency(self) -> float | None:
        """Seconds from enqueued to accepted by the receiver."""
        return (self.sent_at - self.created_at).total_seconds() if self.sent_at else None


def _row(r: Any) -> Notification:
    return Notification(
        id=r.id,
        dedup_key=r.dedup_key,
        incident_id=r.incident_id,
        event=r.event,
        target=r.target,
        target_type=r.target_type,
        conn_id=r.conn_id,
        payload=r.payload,
        status=r.status,
        attempts=r.attempts,
        created_at=aware(r.created_at),
        sent_at=aware(r.sent_at) if r.sent_at else None,
        error=r.error,
    )


class Outbox(Store):
    """Typed access to the notification outbox."""

    tables = (notifications,)

    def enqueue(
        self,
        *,
        dedup_key: str,
        incident_id: str,
        event: str,
        target: str,
        target_type: str,
        conn_id: str,
        payload: dict[str, Any],
    ) -> bool:
        """Add a notification unless one with this key exists; True when this call added it."""
        try:
            with self.begin() as conn:
                conn.execute(
                    notifications.insert().values(
                        dedup_key=dedup_key,
                        incident_id=incident_id,
                        event=event,
                        target=target,
                        target_type=target_type,
                        conn_id=conn_id,
                        payload=jsonable(payload),
                        status="pending",
                        attempts=0,
                        created_at=utcnow(),
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def claim(self, incident_id: str | None = None, limit: int = 50) -> list[Notification]:
        """Take up to ``limit`` pending rows (oldest first) for sending; each row goes to one caller only."""
        now = utcnow()
        query = (
            sa.select(notifications.c.id)
            .where(
                sa.or_(
                    notifications.c.status == "pending",
                    sa.and_(notifications.c.status == "sending", notifications.c.claimed_at < now - STALE_CLAIM),
                )
            )
            .order_by(notifications.c.id)
            .limit(limit)
        )
        if incident_id is not None:
            query = query.where(notifications.c.incident_id == incident_id)
        claimed = []
        with self.begin() as conn:
            for row_id in list(conn.execute(query).scalars()):
                won = conn.execute(
                    notifications.update()
                    .where(
                        notifications.c.id == row_id,
                        sa.or_(notifications.c.status == "pending", notifications.c.claimed_at < now - STALE_CLAIM),
                    )
                    .values(status="sending", claimed_at=now, attempts=notifications.c.attempts + 1)
                ).rowcount
                if won:
                    claimed.append(row_id)
            if not claimed:
                return []
            rows = conn.execute(
                sa.select(notifications).where(notifications.c.id.in_(claimed)).order_by(notifications.c.id)
            )
            return [_row(r) for r in rows]

    def mark_sent(self, row_id: int) -> None:
        with self.begin() as conn:
            conn.execute(
                notifications.update().where(notifications.c.id == row_id).values(status="sent", sent_at=utcnow())
            )

    def mark_failed(self, row_id: int, error: str, *, retry: bool, unconfigured: bool = False) -> str:
        """Record a failed send: back to ``pending`` if it may be retried, else ``failed``. Returns the status."""
        with self.begin() as conn:
            attempts = conn.execute(
                sa.select(notifications.c.attempts).where(notifications.c.id == row_id)
            ).scalar_one()
            status = "unconfigured" if unconfigured else "pending" if retry and attempts < MAX_ATTEMPTS else "failed"
            conn.execute(
                notifications.update()
                .where(notifications.c.id == row_id)
                .values(status=status, error=error[:2000], claimed_at=None)
            )
        return status

    def unconfigured_targets(self, incident_id: str) -> set[str]:
        """Targets of this incident already found to have no Airflow connection."""
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(notifications.c.target).where(
                    notifications.c.incident_id == incident_id, notifications.c.status == "unconfigured"
                )
            )
            return set(rows.scalars())

    def for_incident(self, incident_id: str) -> list[Notification]:
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(notifications).where(notifications.c.incident_id == incident_id).order_by(notifications.c.id)
            )
            return [_row(r) for r in rows]

    def forget_incidents(self, incident_ids: list[str]) -> None:
        """Delete the notifications of these incidents (demo resets only)."""
        with self.begin() as conn:
            conn.execute(notifications.delete().where(notifications.c.incident_id.in_(incident_ids)))
