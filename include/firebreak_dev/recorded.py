"""Recorded incidents: the state-DB rows of real scenario incidents, replayed into any state DB.

The incident console's browser test and its benchmark need incidents of every scenario on
the board, with real evidence (drift columns, fairness groups, output distributions, gate
checks, alias moves). Running six incidents end to end costs minutes each; replaying what
six real runs recorded costs a second. :func:`export` took the rows from the ``make demo``
runs of each scenario (``python -m firebreak_dev record-incidents``); :func:`replay` writes
them again with times shifted to now, as many copies as asked, and renders each
post-mortem from the replayed rows with the same code the ``postmortem`` task runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from firebreak.containment.state import RoutingStore
from firebreak.incidents.store import IncidentStore
from firebreak.postmortem.clock import utc
from firebreak.registry.ledger import AliasLedger
from firebreak.settings import Settings

RECORDING = Path(__file__).with_name("recorded_incidents.json")
_PATHS = ("path", "html", "artifact")  # local paths in the recording: meaningless elsewhere


@dataclass(frozen=True)
class Replayed:
    incident_id: str
    scenario: str
    model: str
    status: str


def export(settings: Settings, incidents: dict[str, str]) -> dict[str, Any]:
    """The rows of ``incidents`` (incident id -> scenario name), times relative to each opening."""
    store, ledger = IncidentStore(settings.state_db_url), AliasLedger(settings.state_db_url)
    routing = RoutingStore(settings.state_db_url)
    recorded = []
    for incident_id, scenario in incidents.items():
        incident = store.get_incident(incident_id)
        if incident is None:
            raise KeyError(f"no incident {incident_id}")
        opened = utc(incident.opened_at)
        assert opened is not None

        def since(at: datetime | None, opened: datetime = opened) -> float | None:
            value = utc(at)
            return round((value - opened).total_seconds(), 3) if value else None

        evidence = store.get_evidence(incident_id)
        for payload in evidence.values():
            for key in _PATHS:
                payload.pop(key, None)
        recorded.append(
            {
                "scenario": scenario,
                "incident": {
                    "id": incident.id,
                    "model": incident.model,
                    "status": str(incident.status),
                    "severity": incident.severity,
                    "failure_class": incident.failure_class,
                    "description": incident.description,
                    "dedup_key": incident.dedup_key,
                    "dry_run": incident.dry_run,
                    "request": incident.request,
                    "outcome": incident.outcome,
                    "opened_at": opened.isoformat(),
                    "closed_after": since(incident.closed_at),
                },
                "events": [
                    {"after": since(e.at), "kind": e.kind, "message": e.message, "data": e.data}
                    for e in store.events(incident_id)
                    if e.kind != "postmortem"
                ],
                "evidence": {k: v for k, v in evidence.items() if k != "postmortem"},
                "ledger": [
                    {
                        "after": since(e.at),
                        "alias": e.alias,
                        "old": e.old_version,
                        "new": e.new_version,
                        "actor": e.actor,
                        "reason": e.reason,
                        "status": e.status,
                    }
                    for e in ledger.entries(incident.model)
                    if e.incident_id == incident_id
                ],
                "routing": {"route": route.route} if (route := routing.get_routing(incident.model)) else None,
                "clock": [
                    {"mark": str(mark), "after": since(entry.at), "by": entry.by}
                    for mark, entry in store.clock(incident_id).items()
                ],
            }
        )
    return {"incidents": recorded}


def replay(
    settings: Settings,
    *,
    copies: int = 1,
    now: datetime | None = None,
    spacing: timedelta = timedelta(hours=3),
    postmortems: bool = True,
    extra: Iterable[dict[str, Any]] = (),
) -> list[Replayed]:
    """Write the recording into ``settings``' state DB ``copies`` times; the newest closes about now.

    Copy 0 keeps the recorded ids; copy ``k`` appends ``-k`` to each id. ``extra`` adds
    recorded incidents of the caller's own (same shape as the recording's).
    """
    now = now or datetime.now(UTC)
    recording = [*json.loads(RECORDING.read_text())["incidents"], *extra]
    store = IncidentStore(settings.state_db_url)
    routing = RoutingStore(settings.state_db_url)
    ledger = AliasLedger(settings.state_db_url)
    done: list[Replayed] = []
    step = 0
    for copy in range(copies):
        for record in recording:
            step += 1
            done.append(_replay_one(store, ledger, record, copy, now - spacing * step))
    for record in recording:  # the routing each model ended with
        model = record["incident"]["model"]
        state = routing.ensure_routing(model, "champion", "recorded")
        final = (record.get("routing") or {}).get("route")
        if final and final != state.route:
            routing.compare_and_set_route(
                model, expected_generation=state.generation, route=final, incident_id=None, reason="recorded"
            )
    if postmortems:
        _publish([d.incident_id for d in done[: len(recording)]], settings)
    return done


def _replay_one(
    store: IncidentStore, ledger: AliasLedger, record: dict[str, Any], copy: int, opened: datetime
) -> Replayed:
    """One recorded incident written again, in one transaction (a thousand of them take seconds)."""
    from firebreak.incidents.store import evidence, incident_clock, incidents, timeline
    from firebreak.registry.ledger import alias_ledger
    from firebreak.state_db import jsonable

    row = record["incident"]
    incident_id = row["id"] if copy == 0 else f"{row['id']}-{copy}"
    closed = row.get("closed_after")
    shift = opened - (utc(row.get("opened_at")) or opened)
    with store.begin() as conn:
        conn.execute(
            incidents.insert().values(
                id=incident_id,
                model=row["model"],
                status=row["status"],
                severity=row["severity"],
                failure_class=row["failure_class"],
                description=row["description"],
                dedup_key=f"{row['dedup_key']}#{copy}" if copy else row["dedup_key"],
                dag_run_id=incident_id,
                dry_run=row["dry_run"],
                request=jsonable(row["request"]),
                outcome=row["outcome"],
                opened_at=opened,
                updated_at=opened,
                closed_at=opened + timedelta(seconds=closed) if closed is not None else None,
            )
        )
        conn.execute(
            timeline.insert(),
            [
                {
                    "incident_id": incident_id,
                    "at": opened + timedelta(seconds=e["after"]),
                    "kind": e["kind"],
                    "message": e["message"],
                    "data": jsonable(e["data"]),
                }
                for e in record["events"]
            ],
        )
        conn.execute(
            evidence.insert(),
            [
                {"incident_id": incident_id, "kind": kind, "recorded_at": opened, "payload": _shifted(kind, p, shift)}
                for kind, p in record["evidence"].items()
            ],
        )
        marks = record["clock"] if "clock" in record else _derived_clock(record)
        if marks:
            conn.execute(
                incident_clock.insert(),
                [
                    {
                        "incident_id": incident_id,
                        "mark": str(m["mark"]),
                        "at": opened + timedelta(seconds=m["after"]),
                        "by": m["by"],
                        "recorded_at": opened,
                    }
                    for m in marks
                ],
            )
        if record["ledger"]:
            conn.execute(
                alias_ledger.insert(),
                [
                    {
                        "model": row["model"],
                        "alias": m["alias"],
                        "old_version": m["old"],
                        "new_version": m["new"],
                        "incident_id": incident_id,
                        "actor": m["actor"],
                        "reason": m["reason"],
                        "status": m["status"],
                        "at": opened + timedelta(seconds=m["after"]),
                    }
                    for m in record["ledger"]
                ],
            )
    return Replayed(incident_id, record["scenario"], row["model"], row["status"])


def _derived_clock(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Clock marks for a recording made before the incident clock existed, read off its timeline.

    Detected is the opening (the demo opens by hand); acknowledged and contained are the first
    such timeline lines (a dry run's containment contains nothing); resolved is the close.
    """
    from firebreak.incidents.enums import ClockMark, EventKind, EvidenceKind, IncidentStatus

    row, events = record["incident"], record["events"]
    opened = utc(row.get("opened_at"))
    marks = [
        {"mark": ClockMark.DETECTED, "after": 0.0, "by": "opened by hand (recorded)"},
        {"mark": ClockMark.OPENED, "after": 0.0, "by": "incident_response (recorded)"},
    ]
    breach = utc(str((record["evidence"].get(EvidenceKind.TRIAGE) or {}).get("first_breach_at") or "")) or None
    if breach and opened and breach <= opened:
        marks.append(
            {"mark": ClockMark.FIRST_BREACH, "after": (breach - opened).total_seconds(), "by": "prediction log"}
        )
    ack = next((e for e in events if e["kind"] == EventKind.ACKNOWLEDGED), None)
    if ack:
        marks.append({"mark": ClockMark.ACKNOWLEDGED, "after": ack["after"], "by": (ack["data"] or {}).get("by")})
    contained = next(
        (e for e in events if e["kind"] == EvidenceKind.CONTAINMENT and not e["message"].startswith("dry run")), None
    )
    if contained:
        marks.append({"mark": ClockMark.CONTAINED, "after": contained["after"], "by": "contain (recorded)"})
    if row["status"] == IncidentStatus.RESOLVED and row.get("closed_after") is not None:
        marks.append({"mark": ClockMark.RESOLVED, "after": row["closed_after"], "by": "close_incident (recorded)"})
    return marks


