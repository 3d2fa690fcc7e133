"""The console's pages (Jinja2, autoescaped) and its JSON, from the read models in :mod:`queries`.

Every value reaches HTML through Jinja2's autoescaping, and every string that came from
outside also through :func:`firebreak.inert.clean` (the ``clean`` filter): control
characters and escape sequences never reach the page, whatever an alert carried.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from firebreak.console.approvals import PendingApproval
from firebreak.console.auth import Viewer
from firebreak.console.queries import STAGE_OF, Board, IncidentPage, ModelPage
from firebreak.errors import FirebreakError
from firebreak.incidents.clock import target_words
from firebreak.incidents.enums import EvidenceKind, IncidentStatus, Severity
from firebreak.inert import clean
from firebreak.postmortem.clock import ClockView, clock_rows, clock_view, human_duration, route_for, utc
from firebreak.settings import Settings

DAG_ID = "incident_response"
_QUIET = {"task_started", "task_succeeded"}


@cache
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["clean"] = lambda v, n=2000: clean(v, n)
    env.filters["when"] = _when
    env.filters["duration"] = human_duration
    env.filters["share"] = lambda v: f"{float(v):.1%}" if isinstance(v, int | float) else clean(v)
    env.filters["number"] = _number
    return env


def _when(at: Any) -> str:
    value = utc(at) if isinstance(at, datetime | str) and at else None
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "—"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return clean(value if value is not None else "—", 200)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


def _render(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)


def _common(base: str, who: Viewer, settings: Settings) -> dict[str, Any]:
    return {
        "base": base,
        "who": who,
        "airflow": settings.airflow_url,
        "trigger_url": f"{settings.airflow_url}/dags/{DAG_ID}",
        "statuses": [s.value for s in IncidentStatus],
        "severities": [s.value for s in Severity],
        "now": datetime.now(UTC),
    }


def board(base: str, who: Viewer, found: Board, settings: Settings) -> str:
    return _render("board.html", board=found, **_common(base, who, settings))


def incident(
    base: str, who: Viewer, page: IncidentPage, settings: Settings, waiting: list[PendingApproval] | None
) -> str:
    clock = _clock(page, settings)
    opening = page.evidence.get(EvidenceKind.OPENING, {})
    mlflow = None
    if page.incident.mlflow_run_id and opening.get("mlflow_experiment_id"):
        mlflow = settings.mlflow_run_url(str(opening["mlflow_experiment_id"]), page.incident.mlflow_run_id)
    airflow_run = settings.airflow_run_url(DAG_ID, page.incident.dag_run_id) if page.incident.dag_run_id else None
    summaries = {}
    for event in page.events:
        if event.kind in STAGE_OF and event.kind not in {EvidenceKind.OPENING}:
            summaries[event.kind] = event.message  # the newest line of each kind
    return _render(
        "incident.html",
        page=page,
        clock=clock,
        rows=clock_rows(clock),
        marks_order=clock.clock.problems(),
        ev=page.evidence,
        summaries=summaries,
        timeline=[e for e in page.events if e.kind not in _QUIET],
        waiting=waiting,
        approval=_approval_state(page, settings, waiting),
        links={"airflow": airflow_run, "mlflow": mlflow},
        **_common(base, who, settings),
    )


def _clock(page: IncidentPage, settings: Settings | None) -> ClockView:
    """The incident's clock against its policy's targets (the SOP's matrix when the policy is gone)."""
    from firebreak.policy.schema import load_policy

    notify = None
    if settings is not None:
        try:
            notify = load_policy(page.incident.model, settings.policies_dir).notify
        except FirebreakError:
            notify = None
    i = page.incident
    return clock_view(
        page.clock, status=str(i.status), opened=i.opened_at, closed=i.closed_at, route=route_for(notify, i.severity)
    )


def _approval_state(page: IncidentPage, settings: Settings, waiting: list[PendingApproval] | None) -> str | None:
    """A sentence on the approval step when the policy requires one (the waiting state)."""
    from firebreak.policy.schema import load_policy

    try:
        requires = load_policy(page.incident.model, settings.policies_dir).gate.requires_approval
    except FirebreakError:
        return None
    if not requires:
        return None
    gate = page.evidence.get(EvidenceKind.GATE, {})
    if waiting:
        return (
            "The gate passed and the run is waiting for a human approval (below, or under Required Actions in Airflow)."
        )
    if gate.get("passed"):
        if waiting is None:
            return (
                "The gate passed; the policy requires a human approval before promotion. "
                "This console cannot reach an approval step of the run: answer it in Airflow (Required Actions)."
            )
        return "The gate passed; the policy requires a human approval, and no approval is waiting in the run."
    return "The policy requires a human approval after a passed gate; the gate has not passed."


def model(
    base: str, who: Viewer, page: ModelPage, settings: Settings, audits: list[dict[str, Any]] | str | None = None
) -> str:
    runs = [
        {**a, "url": settings.mlflow_run_url(str(a["experiment_id"]), str(a["run_id"]))}
        for a in (audits if isinstance(audits, list) else [])
    ]
    problem = audits if isinstance(audits, str) else None
    return _render("model.html", page=page, audits=runs, audits_problem=problem, **_common(base, who, settings))


def denied(base: str, status: int, message: str) -> str:
    return _render("denied.html", base=base, status=status, message=message)


# -- JSON ----------------------------------------------------------------------------------


def _clock_json(clock: ClockView, now: datetime) -> dict[str, Any]:
    def seconds(delta: timedelta | None) -> float | None:
        return round(delta.total_seconds(), 1) if delta is not None else None

    return {
        "age_seconds": seconds(clock.age(now)),
        "acknowledged_by": clock.acknowledged_by,
        "time_to_contain_seconds": seconds(clock.time_to_contain),
        "time_to_resolve_seconds": seconds(clock.time_to_resolve),
        "contain_target": target_words(clock.route.contain_within),
        "contain_met": clock.contain_met(now),
    }


def board_json(found: Board) -> dict[str, Any]:
    return {
        "incidents": [
            {
                "id": row.incident.id,
                "model": row.incident.model,
                "status": str(row.incident.status),
                "stage": row.stage,
                "severity": row.incident.severity,
                "opened_at": _when(row.incident.opened_at),
                "route": row.route,
                **_clock_json(row.clock, found.now),
            }
            for row in found.rows
        ],
        "matching": found.matching,
        "page": found.filters.page,
        "per_page": found.per_page,
        "next_page": found.filters.page + 1 if found.older else None,
    }


def incident_json(page: IncidentPage, settings: Settings | None = None) -> dict[str, Any]:
    clock = _clock(page, settings)
    return {
        "id": page.incident.id,
        "model": page.incident.model,
        "status": str(page.incident.status),
        "stage": page.stage,
        "severity": page.incident.severity,
        "failure_class": page.incident.failure_class,
        "description": clean(page.incident.description, 4000, keep_newlines=True),
        "outcome": page.incident.outcome,
        "clock": _clock_json(clock, datetime.now(UTC)),
        "timeline": [
            {"at": _when(e.at), "kind": e.kind, "message": clean(e.message, 4000), "by": (e.data or {}).get("by")}
            for e in page.events
        ],
        "evidence": sorted(page.evidence),
        "charts": page.charts,
        "route": page.routing.route if page.routing else None,
        "breaker": page.breaker.state if page.breaker else None,
        "postmortem": page.postmortem is not None,
    }


def model_json(page: ModelPage) -> dict[str, Any]:
    return {
        "model": page.model,
        "route": page.routing.route if page.routing else None,
        "route_reason": page.routing.reason if page.routing else None,
        "breaker": {"state": page.breaker.state, "forced": page.breaker.forced, "reason": page.breaker.reason}
        if page.breaker
        else None,
        "aliases": {alias: entry.new_version for alias, entry in page.aliases.items()},
        "ledger": [
            {
                "at": _when(e.at),
                "alias": e.alias,
                "from": e.old_version,
                "to": e.new_version,
                "status": e.status,
                "actor": e.actor,
                "incident": e.incident_id,
                "reason": e.reason,
            }
            for e in page.ledger
        ],
        "incidents": [{"id": i.id, "status": str(i.status), "severity": i.severity} for i in page.incidents],
    }
