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
    row = record["incident"]
    incident_id = row["id"] if copy == 0 else f"{row['id']}-{copy}"
    store.create_incident(
        incident_id=incident_id,
        model=row["model"],
        description=row["description"],
        dedup_key=f"{row['dedup_key']}#{copy}" if copy else row["dedup_key"],
        dag_run_id=incident_id,
        dry_run=row["dry_run"],
        request=row["request"],
    )
    closed = row.get("closed_after")
    store.update_incident(
        incident_id,
        status=row["status"],
        severity=row["severity"],
        failure_class=row["failure_class"],
        outcome=row["outcome"],
        opened_at=opened,
        closed_at=opened + timedelta(seconds=closed) if closed is not None else None,
    )
    for event in record["events"]:
        store.add_event(
            incident_id, event["kind"], event["message"], event["data"], at=opened + timedelta(seconds=event["after"])
        )
    for kind, payload in record["evidence"].items():
        store.put_evidence(incident_id, kind, payload)
    for move in record["ledger"]:
        entry = ledger.begin_move(
            model=row["model"],
            alias=move["alias"],
            old=move["old"],
            new=move["new"],
            incident_id=incident_id,
            actor=move["actor"],
            reason=move["reason"],
            at=opened + timedelta(seconds=move["after"]),
        )
        ledger.finish_move(entry, move["status"])
    return Replayed(incident_id, record["scenario"], row["model"], row["status"])


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
