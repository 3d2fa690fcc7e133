"""Every alert delivery and every alert episode: the alert intake's part of the state DB."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import sqlalchemy as sa

from firebreak.state_db import Store, jsonable, metadata, utcnow

# Every alert delivery, stored before the sender gets an answer (Alertmanager delivers at
# least once and retries 5xx): the raw body, what became of it, and why.
alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # received | processed | rejected
    sa.Column("detail", sa.JSON),
)

# One row per alert episode (model + dedup key): a resolved episode never reopens.
alert_episodes = sa.Table(
    "alert_episodes",
    metadata,
    sa.Column("incident_id", sa.String(80), primary_key=True),
    sa.Column("model", sa.String(100), nullable=False),
    sa.Column("dedup_key", sa.String(300), nullable=False),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deliveries", sa.Integer, nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    # When the intake started the episode's incident run (None: not started, e.g. capped).
    sa.Column("opened_at", sa.DateTime(timezone=True)),
)


class DeliveryStore(Store):
    """Typed access to alert deliveries and episodes."""

    tables = (alert_deliveries, alert_episodes)

    # -- alert deliveries and episodes ---------------------------------------------------

    def record_delivery(self, source: str, body: str) -> int:
        with self.begin() as conn:
            key = conn.execute(
                alert_deliveries.insert().values(received_at=utcnow(), source=source, body=body, status="received")
            ).inserted_primary_key
        assert key is not None
        return int(key[0])

    def finish_delivery(self, delivery_id: int, status: str, detail: Any) -> None:
        with self.begin() as conn:
            conn.execute(
                alert_deliveries.update()
                .where(alert_deliveries.c.id == delivery_id)
                .values(status=status, detail=jsonable(detail))
            )

    def deliveries(self, source: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(alert_deliveries).order_by(alert_deliveries.c.id)
        if source:
            query = query.where(alert_deliveries.c.source == source)
        with self.begin() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def opened_episodes(self, model: str, *, limit: int = 1000) -> list[tuple[str, Any]]:
        """(incident id, when its run was started) of the latest ``limit`` episodes of ``model`` that started one.

        Oldest first. Bounded: the intake asks which of them are still open, and an incident
        still open behind a thousand newer episodes of the same model is not a case to plan for.
        """
        latest = (
            sa.select(alert_episodes.c.incident_id, alert_episodes.c.opened_at)
            .where(alert_episodes.c.model == model, alert_episodes.c.opened_at.is_not(None))
            .order_by(alert_episodes.c.opened_at.desc())
            .limit(limit)
            .subquery()
        )
        query = sa.select(latest).order_by(latest.c.opened_at)
        with self.begin() as conn:
            return [(r.incident_id, _aware(r.opened_at)) for r in conn.execute(query)]

    def episode_opened(self, incident_id: str) -> bool:
        with self.begin() as conn:
            at = conn.execute(
                sa.select(alert_episodes.c.opened_at).where(alert_episodes.c.incident_id == incident_id)
            ).scalar()
        return at is not None

    def mark_opened(self, incident_id: str) -> None:
        with self.begin() as conn:
            conn.execute(
                alert_episodes.update()
                .where(alert_episodes.c.incident_id == incident_id, alert_episodes.c.opened_at.is_(None))
                .values(opened_at=utcnow())
            )

    def touch_episode(self, incident_id: str, model: str, dedup_key: str, *, resolved: bool) -> dict[str, Any]:
        """Count a delivery for the episode (created on first sight); returns the episode after the update."""
        now = utcnow()
        count_delivery = (
            alert_episodes.update()
            .where(alert_episodes.c.incident_id == incident_id)
            .values(deliveries=alert_episodes.c.deliveries + 1)
        )
        with self.begin() as conn:
            if not conn.execute(count_delivery).rowcount:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            alert_episodes.insert().values(
                                incident_id=incident_id, model=model, dedup_key=dedup_key, first_seen=now, deliveries=1
                            )
                        )
                except sa.exc.IntegrityError:  # a concurrent first delivery won the insert
                    conn.execute(count_delivery)
            if resolved:
                conn.execute(
                    alert_episodes.update()
                    .where(alert_episodes.c.incident_id == incident_id, alert_episodes.c.resolved_at.is_(None))
                    .values(resolved_at=now)
                )
            row = (
                conn.execute(sa.select(alert_episodes).where(alert_episodes.c.incident_id == incident_id))
                .mappings()
                .one()
            )
        return dict(row)


def _aware(at: Any) -> Any:
    """SQLite hands back naive datetimes for timezone-aware columns: they were written in UTC."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at
