"""The Firebreak state DB: incidents, timeline, evidence, routing state, alias ledger.

SQLAlchemy Core on any URL: a SQLite file by default, PostgreSQL in production.
Every state change is a single statement or a compare-and-set, so a task that runs
twice (Airflow may retry after a heartbeat timeout) changes nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from firebreak.incidents.enums import IncidentStatus

metadata = sa.MetaData()

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("model", sa.String(100), nullable=False, index=True),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("severity", sa.String(10)),
    sa.Column("failure_class", sa.String(40)),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("dedup_key", sa.String(255), nullable=False),
    sa.Column("dag_run_id", sa.String(250)),
    sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
    sa.Column("mlflow_run_id", sa.String(64)),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("outcome", sa.Text),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
)

timeline = sa.Table(
    "timeline",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(80), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(60), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", sa.JSON),
)

evidence = sa.Table(
    "evidence",
    metadata,
    sa.Column("incident_id", sa.String(80), primary_key=True),
    sa.Column("kind", sa.String(60), primary_key=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
)

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

alias_ledger = sa.Table(
    "alias_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(100), nullable=False, index=True),
    sa.Column("alias", sa.String(60), nullable=False),
    sa.Column("old_version", sa.String(20)),
    sa.Column("new_version", sa.String(20)),
    sa.Column("incident_id", sa.String(80)),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    # pending -> applied | failed: the row is written before the registry call, so a
    # crash between the two leaves a visible pending row instead of a silent gap.
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

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


def utcnow() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL per process; tables are created on first use."""
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    metadata.create_all(engine)
    return engine


@dataclass(frozen=True)
class Incident:
    id: str
    model: str
    status: IncidentStatus
    severity: str | None
    failure_class: str | None
    description: str
    dedup_key: str
    dag_run_id: str | None
    dry_run: bool
    mlflow_run_id: str | None
    request: dict[str, Any]
    outcome: str | None
    opened_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    kind: str
    message: str
    data: dict[str, Any] | None


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


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    model: str
    alias: str
    old_version: str | None
    new_version: str | None
    incident_id: str | None
    actor: str
    reason: str
    status: str
    at: datetime


def _jsonable(data: Any) -> Any:
    """Round-trip through JSON so numpy scalars and datetimes never reach the DB driver."""
    return json.loads(json.dumps(data, default=str))


