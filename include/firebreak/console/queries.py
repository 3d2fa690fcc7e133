"""What the incident console shows, read from the state DB: the board, an incident, a model.

On-call people think in incidents: which are open, how bad, which stage, who has it, how
long since it started and what the model serves now. These read models answer that from
the stores (:class:`IncidentStore`, :class:`RoutingStore`, :class:`AliasLedger`) in a
fixed, small number of queries whatever the number of incidents: the board over 1,000
incidents is three queries (a page of incidents, their clock marks, the count), the models
with incidents, and one routing read per model shown
(docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict
from urllib.parse import urlencode

from firebreak.containment.state import BreakerRow, RoutingState, RoutingStore
from firebreak.incidents.clock import Clock
from firebreak.incidents.enums import EventKind, EvidenceKind, IncidentStatus, Severity
from firebreak.incidents.store import BoardEntry, Incident, IncidentStore, TimelineEvent
from firebreak.policy.schema import Notify
from firebreak.postmortem.clock import ClockView, clock_view, route_for
from firebreak.registry.ledger import AliasLedger, LedgerEntry

# The SOP stage an incident reached, from the newest timeline line of a stage's kind.
STAGE_OF: dict[str, str] = {
    EvidenceKind.OPENING: "open",
    EvidenceKind.TRIAGE: "triage",
    EvidenceKind.CONTAINMENT: "contain",
    EvidenceKind.CONTRACT: "investigate",
    EvidenceKind.LINEAGE: "investigate",
    EvidenceKind.DRIFT: "investigate",
    EvidenceKind.GOLDEN: "investigate",
    EvidenceKind.GOLDEN_QA: "investigate",
    EvidenceKind.FAIRNESS: "investigate",
    EvidenceKind.FEEDBACK: "investigate",
    EvidenceKind.DIAGNOSIS: "diagnose",
    EvidenceKind.REMEDIATION_CHOICE: "diagnose",
    EvidenceKind.CANDIDATE: "remediate",
    EvidenceKind.UPSTREAM_CHECK: "remediate",
    EvidenceKind.GATE: "verify",
    EvidenceKind.PROMOTION: "promote",
    EvidenceKind.RESTORE: "restore",
    EvidenceKind.POSTMORTEM: "learn",
    EventKind.CLOSED: "closed",
}
PER_PAGE = 100  # incidents on one page of the board; older ones a link away
MAX_PAGE = 10_000
SINCE = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


@dataclass(frozen=True)
class Filters:
    """The board's filters (all optional); values are checked against the known vocabularies."""

    model: str | None = None
    status: str | None = None
    severity: str | None = None
    since: str | None = None  # 24h | 7d | 30d
    page: int = 1  # 1: the newest PER_PAGE

    @classmethod
    def parse(
        cls, model: str | None, status: str | None, severity: str | None, since: str | None, page: str | None = None
    ) -> Filters:
        """Unknown values are dropped, never passed to a query."""
        return cls(
            model=model if model and len(model) <= 100 else None,
            status=status if status in {s.value for s in IncidentStatus} else None,
            severity=severity if severity in {s.value for s in Severity} else None,
            since=since if since in SINCE else None,
            page=int(page)
            if page and len(page) <= 5 and page.isascii() and page.isdigit() and 1 <= int(page) <= MAX_PAGE
            else 1,
        )

    def query(self, page: int) -> str:
        """The board's query string for ``page`` of these filters (for the Newer/Older links)."""
        chosen = {"model": self.model, "status": self.status, "severity": self.severity, "since": self.since}
        return urlencode({**{k: v for k, v in chosen.items() if v}, "page": page})


@dataclass(frozen=True)
class BoardRow:
    incident: BoardEntry
    stage: str
    clock: ClockView
    route: str | None


@dataclass(frozen=True)
class Board:
    rows: list[BoardRow]
    models: list[str]
    filters: Filters
    matching: int  # incidents matching the filters, on every page
    now: datetime
    per_page: int = PER_PAGE

    @property
    def first(self) -> int:
        """1-based position of the page's first row among the matching incidents."""
        return (self.filters.page - 1) * self.per_page + 1

    @property
    def older(self) -> bool:
        return self.first - 1 + len(self.rows) < self.matching


class _Matching(TypedDict):
    """The incident store's filters for the board's page and its count."""

    model: str | None
    status: str | None
    severity: str | None
    opened_after: datetime | None


