"""Every alert delivery and every alert episode: the alert intake's part of the state DB."""

from __future__ import annotations

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