class StateStore:
    """Typed access to the state DB. Cheap to construct; engines are shared per URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = get_engine(url)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- incidents -----------------------------------------------------------------

    def create_incident(
        self,
        *,
        incident_id: str,
        model: str,
        description: str,
        dedup_key: str,
        dag_run_id: str | None,
        dry_run: bool,
        request: dict[str, Any],
    ) -> bool:
        """Insert the incident if it does not exist. Returns True when this call created it."""
        now = utcnow()
        try:
            with self.begin() as conn:
                conn.execute(
                    incidents.insert().values(
                        id=incident_id,
                        model=model,
                        status=IncidentStatus.OPEN.value,
                        description=description,
                        dedup_key=dedup_key,
                        dag_run_id=dag_run_id,
                        dry_run=dry_run,
                        request=_jsonable(request),
                        opened_at=now,
                        updated_at=now,
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def get_incident(self, incident_id: str) -> Incident | None:
        with self.begin() as conn:
            row = conn.execute(sa.select(incidents).where(incidents.c.id == incident_id)).mappings().first()
        if row is None:
            return None
        return Incident(
            id=row["id"],
            model=row["model"],
            status=IncidentStatus(row["status"]),
            severity=row["severity"],
            failure_class=row["failure_class"],
            description=row["description"],
            dedup_key=row["dedup_key"],
            dag_run_id=row["dag_run_id"],
            dry_run=bool(row["dry_run"]),
            mlflow_run_id=row["mlflow_run_id"],
            request=row["request"],
            outcome=row["outcome"],
            opened_at=row["opened_at"],
            closed_at=row["closed_at"],
        )

    def update_incident(self, incident_id: str, **values: Any) -> None:
        """Set fields on an incident (status values may be enums)."""
        clean = {k: (v.value if hasattr(v, "value") else v) for k, v in values.items()}
        if clean.get("status") in {s.value for s in IncidentStatus if s.is_final}:
            clean.setdefault("closed_at", utcnow())
        with self.begin() as conn:
            conn.execute(incidents.update().where(incidents.c.id == incident_id).values(updated_at=utcnow(), **clean))

    def list_incidents(self, model: str | None = None) -> list[Incident]:
        query = sa.select(incidents.c.id).order_by(incidents.c.opened_at)
        if model:
            query = query.where(incidents.c.model == model)
        with self.begin() as conn:
            ids = list(conn.execute(query).scalars())
        return [inc for i in ids if (inc := self.get_incident(i)) is not None]

    # -- timeline and evidence -----------------------------------------------------

    def add_event(self, incident_id: str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        with self.begin() as conn:
            conn.execute(
                timeline.insert().values(
                    incident_id=incident_id, at=utcnow(), kind=kind, message=message, data=_jsonable(data)
                )
            )

    def events(self, incident_id: str) -> list[TimelineEvent]:
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(timeline).where(timeline.c.incident_id == incident_id).order_by(timeline.c.id)
            ).mappings()
            return [TimelineEvent(r["at"], r["kind"], r["message"], r["data"]) for r in rows]

    def put_evidence(self, incident_id: str, kind: str, payload: dict[str, Any]) -> None:
        """Record (or replace) one piece of evidence; a re-run replaces, never duplicates."""
        payload = _jsonable(payload)
        with self.begin() as conn:
            updated = conn.execute(
                evidence.update()
                .where(evidence.c.incident_id == incident_id, evidence.c.kind == kind)
                .values(payload=payload, recorded_at=utcnow())
            ).rowcount
            if not updated:
                conn.execute(
                    evidence.insert().values(incident_id=incident_id, kind=kind, payload=payload, recorded_at=utcnow())
                )

    def get_evidence(self, incident_id: str) -> dict[str, dict[str, Any]]:
        with self.begin() as conn:
            rows = conn.execute(sa.select(evidence).where(evidence.c.incident_id == incident_id)).mappings()
            return {r["kind"]: r["payload"] for r in rows}

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
        self, model: str, *, expected_generation: int, route: str, incident_id: str | None, reason: str
    ) -> bool:
        """Move the route only if nobody else moved it since ``expected_generation``."""
        with self.begin() as conn:
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
        return bool(changed)

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
    ) -> bool:
        """Move the shared breaker only if nobody moved it since ``expected_generation``.

        ``expected_generation=None`` means "no row yet": the first writer inserts it.
        """
        values = {
            "state": state,
            "since": since,
            "version": version,
            "forced": forced,
            "reason": reason[:2000],
            "updated_at": utcnow(),
        }
        if expected_generation is None:
            try:
                with self.begin() as conn:
                    conn.execute(breakers.insert().values(model=model, generation=1, **values))
                return True
            except sa.exc.IntegrityError:
                return False
        with self.begin() as conn:
            changed = conn.execute(
                breakers.update()
                .where(breakers.c.model == model, breakers.c.generation == expected_generation)
                .values(generation=expected_generation + 1, **values)
            ).rowcount
        return bool(changed)

    def add_breaker_event(
        self, model: str, *, source: str, target: str, version: str | None, reason: str, data: dict[str, Any]
    ) -> None:
        with self.begin() as conn:
            conn.execute(
                breaker_events.insert().values(
                    model=model,
                    at=utcnow(),
                    source=source,
                    target=target,
                    version=version,
                    reason=reason[:2000],
                    data=_jsonable(data),
                )
            )

    def breaker_events(self, model: str) -> list[dict[str, Any]]:
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(breaker_events).where(breaker_events.c.model == model).order_by(breaker_events.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    # -- alias ledger --------------------------------------------------------------

    def ledger_begin(
        self,
        *,
        model: str,
        alias: str,
        old: str | None,
        new: str | None,
        incident_id: str | None,
        actor: str,
        reason: str,
    ) -> int:
        with self.begin() as conn:
            result = conn.execute(
                alias_ledger.insert().values(
                    model=model,
                    alias=alias,
                    old_version=old,
                    new_version=new,
                    incident_id=incident_id,
                    actor=actor,
                    reason=reason,
                    status="pending",
                    at=utcnow(),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def ledger_finish(self, entry_id: int, status: str) -> None:
        with self.begin() as conn:
            conn.execute(alias_ledger.update().where(alias_ledger.c.id == entry_id).values(status=status))

    def ledger_mark(self, model: str) -> str:
        """The model's last alias-ledger row and its status: changes whenever an alias moves.

        The status matters: a row is written ``pending`` before MLflow moves the alias and
        turns ``applied`` after, so a reader between the two still sees the move later.
        """
        with self.begin() as conn:
            row = conn.execute(
                sa.select(alias_ledger.c.id, alias_ledger.c.status)
                .where(alias_ledger.c.model == model)
                .order_by(alias_ledger.c.id.desc())
                .limit(1)
            ).first()
        return f"{row.id}:{row.status}" if row else "none"

    def ledger(self, model: str) -> list[LedgerEntry]:
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(alias_ledger).where(alias_ledger.c.model == model).order_by(alias_ledger.c.id)
            ).mappings()
            return [LedgerEntry(**r) for r in rows]

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
                .values(status=status, detail=_jsonable(detail))
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

    # -- maintenance ---------------------------------------------------------------

    def forget_model(self, model: str) -> None:
        """Delete everything recorded for a model (demo resets only; production never calls this)."""
        with self.begin() as conn:
            ids = list(conn.execute(sa.select(incidents.c.id).where(incidents.c.model == model)).scalars())
            conn.execute(timeline.delete().where(timeline.c.incident_id.in_(ids)))
            conn.execute(evidence.delete().where(evidence.c.incident_id.in_(ids)))
            conn.execute(incidents.delete().where(incidents.c.model == model))
            conn.execute(routing.delete().where(routing.c.model == model))
            conn.execute(breakers.delete().where(breakers.c.model == model))
            conn.execute(breaker_events.delete().where(breaker_events.c.model == model))
            conn.execute(alias_ledger.delete().where(alias_ledger.c.model == model))
