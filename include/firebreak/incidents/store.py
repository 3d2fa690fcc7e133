"""Incidents, their timeline, their evidence and their clock: the incident store of the state DB.

Evidence rows are keyed by (incident, kind) and replaced on re-run, never duplicated. Clock
marks are keyed by (incident, mark) and written once: the first writer wins, a re-run or a
second acknowledgement never moves a mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from firebreak.incidents.clock import ClockEntry, aware
from firebreak.incidents.enums import ClockMark, IncidentStatus
from firebreak.state_db import Store, jsonable, metadata, utcnow

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

_MARKS = {str(m): m for m in ClockMark}  # a stored mark name -> its mark (unknown names are skipped)

incident_clock = sa.Table(
    "incident_clock",
    metadata,
    sa.Column("incident_id", sa.String(80), primary_key=True),
    sa.Column("mark", sa.String(30), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("by", sa.String(200)),  # who or what set it: a person (acknowledged), a stage, an alert source
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


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
class BoardEntry:
    """One incident on the console's board: its row and the milestones the board shows."""

    id: str
    model: str
    status: IncidentStatus
    severity: str | None
    opened_at: datetime
    closed_at: datetime | None
    marks: dict[ClockMark, ClockEntry]  # its incident clock
    stage: str | None  # the newest stage kind on the timeline


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    kind: str
    message: str
    data: dict[str, Any] | None


