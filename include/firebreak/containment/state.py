"""Where each model's traffic goes: the routing state and the serving gateway's shared breaker.

Both live in the state DB and move only by compare-and-set on a generation counter, so
two writers racing from the same generation change the state once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from firebreak.state_db import Store, jsonable, metadata, utcnow

routing = sa.Table(
    "routing",
    metadata,
    sa.Column("model", sa.String(100), primary_key=True),
    sa.Column("route", sa.String(40), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("incident_id", sa.String(80)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# The serving gateway's circuit breaker per model, shared by all workers (compare-and-set
# on generation). ``version`` is the champion version it tripped on: a new champion
# starts with a closed breaker.
breakers = sa.Table(
    "breakers",
    metadata,
    sa.Column("model", sa.String(100), primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("since", sa.Float, nullable=False),  # epoch seconds, the breaker's clock
    sa.Column("version", sa.String(20)),
    sa.Column("forced", sa.Boolean, nullable=False, default=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Segment-scoped containment: while a row exists, requests matching its segment (a
# firebreak.containment.segment.Segment as JSON) go to the containment route; the model's
# own route stays on the champion for everyone else.
contained_segments = sa.Table(
    "contained_segments",
    metadata,
    sa.Column("model", sa.String(100), primary_key=True),
    sa.Column("segment", sa.JSON, nullable=False),
    sa.Column("incident_id", sa.String(80)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Every route change, append-only: who, why, from what, by which incident (or none: by hand).
routing_ledger = sa.Table(
    "routing_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(100), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("old_route", sa.String(40), nullable=False),
    sa.Column("new_route", sa.String(40), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("incident_id", sa.String(80)),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

breaker_events = sa.Table(
    "breaker_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(100), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("target", sa.String(20), nullable=False),
    sa.Column("version", sa.String(20)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("data", sa.JSON),
)


@dataclass(frozen=True)
class RoutingState:
    model: str
    route: str
    generation: int
    incident_id: str | None
    reason: str
    updated_at: datetime


@dataclass(frozen=True)
class BreakerRow:
    model: str
    state: str
    generation: int
    since: float
    version: str | None
    forced: bool
    reason: str
    updated_at: datetime


class RoutingStore(Store):
    """Typed access to the routing state and the shared breakers."""

    tables = (routing, breakers, breaker_events, contained_segments, routing_ledger)

    # -- routing state -------------------------------------------------------------

    def get_routing(self, model: str) -> RoutingState | None:
        with self.begin() as conn:
            row = conn.execute(sa.select(routing).where(routing.c.model == model)).mappings().first()
        return RoutingState(**row) if row else None

    def ensure_routing(self, model: str, route: str, reason: str) -> RoutingState:
        """Create the model's routing row if missing (generation 0); returns the current state."""
        try:
            with self.begin() as conn:
                conn.execute(
                    routing.insert().values(
                        model=model, route=route, generation=0, incident_id=None, reason=reason, updated_at=utcnow()
                    )
                )
        except sa.exc.IntegrityError:
            pass
        state = self.get_routing(model)
        assert state is not None  # inserted above or by a concurrent writer
        return state

    def compare_and_set_route(
        self,
        model: str,
        *,
        expected_generation: int,
        route: str,
        incident_id: str | None,
        reason: str,
        actor: str = "incident_response",
    ) -> bool:
        """Move the route only if nobody else moved it since ``expected_generation``; the move is a ledger row.

        The change and its ledger row are one transaction: there is never a move without its who and why.
        """
        with self.begin() as conn:
            before = conn.execute(
                sa.select(routing.c.route).where(routing.c.model == model, routing.c.generation == expected_generation)
            ).scalar()
            changed = conn.execute(
                routing.update()
                .where(routing.c.model == model, routing.c.generation == expected_generation)
                .values(
                    route=route,
                    generation=expected_generation + 1,
                    incident_id=incident_id,
                    reason=reason,
                    updated_at=utcnow(),
                )
            ).rowcount
            if changed:
                conn.execute(
                    routing_ledger.insert().values(
                        model=model,
                        at=utcnow(),
                        old_route=before or "",
                        new_route=route,
                        generation=expected_generation + 1,
                        incident_id=incident_id,
                        actor=actor[:100],
                        reason=reason,
                    )
                )
        return bool(changed)

    # -- segment-scoped containment ------------------------------------------------

    def contain_segment(self, model: str, segment: dict[str, Any], *, incident_id: str) -> bool:
        """Contain one segment of ``model``'s traffic; False when that segment was already contained (idempotent)."""
        current = self.contained_segment(model)
        if current is not None and current["segment"] == segment:
            return False
        with self.begin() as conn:
            conn.execute(contained_segments.delete().where(contained_segments.c.model == model))
            conn.execute(
                contained_segments.insert().values(
                    model=model, segment=jsonable(segment), incident_id=incident_id, updated_at=utcnow()
                )
            )
        return True

    def contained_segment(self, model: str) -> dict[str, Any] | None:
        """The contained segment of ``model`` (``segment``, ``incident_id``), or None."""
        with self.begin() as conn:
            row = conn.execute(sa.select(contained_segments).where(contained_segments.c.model == model)).mappings()
            found = row.first()
        return dict(found) if found else None

    def release_segment(self, model: str) -> bool:
        """Stop containing a segment of ``model``; False when none was contained."""
        with self.begin() as conn:
            return bool(conn.execute(contained_segments.delete().where(contained_segments.c.model == model)).rowcount)

    def route_changes(self, model: str) -> list[dict[str, Any]]:
        """The model's route changes, oldest first."""
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(routing_ledger).where(routing_ledger.c.model == model).order_by(routing_ledger.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    # -- circuit breakers (serving gateway) -----------------------------------------

    def get_breaker(self, model: str) -> BreakerRow | None:
        with self.begin() as conn:
            row = conn.execute(sa.select(breakers).where(breakers.c.model == model)).mappings().first()
        return BreakerRow(**row) if row else None

    def compare_and_set_breaker(
        self,
        model: str,
        *,
        expected_generation: int | None,
        state: str,
        since: float,
        version: str | None,
        forced: bool,
        reason: str,
        event: dict[str, Any] | None = None,
    ) -> bool:
        """Move the shared breaker only if nobody moved it since ``expected_generation``.

        ``expected_generation=None`` means "no row yet": the first writer inserts it.
        ``event`` (``source`` and ``data``) is recorded in ``breaker_events`` in the same
        transaction when the move wins, so a won move and its event never part.
        """
        values = {
            "state": state,
            "since": since,
            "version": version,
            "forced": forced,
            "reason": reason[:2000],
            "updated_at": utcnow(),
        }
        try:
            with self.begin() as conn:
                if expected_generation is None:
                    conn.execute(breakers.insert().values(model=model, generation=1, **values))
                else:
                    changed = conn.execute(
                        breakers.update()
                        .where(breakers.c.model == model, breakers.c.generation == expected_generation)
                        .values(generation=expected_generation + 1, **values)
                    ).rowcount
                    if not changed:
                        return False
                if event is not None:
                    self._insert_event(
                        conn,
                        model,
                        source=event["source"],
                        target=state,
                        version=version,
                        reason=reason,
                        data=event["data"],
                    )
        except sa.exc.IntegrityError:  # another writer inserted the first row
            return False
        return True

    def add_breaker_event(
        self, model: str, *, source: str, target: str, version: str | None, reason: str, data: dict[str, Any]
    ) -> None:
        with self.begin() as conn:
            self._insert_event(conn, model, source=source, target=target, version=version, reason=reason, data=data)

    @staticmethod
    def _insert_event(
        conn: Any, model: str, *, source: str, target: str, version: str | None, reason: str, data: dict[str, Any]
    ) -> None:
        conn.execute(
            breaker_events.insert().values(
                model=model,
                at=utcnow(),
                source=source,
                target=target,
                version=version,
                reason=reason[:2000],
                data=jsonable(data),
            )
        )

    def breaker_events(self, model: str) -> list[dict[str, Any]]:
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(breaker_events).where(breaker_events.c.model == model).order_by(breaker_events.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    def forget_model(self, model: str) -> None:
        """Delete the model's routing, breaker and breaker events (demo resets only)."""
        with self.begin() as conn:
            conn.execute(routing.delete().where(routing.c.model == model))
            conn.execute(breakers.delete().where(breakers.c.model == model))
            conn.execute(breaker_events.delete().where(breaker_events.c.model == model))
            conn.execute(contained_segments.delete().where(contained_segments.c.model == model))
            conn.execute(routing_ledger.delete().where(routing_ledger.c.model == model))