def _shifted(kind: str, payload: dict[str, Any], shift: timedelta) -> dict[str, Any]:
    """Evidence times moved with the incident: the first breach, hourly breaches, traffic by hour."""

    def moved(text: Any) -> Any:
        at = utc(str(text)) if text else None
        return (at + shift).isoformat() if at else text

    payload = json.loads(json.dumps(payload))
    if kind == "triage":
        payload["first_breach_at"] = moved(payload.get("first_breach_at"))
        payload["first_hour_over"] = {k: moved(v) for k, v in (payload.get("first_hour_over") or {}).items()}
    elif kind == "outputs" and (payload.get("traffic") or {}).get("hours"):
        payload["traffic"]["hours"] = [moved(h) for h in payload["traffic"]["hours"]]
    elif kind == "lineage":
        for group in [*payload.get("groups", []), *payload.get("new_since_window_start", [])]:
            group["first_seen"], group["last_seen"] = moved(group.get("first_seen")), moved(group.get("last_seen"))
    return dict(payload)


def _publish(incident_ids: list[str], settings: Settings) -> None:
    """Each replayed incident's post-mortem files, rendered from its rows (no model, no MLflow)."""
    from firebreak.incidents.enums import EvidenceKind, IncidentStatus
    from firebreak.stages.closing import publish_postmortem
    from firebreak.stages.context import Context

    for incident_id in incident_ids:
        ctx = Context(incident_id, settings)
        status = IncidentStatus(ctx.incident.status)
        path, page, charts = publish_postmortem(ctx, status, ctx.incident.outcome or str(status))
        ctx.store.put_evidence(
            incident_id,
            EvidenceKind.POSTMORTEM,
            {"path": str(path), "html": str(page), "charts": [c.stem for c in charts], "artifact": None},
        )