def board(
    store: IncidentStore,
    routing: RoutingStore,
    filters: Filters,
    *,
    known_models: list[str],
    notify: dict[str, Notify] | None = None,
    now: datetime | None = None,
    per_page: int = PER_PAGE,
) -> Board:
    """One page of the incidents matching ``filters``, newest first, each with its stage, clock
    and the model's route.

    ``notify``: each model's policy section whose severity routes hold the targets (the
    SOP's matrix for a model without one).
    """
    now = now or datetime.now(UTC)
    matching = _Matching(
        model=filters.model,
        status=filters.status,
        severity=filters.severity,
        opened_after=now - SINCE[filters.since] if filters.since else None,
    )
    found = store.board(**matching, limit=per_page, offset=(filters.page - 1) * per_page, stages=list(STAGE_OF))
    routes = {m: routing.get_routing(m) for m in {i.model for i in found}}
    rows = []
    for entry in found:
        route = routes.get(entry.model)
        rows.append(
            BoardRow(
                incident=entry,
                stage="closed" if entry.status.is_final else STAGE_OF.get(entry.stage or "", "open"),
                clock=clock_view(
                    Clock(entry.marks),
                    status=str(entry.status),
                    opened=entry.opened_at,
                    closed=entry.closed_at,
                    route=route_for((notify or {}).get(entry.model), entry.severity),
                ),
                route=route.route if route else None,
            )
        )
    models = sorted(set(known_models) | set(store.models()))
    return Board(rows, models, filters, store.count(**matching), now, per_page)


@dataclass(frozen=True)
class IncidentPage:
    incident: Incident
    events: list[TimelineEvent]
    evidence: dict[str, dict[str, Any]]
    stage: str
    ledger: list[LedgerEntry]
    routing: RoutingState | None
    breaker: BreakerRow | None
    postmortem: str | None  # path of the HTML post-mortem, when written
    clock: Clock = field(default_factory=lambda: Clock({}))
    charts: list[str] = field(default_factory=list)


def incident_page(
    store: IncidentStore, routing: RoutingStore, ledger: AliasLedger, incident_id: str
) -> IncidentPage | None:
    """Everything the incident page shows; None when there is no such incident."""
    from firebreak.postmortem.charts import available_charts

    incident = store.get_incident(incident_id)
    if incident is None:
        return None
    events = store.events(incident_id)
    evidence = store.get_evidence(incident_id)
    stage = next((STAGE_OF[e.kind] for e in reversed(events) if e.kind in STAGE_OF), "open")
    page = evidence.get(EvidenceKind.POSTMORTEM, {}).get("html")
    return IncidentPage(
        incident=incident,
        events=events,
        evidence=evidence,
        stage="closed" if incident.status.is_final else stage,
        ledger=[e for e in ledger.entries(incident.model) if e.incident_id == incident_id],
        routing=routing.get_routing(incident.model),
        breaker=routing.get_breaker(incident.model),
        postmortem=str(page) if page else None,
        clock=Clock(store.clock(incident_id)),
        charts=available_charts(evidence, events),
    )


@dataclass(frozen=True)
class ModelPage:
    model: str
    routing: RoutingState | None
    breaker: BreakerRow | None
    aliases: dict[str, LedgerEntry]
    ledger: list[LedgerEntry]
    incidents: list[Incident]
    breaker_events: list[dict[str, Any]]


def model_page(store: IncidentStore, routing: RoutingStore, ledger: AliasLedger, model: str) -> ModelPage:
    """What serves now and why: route, breaker, aliases by the ledger, its history, recent incidents."""
    entries = ledger.entries(model)
    aliases: dict[str, LedgerEntry] = {}
    for entry in entries:
        if entry.status == "applied":
            aliases[entry.alias] = entry
    return ModelPage(
        model=model,
        routing=routing.get_routing(model),
        breaker=routing.get_breaker(model),
        aliases={a: e for a, e in sorted(aliases.items()) if e.new_version},
        ledger=list(reversed(entries)),
        incidents=store.search(model=model, limit=20),
        breaker_events=list(reversed(routing.breaker_events(model)))[:20],
    )


def latest_audits(settings: Any, model: str, limit: int = 5) -> list[dict[str, Any]]:
    """The model's latest scheduled audit runs in MLflow: which audit, when, how many breaches.

    Raises whatever MLflow raises when it cannot be reached; the page shows that instead.
    """
    from firebreak.audits import AUDIT_EXPERIMENT
    from firebreak.registry.mlflow_registry import Registry

    client = Registry(settings).client
    experiment = client.get_experiment_by_name(AUDIT_EXPERIMENT)
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`firebreak.model` = '{model}'",  # model matched MODEL_NAME: no quotes
        order_by=["attributes.start_time DESC"],
        max_results=limit,
    )
    return [
        {
            "audit": run.data.tags.get("firebreak.audit", "?"),
            "at": datetime.fromtimestamp(run.info.start_time / 1000, UTC),
            "breaches": run.data.metrics.get("breaches"),
            "run_id": run.info.run_id,
            "experiment_id": experiment.experiment_id,
        }
        for run in runs
    ]