class IncidentStore(Store):
    """Typed access to incidents, their timeline and evidence."""

    tables = (incidents, timeline, evidence, incident_clock)

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
                        request=jsonable(request),
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
        return None if row is None else _incident(row)

    def update_incident(self, incident_id: str, **values: Any) -> None:
        """Set fields on an incident (status values may be enums)."""
        clean = {k: (v.value if hasattr(v, "value") else v) for k, v in values.items()}
        if clean.get("status") in {s.value for s in IncidentStatus if s.is_final}:
            clean.setdefault("closed_at", utcnow())
        with self.begin() as conn:
            conn.execute(incidents.update().where(incidents.c.id == incident_id).values(updated_at=utcnow(), **clean))

    def statuses(self, incident_ids: list[str]) -> dict[str, IncidentStatus]:
        """The status of each incident that exists among ``incident_ids`` (one query)."""
        if not incident_ids:
            return {}
        with self.begin() as conn:
            rows = conn.execute(sa.select(incidents.c.id, incidents.c.status).where(incidents.c.id.in_(incident_ids)))
            return {r.id: IncidentStatus(r.status) for r in rows}

    def list_incidents(self, model: str | None = None) -> list[Incident]:
        return list(reversed(self.search(model=model)))

    def search(
        self,
        *,
        model: str | None = None,
        status: str | None = None,
        severity: str | None = None,
        opened_after: datetime | None = None,
        opened_before: datetime | None = None,
        limit: int | None = None,
    ) -> list[Incident]:
        """Incidents matching every given filter, newest first, in one query."""
        query = self._matching(
            sa.select(incidents).order_by(incidents.c.opened_at.desc(), incidents.c.id.desc()),
            model=model, status=status, severity=severity, opened_after=opened_after,
        )  # fmt: skip
        if opened_before:
            query = query.where(incidents.c.opened_at < opened_before)
        if limit:
            query = query.limit(limit)
        with self.begin() as conn:
            return [_incident(row) for row in conn.execute(query).mappings()]

    def models(self) -> list[str]:
        """Every model that has had an incident."""
        with self.begin() as conn:
            return sorted(conn.execute(sa.select(incidents.c.model).distinct()).scalars())

    # -- timeline and evidence -----------------------------------------------------

    def add_event(
        self,
        incident_id: str,
        kind: str,
        message: str,
        data: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> None:
        """Append a timeline line (``at``: now, unless replaying a record)."""
        with self.begin() as conn:
            conn.execute(
                timeline.insert().values(
                    incident_id=incident_id, at=at or utcnow(), kind=kind, message=message, data=jsonable(data)
                )
            )

    def events(self, incident_id: str) -> list[TimelineEvent]:
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(timeline).where(timeline.c.incident_id == incident_id).order_by(timeline.c.id)
            ).mappings()
            return [TimelineEvent(r["at"], r["kind"], r["message"], r["data"]) for r in rows]

    def board(
        self,
        *,
        model: str | None = None,
        status: str | None = None,
        severity: str | None = None,
        opened_after: datetime | None = None,
        limit: int = 1000,
        offset: int = 0,
        stages: list[str],
    ) -> list[BoardEntry]:
        """The newest incidents matching the filters (skipping ``offset``), each with its clock
        and the newest of ``stages`` on its timeline: two queries, whatever the number of
        incidents (the incident console's board; docs/benchmarks.md).
        """
        newest = self._matching(
            sa.select(
                incidents.c.id, incidents.c.model, incidents.c.status, incidents.c.severity, incidents.c.opened_at,
                incidents.c.closed_at,
            ),
            model=model, status=status, severity=severity, opened_after=opened_after,
        )  # fmt: skip
        chosen = (
            newest.order_by(incidents.c.opened_at.desc(), incidents.c.id.desc()).limit(limit).offset(offset).subquery()
        )
        of_it = timeline.c.incident_id == chosen.c.id
        stage = (
            sa.select(timeline.c.kind)
            .where(of_it, timeline.c.kind.in_(stages))
            .order_by(timeline.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = sa.select(*chosen.c, stage.label("stage")).order_by(chosen.c.opened_at.desc(), chosen.c.id.desc())
        marks: dict[str, dict[ClockMark, ClockEntry]] = {}
        with self.begin() as conn:
            rows = list(conn.execute(query).mappings())
            ids = [r["id"] for r in rows]
            marked = sa.select(
                incident_clock.c.incident_id, incident_clock.c.mark, incident_clock.c.at, incident_clock.c.by
            )
            found = conn.execute(marked.where(incident_clock.c.incident_id.in_(ids))) if ids else ()
            for r in found:
                if (mark := _MARKS.get(r.mark)) is not None:
                    marks.setdefault(r.incident_id, {})[mark] = ClockEntry(mark, aware(r.at), r.by)
        return [
            BoardEntry(
                id=r["id"],
                model=r["model"],
                status=IncidentStatus(r["status"]),
                severity=r["severity"],
                opened_at=r["opened_at"],
                closed_at=r["closed_at"],
                marks=marks.get(r["id"], {}),
                stage=r["stage"],
            )
            for r in rows
        ]

    def count(
        self,
        *,
        model: str | None = None,
        status: str | None = None,
        severity: str | None = None,
        opened_after: datetime | None = None,
    ) -> int:
        """How many incidents match the board's filters."""
        query = self._matching(
            sa.select(sa.func.count()).select_from(incidents),
            model=model, status=status, severity=severity, opened_after=opened_after,
        )  # fmt: skip
        with self.begin() as conn:
            return int(conn.execute(query).scalar_one())

    @staticmethod
    def _matching(
        query: sa.Select[Any],
        *,
        model: str | None,
        status: str | None,
        severity: str | None,
        opened_after: datetime | None,
    ) -> sa.Select[Any]:
        for column, value in (
            (incidents.c.model, model),
            (incidents.c.status, status),
            (incidents.c.severity, severity),
        ):
            if value:
                query = query.where(column == value)
        if opened_after:
            query = query.where(incidents.c.opened_at >= opened_after)
        return query

    def put_evidence(self, incident_id: str, kind: str, payload: dict[str, Any]) -> None:
        """Record (or replace) one piece of evidence; a re-run replaces, never duplicates."""
        payload = jsonable(payload)
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

    # -- the incident clock ------------------------------------------------------------

    def mark_clock(self, incident_id: str, mark: ClockMark, at: datetime, by: str | None = None) -> bool:
        """Set a clock mark unless it is set already; True when this call set it (first writer wins)."""
        try:
            with self.begin() as conn:
                conn.execute(
                    incident_clock.insert().values(
                        incident_id=incident_id, mark=str(mark), at=at, by=by, recorded_at=utcnow()
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def clock(self, incident_id: str) -> dict[ClockMark, ClockEntry]:
        with self.begin() as conn:
            rows = conn.execute(sa.select(incident_clock).where(incident_clock.c.incident_id == incident_id))
            entries = [ClockEntry(ClockMark(r.mark), aware(r.at), r.by) for r in rows if r.mark in set(ClockMark)]
        return {e.mark: e for e in entries}

    def clocks(self) -> dict[str, dict[ClockMark, ClockEntry]]:
        """Every incident's clock (for the metrics export)."""
        out: dict[str, dict[ClockMark, ClockEntry]] = {}
        with self.begin() as conn:
            for r in conn.execute(sa.select(incident_clock)):
                if r.mark in set(ClockMark):
                    entry = ClockEntry(ClockMark(r.mark), aware(r.at), r.by)
                    out.setdefault(r.incident_id, {})[entry.mark] = entry
        return out

    def forget_model(self, model: str) -> None:
        """Delete every incident of a model, with its timeline, evidence and clock (demo resets only)."""
        with self.begin() as conn:
            ids = list(conn.execute(sa.select(incidents.c.id).where(incidents.c.model == model)).scalars())
            conn.execute(timeline.delete().where(timeline.c.incident_id.in_(ids)))
            conn.execute(evidence.delete().where(evidence.c.incident_id.in_(ids)))
            conn.execute(incident_clock.delete().where(incident_clock.c.incident_id.in_(ids)))
            conn.execute(incidents.delete().where(incidents.c.model == model))


def _incident(row: Any) -> Incident:
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
