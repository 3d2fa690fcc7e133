"""SOP stages *Learn* and *Close*: the post-mortem, written whatever happened, and the final status."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from firebreak.incidents.enums import ClockMark, EventKind, EvidenceKind, IncidentStatus, Route
from firebreak.incidents.outcome import final_status
from firebreak.incidents.store import TimelineEvent
from firebreak.stages.context import Context

if TYPE_CHECKING:
    import pandas as pd

    from firebreak.postmortem.charts import Chart
    from firebreak.postmortem.render import Links

log = logging.getLogger(__name__)
T = TypeVar("T")
DAG_ID = "incident_response"  # the DAG whose run is the incident (its run id is the incident id)
SAMPLE_ROWS = 2000  # rows each model scores for the distributions: enough for a histogram, cheap to predict


def _outcome(ctx: Context) -> tuple[IncidentStatus, str]:
    routing = ctx.routing.get_routing(ctx.model)
    return final_status(
        incident_id=ctx.incident_id,
        dry_run=ctx.dry_run,
        evidence=ctx.evidence(),
        events=ctx.store.events(ctx.incident_id),
        route=routing.route if routing else None,
        routed_by=routing.incident_id if routing else None,
    )


def write_postmortem(incident_id: str) -> dict[str, Any]:
    """Render the post-mortem (Markdown with chart images, and one HTML page), locally and to MLflow.

    Before rendering, it records what only hindsight can measure: the impact in the
    model's own terms and the output distributions before, during and after. Each is best
    effort: a figure that cannot be computed is named in the post-mortem, never fatal.
    """
    ctx = Context.load(incident_id)
    status, why = _outcome(ctx)
    if status == IncidentStatus.RESOLVED:
        ctx.mark(ClockMark.RESOLVED, by="postmortem")  # the clock in the post-mortem is the final one
    impact, error = _best_effort("impact", lambda: ctx.kind.impact(ctx.settings, ctx.window, ctx.labelled_window))
    ctx.store.put_evidence(incident_id, EvidenceKind.IMPACT, {"items": impact} if impact else {"error": error})
    ctx.log_metrics({f"impact_{i['key']}": i["value"] for i in impact or [] if "key" in i})
    outputs, error = _best_effort("output distributions", lambda: _output_summary(ctx))
    ctx.store.put_evidence(incident_id, EvidenceKind.OUTPUTS, outputs or {"error": error})
    path, page, charts = publish_postmortem(ctx, status, why)
    uri = None
    if ctx.incident.mlflow_run_id:
        uri = ctx.log_artifact(path, "postmortem")
        ctx.log_artifact(page, "postmortem")
        for png in charts:
            ctx.log_artifact(png, f"postmortem/{incident_id}")
    ctx.store.put_evidence(
        incident_id,
        EvidenceKind.POSTMORTEM,
        {"path": str(path), "html": str(page), "charts": [c.stem for c in charts], "artifact": uri},
    )
    ctx.event(EvidenceKind.POSTMORTEM, f"post-mortem written to {path} ({len(charts)} charts; HTML {page.name})")
    return {"path": str(path)}


def publish_postmortem(ctx: Context, status: IncidentStatus, why: str) -> tuple[Path, Path, list[Path]]:
    """Write the post-mortem's files from the state DB alone: Markdown, its chart PNGs, the HTML page.

    Returns the Markdown path, the HTML path and the chart files. Reads no model and no
    MLflow, so it also renders recorded incidents (the console's tests and benchmark).
    """
    from firebreak.incidents.clock import Clock
    from firebreak.oncall.outbox import Outbox
    from firebreak.postmortem.html import to_html
    from firebreak.postmortem.render import ChartRef, render_postmortem
    from firebreak.registry.ledger import AliasLedger

    incident_id = ctx.incident_id
    evidence, events = ctx.evidence(), ctx.store.events(incident_id)
    charts, _ = _best_effort("charts", lambda: _charts(ctx, evidence, events))
    folder = ctx.settings.postmortem_dir / incident_id
    folder.mkdir(parents=True, exist_ok=True)
    images: dict[str, bytes] = {}
    files = []
    for chart in charts or []:
        files.append(folder / f"{chart.name}.png")
        files[-1].write_bytes(chart.png)
        images[f"{incident_id}/{chart.name}.png"] = chart.png
    refs = [ChartRef(c.name, c.title, f"{incident_id}/{c.name}.png") for c in charts or []]
    text = render_postmortem(
        ctx.incident,
        ctx.policy,
        evidence,
        events,
        status,
        why,
        AliasLedger(ctx.settings.state_db_url).entries(ctx.model),
        ctx.routing.get_routing(ctx.model),
        links=_links(ctx, evidence),
        charts=refs,
        clock=Clock(ctx.store.clock(incident_id)),
        notifications=Outbox(ctx.settings.state_db_url).for_incident(incident_id),
    )
    path = ctx.settings.postmortem_dir / f"{incident_id}.md"
    path.write_text(text)
    page = path.with_suffix(".html")
    page.write_text(to_html(text, f"Post-mortem {incident_id}", images))
    return path, page, files


def _best_effort(what: str, make: Callable[[], T]) -> tuple[T | None, str | None]:
    try:
        return make(), None
    # The post-mortem is written whatever happened (SOP stage Learn): a figure that cannot be
    # computed (MLflow down, a model that no longer loads, no traffic) is named, never fatal.
    except Exception as exc:  # noqa: BLE001
        log.warning("post-mortem: %s not available: %s", what, exc)
        return None, f"{what} not available: {type(exc).__name__}: {exc}"


def _output_summary(ctx: Context) -> dict[str, Any]:
    """Outputs and confidence before (the champion on its training inputs), during (what users got)
    and after (the fix on the same inputs), plus traffic by route: the post-mortem's charts."""
    from firebreak.postmortem.charts import summarise_outputs

    window = ctx.window()
    during = window[window["route"] == Route.CHAMPION] if "route" in window.columns else window
    champion = ctx.champion_at_opening()
    reference = ctx.registry.reference_frame(champion)
    reference = reference.sample(n=min(SAMPLE_ROWS, len(reference)), random_state=0)
    before = ctx.registry.load(champion).predict(_model_inputs(ctx, reference))
    names = {
        "before": f"v{champion.version} on its training inputs",
        "during": "what users got from the model in the triage window",
    }
    ev = ctx.evidence()
    fixed = ev.get(EvidenceKind.PROMOTION, {}).get("to") or ev.get(EvidenceKind.CANDIDATE, {}).get("version")
    after = None
    if fixed and len(during):
        sample = during.sample(n=min(SAMPLE_ROWS, len(during)), random_state=0)
        after = ctx.registry.load(ctx.registry.get_version(ctx.model, str(fixed))).predict(_model_inputs(ctx, sample))
        promoted = ev.get(EvidenceKind.PROMOTION, {}).get("promoted")
        names["after"] = f"v{fixed} ({'promoted' if promoted else 'not promoted'}) on the same inputs"
    return summarise_outputs(
        ctx.policy.features.output,
        ctx.policy.features.confidence,
        before=before,
        during=during,
        after=after,
        names=names,
        floor=ctx.policy.detection.confidence_floor,
    )


def _model_inputs(ctx: Context, frame: pd.DataFrame) -> pd.DataFrame:
    """What the model is called with: the kind's input columns, the policy's features where present."""
    inputs = ctx.kind.input_example(frame)
    wanted = [c for c in ctx.policy.features.inputs if c in inputs.columns]
    return inputs[wanted].reset_index(drop=True) if len(wanted) == len(ctx.policy.features.inputs) else inputs


def _charts(ctx: Context, evidence: dict[str, dict[str, Any]], events: list[TimelineEvent]) -> list[Chart]:
    from firebreak.postmortem.charts import charts_for
    from firebreak.postmortem.clock import utc

    start = ctx.opened_at - timedelta(hours=ctx.policy.detection.window_hours)
    end = utc(ctx.incident.closed_at) or datetime.now(UTC)
    breaker = [e for e in ctx.routing.breaker_events(ctx.model) if start <= (utc(e["at"]) or start) <= end]
    return charts_for(evidence, events, breaker, str(ctx.policy.containment.route))


def _links(ctx: Context, evidence: dict[str, dict[str, Any]]) -> Links:
    from firebreak.postmortem.render import Links

    experiment = evidence.get(EvidenceKind.OPENING, {}).get("mlflow_experiment_id")
    mlflow = None
    if ctx.incident.mlflow_run_id and experiment is not None:
        mlflow = ctx.settings.mlflow_run_url(str(experiment), ctx.incident.mlflow_run_id)
    airflow = ctx.settings.airflow_run_url(DAG_ID, ctx.incident.dag_run_id) if ctx.incident.dag_run_id else None
    return Links(airflow_run=airflow, mlflow_run=mlflow, html=f"{ctx.incident_id}.html")


def close_incident(incident_id: str) -> dict[str, Any]:
    """The incident's final status, said plainly, on the incident and its MLflow run."""
    ctx = Context.load(incident_id)
    status, why = _outcome(ctx)
    ctx.store.update_incident(incident_id, status=status, outcome=why)
    if status == IncidentStatus.RESOLVED:
        ctx.mark(ClockMark.RESOLVED, by="close_incident")
    ctx.event(EventKind.CLOSED, f"incident {status}: {why}")
    postmortem = ctx.evidence().get(EvidenceKind.POSTMORTEM, {})
    ctx.announce(
        "closed",
        f"{status}: {why}",
        details={"post-mortem": postmortem.get("artifact") or postmortem.get("path") or "not written"},
    )
    if ctx.incident.mlflow_run_id:
        ctx.tag_run(
            {
                "firebreak.status": str(status),
                "firebreak.outcome": why,
                "firebreak.severity": ctx.incident.severity,
                "firebreak.failure_class": ctx.incident.failure_class,
            }
        )
        ctx.registry.client.set_terminated(
            ctx.incident.mlflow_run_id, "FINISHED" if status == IncidentStatus.RESOLVED else "FAILED"
        )
    return {"status": str(status), "outcome": why}
