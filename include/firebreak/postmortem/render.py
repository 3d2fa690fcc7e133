"""The post-mortem an incident commander signs: what happened and what it cost, the clock,
the evidence with its pictures, what detection saw and missed, and the action items.

SOP stage *Learn*. Written whatever happened, so every section copes with missing
evidence. Every string that did not come from Firebreak itself (the alert's description,
column and group names, model answers, reasons typed by people, failure messages) goes
through :mod:`firebreak.inert` before it reaches the Markdown: an alert cannot add a
heading, break the timeline table or carry a script into the HTML version.

Its size (about 640 lines) is earned: one small renderer per section of the document, each
coping with missing evidence, sharing the inert text and number formatting helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from firebreak.containment.state import RoutingState
from firebreak.detection.performance import reported_figures
from firebreak.incidents.clock import DURATIONS, Clock
from firebreak.incidents.enums import ClockMark, EvidenceKind, IncidentStatus, Severity
from firebreak.incidents.store import Incident, TimelineEvent
from firebreak.inert import md, md_block, md_code
from firebreak.oncall.outbox import Notification
from firebreak.policy.metrics import METRIC_LABELS
from firebreak.policy.schema import Policy
from firebreak.postmortem.clock import clock_rows, clock_view, human_duration, route_for, utc
from firebreak.registry.ledger import LedgerEntry

# Task-level bookkeeping lines are summarised in the timeline, not repeated one by one; so are
# the notifications sent (their own section lists them).
_QUIET = {"task_started", "task_succeeded", "notified"}
# Action items are due within this many business days of the close, by severity: a SEV1's
# lessons are worth a week at most (docs/SOP.md, stage Learn).
ACTION_DUE_BUSINESS_DAYS: dict[str, int] = {Severity.SEV1: 5, Severity.SEV2: 10, Severity.SEV3: 20, Severity.SEV4: 20}
SIGN_OFF_BUSINESS_DAYS = 2
INCIDENT_COMMANDER = "incident commander (on-call)"


@dataclass(frozen=True)
class Links:
    """Where to read more: the Airflow run, the MLflow run, the HTML version with charts."""

    airflow_run: str | None = None
    mlflow_run: str | None = None
    html: str | None = None


@dataclass(frozen=True)
class ChartRef:
    """A chart image next to the post-mortem: ``path`` relative to the Markdown file."""

    name: str
    title: str
    path: str


def render_postmortem(
    incident: Incident,
    policy: Policy,
    evidence: dict[str, dict[str, Any]],
    events: list[TimelineEvent],
    status: IncidentStatus,
    why: str,
    ledger: list[LedgerEntry],
    routing: RoutingState | None,
    *,
    links: Links | None = None,
    charts: Sequence[ChartRef] = (),
    now: datetime | None = None,
    clock: Clock | None = None,
    notifications: list[Notification] | None = None,
) -> str:
    """Markdown post-mortem of one incident."""
    triage = evidence.get(EvidenceKind.TRIAGE, {})
    diagnosis = evidence.get(EvidenceKind.DIAGNOSIS, {})
    images = {c.name: c for c in charts}
    opened = utc(incident.opened_at)
    lines = [
        f"# Post-mortem {md(incident.id)}",
        "",
        f"- **Model:** {md_code(incident.model)} (owner: {md(policy.owner)})",
        f"- **Status:** `{status}` — {md(why, 600)}",
        f"- **Severity:** {md(incident.severity or 'not triaged')}",
        f"- **Failure class:** {md(diagnosis.get('failure_class') or incident.failure_class or 'unknown')}",
        f"- **Root cause:** {md(diagnosis.get('root_cause', 'not diagnosed'), 800)}",
        f"- **Opened:** {_when(opened)} UTC{_source(incident)}",
        f"- **Routing now:** {md(routing.route if routing else 'unknown')}",
    ]
    if link_line := _links(links):
        lines.append(f"- **Links:** {link_line}")
    lines += ["", "## What was reported", ""]
    lines.append(md_block(incident.description) if incident.description.strip() else "No description was given.")
    lines += ["", "## Impact", ""]
    lines += _impact(evidence.get(EvidenceKind.IMPACT, {}))
    lines += ["", "## Clock against the SOP's targets", ""]
    lines += _clock(incident, policy, clock or Clock({}), status, evidence)
    lines += ["", "## Timeline", "", "| time (UTC) | what |", "|---|---|"]
    multi_day = len({utc(e.at).date() for e in events if utc(e.at)}) > 1  # type: ignore[union-attr]
    for event in events:
        if event.kind in _QUIET:
            continue
        lines.append(f"| {_stamp(event.at, multi_day)} | {md(event.message, 400)} |")
    if durations := _task_durations(events):
        lines += ["", "Task durations: " + ", ".join(f"{md_code(t)} {s:.1f} s" for t, s in durations.items())]
    lines += ["", "## On-call", ""]
    lines += _oncall_section(notifications or [], evidence)
    lines += ["", "## Evidence", ""]
    lines += _evidence_section(evidence, policy, images)
    lines += ["", "## Alias moves", ""]
    moves = [e for e in ledger if e.incident_id == incident.id]
    if moves:
        lines += ["| alias | from | to | status | why | approved by |", "|---|---|---|---|---|---|"]
        lines += [
            f"| {md_code(e.alias)} | {md(e.old_version or '—')} | {md(e.new_version or '—')} | {md(e.status)} "
            f"| {md(e.reason, 300)} | {md(e.approved_by or '—', 100)} |"
            for e in moves
        ]
    else:
        lines.append("No registry alias moved.")
    lines += ["", "## Detection: what it saw and what it missed", ""]
    lines += _detection_section(incident, policy, evidence, triage)
    lines += ["", "## Action items", ""]
    lines += _action_items(incident, policy, evidence, triage, status, why, now)
    return "\n".join(lines) + "\n"


# -- formatting for people ---------------------------------------------------------------------


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}" if at else "—"


def _stamp(at: datetime, multi_day: bool) -> str:
    value = utc(at)
    if value is None:
        return "—"
    return f"{value:%m-%d %H:%M:%S}" if multi_day else f"{value:%H:%M:%S}"


def _share(value: Any) -> str:
    return f"{float(value):.1%}" if isinstance(value, int | float) else md(value if value is not None else "—")


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return md(value if value is not None else "—")
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def _time_text(text: Any) -> str:
    """An ISO timestamp from evidence, to the second; anything else escaped as is."""
    try:
        return _when(utc(str(text)))
    except ValueError:
        return md(text)


def _source(incident: Incident) -> str:
    key = incident.dedup_key or ""
    if key.startswith("audit:"):
        return f", by the scheduled audit {md_code(key.split(':')[1])}"
    return ""


def _links(links: Links | None) -> str:
    if links is None:
        return ""
    parts = []
    if links.airflow_run:
        parts.append(f"[Airflow run]({links.airflow_run})")
    if links.mlflow_run:
        parts.append(f"[MLflow run]({links.mlflow_run})")
    if links.html:
        parts.append(f"[this post-mortem with its charts (HTML)]({links.html})")
    return " · ".join(parts)


def _chart(images: dict[str, ChartRef], name: str) -> list[str]:
    chart = images.get(name)
    return [f"![{md(chart.title)}]({chart.path})", ""] if chart else []


# -- sections ----------------------------------------------------------------------------------


def _impact(impact: dict[str, Any]) -> list[str]:
    items = impact.get("items") or []
    if not items:
        reason = impact.get("error")
        return [f"Not measured{': ' + md(reason, 300) if reason else ''}."]
    out = []
    for item in items:
        value, of, unit = item.get("value"), item.get("of"), item.get("unit") or ""
        if item.get("format") == "money":
            figure = f"**{md(unit)}\u00a0{float(value or 0):,.2f}**" if unit else f"**{float(value or 0):,.2f}**"
        elif item.get("format") == "share":
            figure = f"**{_share(value)}**"
        else:
            figure = f"**{_number(value)}**" + (
                f" of {_number(of)} ({float(value or 0) / of:.1%})" if isinstance(of, int) and of else ""
            )
        out.append(f"- {figure} {md(item.get('label', ''), 300)}")
    if impact.get("note"):
        out += ["", md(impact["note"], 400)]
    return out


_NOT_REACHED = {
    ClockMark.FIRST_BREACH: "no single prediction broke the policy (the signal is aggregate, or outside the window)",
    ClockMark.ACKNOWLEDGED: "nobody acknowledged",
    ClockMark.CONTAINED: "traffic was not moved off the model",
    ClockMark.MITIGATED: "no fixed model serves yet",
    ClockMark.RESOLVED: "not resolved",
}


def _clock(
    incident: Incident, policy: Policy, clock: Clock, status: IncidentStatus, evidence: dict[str, Any]
) -> list[str]:
    """Every mark of the incident clock with who set it, against the severity route's targets; the
    measured spans; whether the clock holds together."""
    view = clock_view(
        clock,
        status=str(status),
        opened=incident.opened_at,
        closed=incident.closed_at or clock.at(ClockMark.RESOLVED),
        route=route_for(policy.notify, incident.severity),
    )
    out = ["| milestone | time (UTC) | since opened | by | SOP target | met |", "|---|---|---|---|---|---|"]
    for row in clock_rows(view):
        met = {True: "yes", False: "**no**", None: ""}[row.met]
        if row.at is None:
            why = _NOT_REACHED.get(row.mark, "not recorded")
            if row.mark == ClockMark.CONTAINED and evidence.get(EvidenceKind.CONTAINMENT, {}).get("dry_run"):
                why = "dry run"
            out.append(f"| {md(row.milestone)} | — | | {why} | {md(row.target)} | {met} |")
            continue
        out.append(
            f"| {md(row.milestone)} | {_when(row.at)} | {human_duration(row.since_opened)} | {md(row.by or '—', 200)} "
            f"| {md(row.target)} | {met} |"
        )
    spans = clock.durations()
    out += [
        "",
        "Measured: "
        + ", ".join(
            f"{name.replace('_', ' ')} {human_duration(timedelta(seconds=v)) if (v := spans[name]) is not None else '—'}"
            for name in DURATIONS
        )
        + ".",
    ]
    problems = clock.problems()
    out.append("Clock order: " + ("monotonic." if not problems else "OUT OF ORDER: " + md("; ".join(problems), 600)))
    return out


def _oncall_section(notifications: list[Notification], evidence: dict[str, dict[str, Any]]) -> list[str]:
    """Who was told what, when it reached them, and the approval, if one was asked."""
    out: list[str] = []
    if approval := evidence.get(EvidenceKind.APPROVAL):
        out += [f"**Approval:** {md(approval.get('answer'))} — {md(approval.get('reason'), 300)}.", ""]
    if not notifications:
        return [*out, "No notifications were sent (dry run, or no targets in the policy's route)."]
    out += ["| event | target | type | status | enqueued → accepted |", "|---|---|---|---|---|"]
    for n in notifications:
        latency = f"{n.latency:.2f} s" if n.latency is not None else (n.error or "—")
        out.append(f"| {md(n.event)} | {md(n.target)} | {md(n.target_type)} | {md(n.status)} | {md(latency, 160)} |")
    return out


def _task_durations(events: list[TimelineEvent]) -> dict[str, float]:
    started: dict[str, Any] = {}
    out: dict[str, float] = {}
    for e in events:
        task = (e.data or {}).get("task_id")
        if not task:
            continue
        if e.kind == "task_started":
            started[task] = e.at
        elif e.kind in {"task_succeeded", "task_failed"} and task in started:
            out[task] = (e.at - started[task]).total_seconds()
    return out


def _figures_cells(figures: dict[str, Any], policy: Policy) -> str:
    cells = []
    for key, _name, kind in reported_figures(policy):
        value = figures.get(key)
        cells.append(_share(value) if kind == "share" else _number(value))
    return " | ".join(cells)


def _figures_sentence(figures: dict[str, Any], policy: Policy) -> str:
    parts = []
    for key, name, kind in reported_figures(policy):
        value = figures.get(key)
        parts.append(f"{name} {_share(value) if kind == 'share' else _number(value)}")
    return ", ".join(parts)


def _evidence_section(ev: dict[str, dict[str, Any]], policy: Policy, images: dict[str, ChartRef]) -> list[str]:
    out: list[str] = []
    if drift := ev.get(EvidenceKind.DRIFT):
        out += [
            f"**Drift** (share of inputs drifted {_share(drift.get('drift_share', 0))}, "
            f"dataset drift: {'yes' if drift.get('dataset_drift') else 'no'}):",
            "",
        ]
        out += _chart(images, "drift")
        out += ["| column | method | score | threshold | drifted |", "|---|---|---|---|---|"]
        out += [
            f"| {md(c.get('column'), 80)} | {md(c.get('method'), 60)} | {_number(c.get('score'))} | "
            f"{_number(c.get('threshold'))} | {'yes' if c.get('drifted') else 'no'} |"
            for c in drift.get("columns", [])
        ]
        if artifacts := drift.get("artifacts"):
            out += ["", "Reports (in the MLflow run): " + ", ".join(md_code(a) for a in artifacts)]
        out.append("")
    if contract := ev.get(EvidenceKind.CONTRACT):
        failures = contract.get("failures", [])
        verdict = "passed" if contract.get("passed") else f"failed {len(failures)} expectation(s)"
        out.append(
            f"**Contract** {md_code(contract.get('suite'))} on {_number(contract.get('evaluated_rows'))} rows: {verdict}."
        )
        out += [
            f"- {md_code(f.get('column'))} {md(f.get('expectation'))}: "
            f"{float(f.get('unexpected_percent') or 0):.1f}% unexpected"
            for f in failures
        ]
        out.append("")
    if lineage := ev.get(EvidenceKind.LINEAGE):
        out.append(
            f"**Lineage:** {_number(lineage.get('rows'))} predictions, "
            f"{_number(lineage.get('unknown_rows'))} from sources the contract does not allow."
        )
        out += [
            f"- {md(g.get('upstream_source'))} / {md(g.get('feature_pipeline_version'))} / model "
            f"v{md(g.get('model_version'))}: {_number(g.get('rows'))} rows, "
            f"{_time_text(g.get('first_seen'))} .. {_time_text(g.get('last_seen'))}"
            for g in lineage.get("groups", [])
        ]
        out.append("")
    if golden := ev.get(EvidenceKind.GOLDEN):
        f = golden.get("figures", {})
        metric = str(golden.get("metric", "mae"))
        limit = golden.get("limit", golden.get("limit_mae"))
        out.append(
            f"**Golden dataset** ({_number(golden.get('golden_rows'))} rows): champion v{md(golden.get('version'))} "
            f"{METRIC_LABELS.get(metric, md(metric))} {_number(f.get(metric))} vs baseline "
            f"{_number(golden.get('baseline', {}).get(metric))} (limit {_number(limit)}); "
            f"regressed: {'yes' if golden.get('regressed') else 'no'}."
        )
        out.append("")
    if outputs := ev.get(EvidenceKind.OUTPUTS):
        names = outputs.get("names", {})
        if names:
            out.append(
                "**Outputs and confidence:** "
                + "; ".join(f"{md(moment)} = {md(what, 120)}" for moment, what in names.items())
                + "."
            )
            out.append("")
        out += _chart(images, "outputs")
        out += _chart(images, "confidence")
    out += _fairness_lines(ev, images)
    out += _feedback_lines(ev)
    if contain := ev.get(EvidenceKind.CONTAINMENT):
        fb = contain.get("fallback_on_recent")
        extra = f" On recent labelled traffic the fallback scores {_figures_sentence(fb, policy)}." if fb else ""
        gw = contain.get("gateway_breaker")
        if gw and gw.get("state") != "closed":
            extra += (
                f" The serving gateway's breaker was already {md(gw['state'])} on v{md(gw.get('version'))}: "
                f"{md(gw.get('reason'), 300)}."
            )
        out += [f"**Containment:** route `{md(contain.get('route'))}` — {md(contain.get('description'))}.{extra}", ""]
    out += _chart(images, "serving")
    if cand := ev.get(EvidenceKind.CANDIDATE):
        out += [
            f"**Remediation:** {md(cand.get('remediation'))}: {md(cand.get('detail'), 600)} "
            f"(candidate v{md(cand.get('version'))}).",
            "",
        ]
    if gate := ev.get(EvidenceKind.GATE):
        out += [f"**Promotion gate:** {'passed' if gate.get('passed') else 'refused'}.", ""]
        out += ["| check | candidate | limit | passed |", "|---|---|---|---|"]
        out += [
            f"| {md(c.get('name'))} | {_number(c.get('candidate'))} | {_number(c.get('limit'))} | "
            f"{'yes' if c.get('passed') else 'NO'} |"
            for c in gate.get("checks", [])
        ]
        if isinstance(gate.get("champion"), dict) and "golden" in gate["champion"]:
            header = " | ".join(name for _key, name, _kind in reported_figures(policy))
            out += ["", f"| figures | {header} |", "|---" * (1 + len(reported_figures(policy))) + "|"]
            for who in ("champion", "candidate"):
                for where in ("golden", "recent"):
                    f = gate.get(who, {}).get(where, {})
                    out.append(f"| {who} on {where} ({_number(f.get('rows'))} rows) | {_figures_cells(f, policy)} |")
        if gate.get("recent_rows"):
            out += ["", f"Recent figures on {md(gate['recent_rows'])}."]
        out.append("")
    out += _llm_evidence(ev)
    return out or ["No evidence was collected."]


def _llm_evidence(ev: dict[str, dict[str, Any]]) -> list[str]:
    """An LLM model's evidence: golden Q&A figures, guardrail hits, the fallback and the gate's Q&A figures."""
    out: list[str] = []
    if qa := ev.get(EvidenceKind.GOLDEN_QA):
        f, log = qa.get("figures", {}), qa.get("log", {})
        out += [
            f"**Golden Q&A** ({_number(qa.get('golden_rows'))} questions): champion v{md(qa.get('version'))} "
            f"({md(qa.get('prompt'))}) made unauthorised promises on {_share(f.get('unauthorised_promise_rate', 0))}, "
            f"missed expected content on {_share(f.get('hallucination_rate', 0))}, answered "
            f"{_share(f.get('policy_accuracy', 0))} of policy questions correctly; "
            f"failed: {'yes' if qa.get('failed') else 'no'}.",
        ]
        if log:
            by_rule = ", ".join(f"{md_code(rule)} {_number(n)}" for rule, n in (log.get("by_rule") or {}).items())
            by_version = ", ".join(f"v{md(v)} {_number(n)}" for v, n in (log.get("by_version") or {}).items())
            out.append(
                f"Guardrail hits in the log: {_number(log.get('guardrail_hits'))} of {_number(log.get('rows'))} "
                f"answers; by rule: {by_rule or 'none'}; by version: {by_version or 'none'}."
            )
        out += [f"- {md(b, 300)}" for b in qa.get("breaches", [])]
        out += [
            f"- asked “{md(x.get('question'), 200)}”, answered “{md(x.get('answer'), 300)}”"
            for x in qa.get("failures", [])[:5]
        ]
        out.append("")
    fb = ev.get(EvidenceKind.CONTAINMENT, {}).get("fallback_on_golden_qa")
    if fb:
        out += [
            f"The fallback on the golden Q&A set: unauthorised promises {_share(fb.get('unauthorised_promise_rate'))}, "
            f"policy questions correct {_share(fb.get('policy_accuracy'))}.",
            "",
        ]
    if gate_qa := ev.get(EvidenceKind.GATE, {}).get("qa"):
        out += [
            "| golden Q&A | unauthorised promises | missing expected content | policy questions correct | guardrail blocks |",
            "|---|---|---|---|---|",
        ]
        for who in ("champion", "candidate"):
            f = gate_qa.get(who, {})
            out.append(
                f"| {who} ({_number(f.get('rows'))} questions) | {_share(f.get('unauthorised_promise_rate'))} | "
                f"{_share(f.get('hallucination_rate'))} | {_share(f.get('policy_accuracy'))} | "
                f"{_share(f.get('guardrail_block_rate'))} |"
            )
        out.append("")
    return out


def _fairness_lines(ev: dict[str, dict[str, Any]], images: dict[str, ChartRef]) -> list[str]:
    """Per-group figures before (the decisions users got) and after (the gate's candidate)."""
    fairness = ev.get(EvidenceKind.FAIRNESS, {})
    if fairness.get("breached") is None:
        return []
    out = [
        f"**Fairness** ({md_code(fairness.get('attribute'))}, {_number(fairness.get('rows'))} labelled rows): "
        f"{md(fairness.get('summary'), 400)}.",
        "",
    ]
    out += _chart(images, "fairness")
    after = ev.get(EvidenceKind.GATE, {}).get("fairness", {})
    rows = [("before: decisions served", fairness)]
    if after.get("champion"):
        rows.append(("champion re-scored", after["champion"]))
    if after.get("candidate"):
        rows.append(("after: candidate", after["candidate"]))
    if fairness.get("selection_rate_ratio") is not None:
        out += ["| figures | selection-rate ratio | equalized-odds difference | worst group |", "|---|---|---|---|"]
        out += [
            f"| {who} | {_number(f.get('selection_rate_ratio'))} | {_number(f.get('equalized_odds_difference'))} | "
            f"{md(f.get('worst'))} |"
            for who, f in rows
        ]
        out += ["", "| group | selection rate before | after | TPR before | after | FPR before | after |"]
        out.append("|---|---|---|---|---|---|---|")
        later = after.get("candidate", {}).get("groups", {})
        for group, f in fairness.get("groups", {}).items():
            g = later.get(group, {})
            out.append(
                f"| {md(group, 60)} | {_number(f.get('selection_rate'))} | {_number(g.get('selection_rate', '—'))} | "
                f"{_number(f.get('true_positive_rate'))} | {_number(g.get('true_positive_rate', '—'))} | "
                f"{_number(f.get('false_positive_rate'))} | {_number(g.get('false_positive_rate', '—'))} |"
            )
    out.append("")
    return out


def _feedback_lines(ev: dict[str, dict[str, Any]]) -> list[str]:
    """The feedback loop: concentration, and which actors' events the retrain excluded."""
    feedback = ev.get(EvidenceKind.FEEDBACK, {})
    if not feedback.get("events_total"):
        return []
    out = [f"**Feedback** ({_number(feedback.get('events_total'))} events): {md(feedback.get('summary'), 400)}."]
    if feedback.get("excluded_events"):
        actors = ", ".join(
            f"{md_code(a)} ({_number(n)} events)" for a, n in (feedback.get("excluded_actors") or {}).items()
        )
        out.append(
            f"Poisoned slice excluded from every later read and from the retrain: "
            f"{feedback['excluded_events']} events from {actors}."
        )
    out.append("")
    return out


def _detection_section(
    incident: Incident, policy: Policy, ev: dict[str, dict[str, Any]], triage: dict[str, Any]
) -> list[str]:
    out = []
    signals = triage.get("signals", {})
    if signals:
        out.append(
            "Saw: "
            + ", ".join(f"{md(k)} {_share(v)}" for k, v in signals.items())
            + f" over {_number(triage.get('rows'))} predictions in the last {policy.detection.window_hours:g} h."
        )
    if rule := triage.get("matched_rule"):
        hits = ", ".join(f"{md(k)} {_share(v)}" for k, v in (rule.get("hits") or {}).items())
        out.append(f"Severity rule matched: {md(rule.get('severity'))} on {hits or 'no signal'}.")
    if segments := triage.get("segments"):
        from firebreak.investigation.segments import describe

        out.append(f"Who was hit: {md(describe(segments), 600)}.")
    if contained := ev.get(EvidenceKind.CONTAINMENT, {}).get("segment"):
        out.append(
            f"Contained: only the segment {md(contained.get('description'), 300)}; the rest stayed on the champion."
        )
    if first := triage.get("first_breach_at"):
        opened, breach = utc(incident.opened_at), utc(str(first))
        lag = (opened - breach).total_seconds() / 3600 if opened and breach else 0.0
        out.append(
            f"Missed: the first prediction under the confidence floor or below the sanity bound was logged at "
            f"{_time_text(first)} UTC, {lag:.1f} h before the incident opened."
        )
    coverage = ev.get(EvidenceKind.GOLDEN, {}).get("coverage", {})
    blind = {k: v for k, v in coverage.items() if isinstance(v, int | float) and v > 0.05}
    if blind:
        out.append(
            "Missed: the golden dataset does not cover recent traffic: "
            + ", ".join(f"{v:.0%} of {md_code(k)} values fall outside it" for k, v in blind.items())
            + " — golden checks could not have caught this."
        )
    return out or ["No detection data was recorded."]


def _business_days(start: datetime, days: int) -> datetime:
    at, left = start, days
    while left:
        at += timedelta(days=1)
        if at.weekday() < 5:
            left -= 1
    return at


def _action_items(
    incident: Incident,
    policy: Policy,
    ev: dict[str, dict[str, Any]],
    triage: dict[str, Any],
    status: IncidentStatus,
    why: str,
    now: datetime | None,
) -> list[str]:
    """Each proposal with an owner and a due date (by severity, from the close)."""
    start = utc(incident.closed_at) or now or datetime.now(UTC)
    due = _business_days(start, ACTION_DUE_BUSINESS_DAYS.get(str(incident.severity), 20))
    owner = policy.owner
    items: list[tuple[str, str, datetime]] = []
    if status == IncidentStatus.CONTAINED_NEEDS_HUMAN:
        items.append(
            (
                f"Take over the incident: traffic is still on the fallback ({md(why, 300)}).",
                owner,
                _business_days(start, 1),
            )
        )
    for signal, hour in triage.get("first_hour_over", {}).items():
        threshold = next((r.when[s] for r in policy.severity.rules for s in r.when if str(s) == signal), None)
        items.append(
            (
                f"Evaluate `{md(signal)} >= {threshold:.0%}` hourly, not only over the "
                f"{policy.detection.window_hours:g} h triage window: on this incident's log an hourly check would "
                f"have fired for the hour starting {_time_text(hour)} UTC."
                if threshold is not None
                else f"Review `{md(signal)}`: it crossed its threshold in the hour starting {_time_text(hour)} UTC.",
                owner,
                due,
            )
        )
    drift = ev.get(EvidenceKind.DRIFT, {})
    top = [c.get("column") for c in drift.get("columns", []) if c.get("drifted")][:3]
    if drift.get("dataset_drift") and top:
        items.append(
            (
                f"Add a scheduled drift audit on {', '.join(md_code(c) for c in top)}: they moved before outputs broke.",
                owner,
                due,
            )
        )
    coverage = ev.get(EvidenceKind.GOLDEN, {}).get("coverage", {})
    if any(isinstance(v, int | float) and v > 0.05 for v in coverage.values()):
        items.append(
            (
                "Extend the golden dataset with labelled cases from the uncovered range (see above), and record a new baseline.",
                owner,
                due,
            )
        )
    gate = ev.get(EvidenceKind.GATE, {})
    if gate and gate.get("passed") is False:
        items.append(
            ("The candidate did not pass the gate: review the recipe or the gate's limits before retrying.", owner, due)
        )
    opened = ev.get(EvidenceKind.OPENING, {})
    if opened.get("request", {}).get("severity") not in (None, "auto") and triage.get("matched_rule"):
        items.append(
            (
                f"Severity was set by hand; the policy's matrix said {md(triage['matched_rule'].get('severity'))}: "
                "confirm which was right and adjust the matrix if needed.",
                INCIDENT_COMMANDER,
                due,
            )
        )
    if not any(owner_ == owner for _, owner_, _ in items):
        items.append(("None for the model: thresholds behaved as intended. Confirm with the model owner.", owner, due))
    items.append(
        (
            "Review this post-mortem with the model owner and sign it off.",
            INCIDENT_COMMANDER,
            _business_days(start, SIGN_OFF_BUSINESS_DAYS),
        )
    )
    out = ["| # | action | owner | due |", "|---|---|---|---|"]
    out += [f"| {n} | {text} | {md(who)} | {when:%Y-%m-%d} |" for n, (text, who, when) in enumerate(items, 1)]
    return out
