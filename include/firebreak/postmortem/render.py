"""The post-mortem: what happened, the evidence, what detection saw and missed, what to change."""

from __future__ import annotations

from typing import Any

from firebreak.containment.state import RoutingState
from firebreak.incidents.clock import DURATIONS, Clock
from firebreak.incidents.enums import ClockMark, IncidentStatus
from firebreak.incidents.store import Incident, TimelineEvent
from firebreak.oncall.outbox import Notification
from firebreak.policy.schema import METRIC_LABELS, Policy
from firebreak.registry.ledger import LedgerEntry

# Task-level bookkeeping lines are summarised in the timeline, not repeated one by one; so are
# the notifications sent (their own section lists them).
_QUIET = {"task_started", "task_succeeded", "notified"}


def render_postmortem(
    incident: Incident,
    policy: Policy,
    evidence: dict[str, dict[str, Any]],
    events: list[TimelineEvent],
    status: IncidentStatus,
    why: str,
    ledger: list[LedgerEntry],
    routing: RoutingState | None,
    clock: Clock | None = None,
    notifications: list[Notification] | None = None,
) -> str:
    """Markdown post-mortem; written whatever happened, so every section copes with missing evidence."""
    triage = evidence.get("triage", {})
    diagnosis = evidence.get("diagnosis", {})
    lines = [
        f"# Post-mortem {incident.id}",
        "",
        f"- **Model:** `{incident.model}` (owner: {policy.owner})",
        f"- **Status:** `{status}` — {why}",
        f"- **Severity:** {incident.severity or 'not triaged'}",
        f"- **Failure class:** {diagnosis.get('failure_class') or incident.failure_class or 'unknown'}",
        f"- **Root cause:** {diagnosis.get('root_cause', 'not diagnosed')}",
        f"- **Opened:** {incident.opened_at:%Y-%m-%d %H:%M:%S} UTC; request: {incident.description or '—'}",
        f"- **Routing now:** {routing.route if routing else 'unknown'}",
        "",
        "## Timeline",
        "",
        "| time (UTC) | what |",
        "|---|---|",
    ]
    durations = _task_durations(events)
    for event in events:
        if event.kind in _QUIET:
            continue
        lines.append(f"| {event.at:%H:%M:%S} | {event.message.replace('|', '/')} |")
    if durations:
        lines += ["", "Task durations: " + ", ".join(f"`{t}` {s:.1f}s" for t, s in durations.items())]
    lines += ["", "## Incident clock", ""]
    lines += _clock_section(clock or Clock({}), status, evidence)
    lines += ["", "## On-call", ""]
    lines += _oncall_section(notifications or [], evidence)
    lines += ["", "## Evidence", ""]
    lines += _evidence_section(evidence)
    lines += ["", "## Alias moves", ""]
    moves = [e for e in ledger if e.incident_id == incident.id]
    if moves:
        lines += ["| alias | from | to | status | why | approved by |", "|---|---|---|---|---|---|"]
        lines += [
            f"| `{e.alias}` | {e.old_version or '—'} | {e.new_version or '—'} | {e.status} | {e.reason} "
            f"| {e.approved_by or '—'} |"
            for e in moves
        ]
    else:
        lines.append("No registry alias moved.")
    lines += ["", "## Detection: what it saw and what it missed", ""]
    lines += _detection_section(incident, policy, evidence, triage)
    lines += ["", "## Proposed changes", ""]
    lines += _proposals(policy, evidence, triage)
    return "\n".join(lines) + "\n"


_NOT_REACHED = {
    ClockMark.FIRST_BREACH: "no single prediction broke the policy (the signal is aggregate, or outside the window)",
    ClockMark.ACKNOWLEDGED: "nobody acknowledged",
    ClockMark.CONTAINED: "traffic was not moved off the model",
    ClockMark.MITIGATED: "no fixed model serves yet",
    ClockMark.RESOLVED: "not resolved",
}


def _clock_section(clock: Clock, status: IncidentStatus, evidence: dict[str, dict[str, Any]]) -> list[str]:
    """Every mark with its time and who set it, the measured spans, and whether the clock holds together."""
    out = ["| mark | time (UTC) | by |", "|---|---|---|"]
    for mark in ClockMark:
        entry = clock.marks.get(mark)
        if entry is not None:
            out.append(f"| {mark} | {entry.at:%Y-%m-%d %H:%M:%S} | {_cell(entry.by or '—')} |")
        else:
            why = _NOT_REACHED.get(mark, "not recorded")
            if mark == ClockMark.CONTAINED and evidence.get("containment", {}).get("dry_run"):
                why = "dry run"
            out.append(f"| {mark} | — | {why} |")
    spans = clock.durations()
    out += ["", "Measured: " + ", ".join(f"{name.replace('_', ' ')} {_span(spans[name])}" for name in DURATIONS)]
    problems = clock.problems()
    out.append("Clock order: " + ("monotonic." if not problems else "OUT OF ORDER: " + "; ".join(problems)))
    return out


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _oncall_section(notifications: list[Notification], evidence: dict[str, dict[str, Any]]) -> list[str]:
    """Who was told what, when it reached them, and the approval, if one was asked."""
    out: list[str] = []
    if approval := evidence.get("approval"):
        out += [f"**Approval:** {approval.get('answer')} — {approval.get('reason')}.", ""]
    if not notifications:
        return [*out, "No notifications were sent (dry run, or no targets in the policy's route)."]
    out += ["| event | target | type | status | enqueued → accepted |", "|---|---|---|---|---|"]
    for n in notifications:
        latency = f"{n.latency:.2f} s" if n.latency is not None else (n.error or "—")
        out.append(f"| {n.event} | {n.target} | {n.target_type} | {n.status} | {_cell(latency[:160])} |")
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


def _evidence_section(ev: dict[str, dict[str, Any]]) -> list[str]:
    out: list[str] = []
    if drift := ev.get("drift"):
        out += [
            f"**Drift** (share {drift.get('drift_share', 0):.0%}, dataset drift: {drift.get('dataset_drift')}):",
            "",
        ]
        out += ["| column | method | score | threshold | drifted |", "|---|---|---|---|---|"]
        out += [
            f"| {c['column']} | {c['method']} | {c['score']:.4g} | {c['threshold']:.4g} | {'yes' if c['drifted'] else 'no'} |"
            for c in drift.get("columns", [])
        ]
        out += ["", f"Reports: {', '.join(drift.get('artifacts', []))}", ""]
    if contract := ev.get("contract"):
        failures = contract.get("failures", [])
        verdict = "passed" if contract.get("passed") else f"failed {len(failures)} expectation(s)"
        out.append(f"**Contract** `{contract.get('suite')}` on {contract.get('evaluated_rows')} rows: {verdict}.")
        out += [f"- `{f['column']}` {f['expectation']}: {f['unexpected_percent']:.1f}% unexpected" for f in failures]
        out.append("")
    if lineage := ev.get("lineage"):
        out.append(
            f"**Lineage:** {lineage.get('rows')} predictions, {lineage.get('unknown_rows')} from unallowed sources."
        )
        out += [
            f"- {g.get('upstream_source')} / {g.get('feature_pipeline_version')} / model v{g.get('model_version')}: "
            f"{g.get('rows')} rows, {g.get('first_seen')} .. {g.get('last_seen')}"
            for g in lineage.get("groups", [])
        ]
        out.append("")
    if golden := ev.get("golden"):
        f = golden.get("figures", {})
        metric = str(golden.get("metric", "mae"))
        limit = golden.get("limit", golden.get("limit_mae"))
        out.append(
            f"**Golden dataset** ({golden.get('golden_rows')} rows): champion v{golden.get('version')} {METRIC_LABELS.get(metric, metric)} "
            f"{f.get(metric)} vs baseline {golden.get('baseline', {}).get(metric)} (limit {limit:.4g}); "
            f"regressed: {golden.get('regressed')}."
        )
        out.append("")
    out += _fairness_lines(ev)
    out += _feedback_lines(ev)
    if contain := ev.get("containment"):
        fb = contain.get("fallback_on_recent")
        extra = (
            f" On recent labelled traffic the fallback scores MAPE {fb['mape']:.1%}, {fb['sanity_violation_rate']:.1%} below cost."
            if fb
            else ""
        )
        gw = contain.get("gateway_breaker")
        if gw and gw.get("state") != "closed":
            extra += (
                f" The serving gateway's breaker was already {gw['state']} on v{gw.get('version')}: {gw.get('reason')}."
            )
        out += [f"**Containment:** route `{contain.get('route')}` — {contain.get('description')}.{extra}", ""]
    if cand := ev.get("candidate"):
        out += [
            f"**Remediation:** {cand.get('remediation')}: {cand.get('detail')} (candidate v{cand.get('version')}).",
            "",
        ]
    if gate := ev.get("gate"):
        out += [f"**Promotion gate:** {'passed' if gate.get('passed') else 'refused'}.", ""]
        out += ["| check | candidate | limit | passed |", "|---|---|---|---|"]
        out += [
            f"| {c['name']} | {c['candidate']} | {c['limit']} | {'yes' if c['passed'] else 'NO'} |"
            for c in gate.get("checks", [])
        ]
        if "champion" in gate:
            out += ["", "| figures | MAE | MAPE | below sanity bound | low confidence |", "|---|---|---|---|---|"]
            for who in ("champion", "candidate"):
                for where in ("golden", "recent"):
                    f = gate[who][where]
                    out.append(
                        f"| {who} on {where} ({f['rows']} rows) | {f['mae']} | {f['mape']:.1%} | "
                        f"{f['sanity_violation_rate']:.1%} | {f['low_confidence_rate']:.1%} |"
                    )
        out.append("")
    out += _llm_evidence(ev)
    return out or ["No evidence was collected."]


def _llm_evidence(ev: dict[str, dict[str, Any]]) -> list[str]:
    """An LLM model's evidence: golden Q&A figures, guardrail hits, the fallback and the gate's Q&A figures."""
    out: list[str] = []
    if qa := ev.get("golden_qa"):
        f, log = qa.get("figures", {}), qa.get("log", {})
        out += [
            f"**Golden Q&A** ({qa.get('golden_rows')} questions): champion v{qa.get('version')} ({qa.get('prompt')}) "
            f"made unauthorised promises on {f.get('unauthorised_promise_rate', 0):.1%}, missed expected content on "
            f"{f.get('hallucination_rate', 0):.1%}, answered {f.get('policy_accuracy', 0):.1%} of policy questions "
            f"correctly; failed: {qa.get('failed')}.",
            f"Guardrail hits in the log: {log.get('guardrail_hits')}/{log.get('rows')} answers, by rule {log.get('by_rule')}, "
            f"by version {log.get('by_version')}.",
        ]
        out += [f"- {b}" for b in qa.get("breaches", [])]
        out += [f'- asked "{x["question"]}", answered "{x["answer"]}"' for x in qa.get("failures", [])[:5]]
        out.append("")
    fb = ev.get("containment", {}).get("fallback_on_golden_qa")
    if fb:
        out += [
            f"The fallback on the golden Q&A set: unauthorised promises {fb['unauthorised_promise_rate']:.1%}, "
            f"policy questions correct {fb['policy_accuracy']:.1%}.",
            "",
        ]
    if gate_qa := ev.get("gate", {}).get("qa"):
        out += [
            "| golden Q&A | unauthorised promises | missing expected content | policy questions correct | guardrail blocks |",
            "|---|---|---|---|---|",
        ]
        for who in ("champion", "candidate"):
            f = gate_qa[who]
            out.append(
                f"| {who} ({f['rows']} questions) | {f['unauthorised_promise_rate']:.1%} | {f['hallucination_rate']:.1%} | "
                f"{f['policy_accuracy']:.1%} | {f['guardrail_block_rate']:.1%} |"
            )
        out.append("")
    return out


def _fairness_lines(ev: dict[str, dict[str, Any]]) -> list[str]:
    """Per-group figures before (the decisions users got) and after (the gate's candidate)."""
    fairness = ev.get("fairness", {})
    if fairness.get("breached") is None:
        return []
    out = [
        f"**Fairness** (`{fairness.get('attribute')}`, {fairness.get('rows')} labelled rows): {fairness.get('summary')}.",
        "",
    ]
    after = ev.get("gate", {}).get("fairness", {})
    rows = [("before: decisions served", fairness)]
    if after.get("champion"):
        rows.append(("champion re-scored", after["champion"]))
    if after.get("candidate"):
        rows.append(("after: candidate", after["candidate"]))
    if fairness.get("selection_rate_ratio") is not None:
        out += ["| figures | selection-rate ratio | equalized-odds difference | worst group |", "|---|---|---|---|"]
        out += [
            f"| {who} | {f.get('selection_rate_ratio')} | {f.get('equalized_odds_difference')} | {f.get('worst')} |"
            for who, f in rows
        ]
        out += ["", "| group | selection rate before | after | TPR before | after | FPR before | after |"]
        out.append("|---|---|---|---|---|---|---|")
        later = after.get("candidate", {}).get("groups", {})
        for group, f in fairness.get("groups", {}).items():
            g = later.get(group, {})
            out.append(
                f"| {group} | {f.get('selection_rate')} | {g.get('selection_rate', '—')} | "
                f"{f.get('true_positive_rate')} | {g.get('true_positive_rate', '—')} | "
                f"{f.get('false_positive_rate')} | {g.get('false_positive_rate', '—')} |"
            )
    out.append("")
    return out


def _feedback_lines(ev: dict[str, dict[str, Any]]) -> list[str]:
    """The feedback loop: concentration, and which actors' events the retrain excluded."""
    feedback = ev.get("feedback", {})
    if not feedback.get("events_total"):
        return []
    out = [f"**Feedback** ({feedback.get('events_total')} events): {feedback.get('summary')}."]
    if feedback.get("excluded_events"):
        actors = ", ".join(f"`{a}` ({n} events)" for a, n in feedback.get("excluded_actors", {}).items())
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
            + ", ".join(f"{k} {v:.1%}" for k, v in signals.items())
            + f" over {triage.get('rows')} predictions in the last {policy.detection.window_hours:g} h."
        )
    if rule := triage.get("matched_rule"):
        out.append(f"Severity rule matched: {rule['severity']} on {rule['hits']}.")
    if segments := triage.get("segments"):
        from firebreak.investigation.segments import describe

        out.append(f"Who was hit: {describe(segments)}.")
    if contained := ev.get("containment", {}).get("segment"):
        out.append(f"Contained: only the segment {contained['description']}; the rest stayed on the champion.")
    if first := triage.get("first_breach_at"):
        lag = (incident.opened_at.replace(tzinfo=None) - _naive(first)).total_seconds() / 3600
        out.append(
            f"Missed: the first prediction under the confidence floor or below the sanity bound was logged at {first}, "
            f"{lag:.1f} h before the incident opened."
        )
    coverage = ev.get("golden", {}).get("coverage", {})
    blind = {k: v for k, v in coverage.items() if v > 0.05}
    if blind:
        out.append(
            "Missed: the golden dataset does not cover recent traffic: "
            + ", ".join(f"{v:.0%} of `{k}` values fall outside it" for k, v in blind.items())
            + " — golden checks could not have caught this."
        )
    return out or ["No detection data was recorded."]


def _proposals(policy: Policy, ev: dict[str, dict[str, Any]], triage: dict[str, Any]) -> list[str]:
    out = []
    opened = ev.get("opening", {})
    for signal, hour in triage.get("first_hour_over", {}).items():
        threshold = next((r.when[s] for r in policy.severity.rules for s in r.when if str(s) == signal), None)
        out.append(
            f"- Evaluate `{signal} >= {threshold:.0%}` hourly, not only over the {policy.detection.window_hours:g} h "
            f"triage window: on this incident's log an hourly check would have fired for the hour starting {hour}."
            if threshold is not None
            else f"- `{signal}` crossed its threshold in the hour starting {hour}."
        )
    drift = ev.get("drift", {})
    top = [c["column"] for c in drift.get("columns", []) if c.get("drifted")][:3]
    if drift.get("dataset_drift") and top:
        out.append(
            f"- Add a scheduled drift audit on {', '.join(f'`{c}`' for c in top)}: they moved before outputs broke."
        )
    coverage = ev.get("golden", {}).get("coverage", {})
    if any(v > 0.05 for v in coverage.values()):
        out.append(
            "- Extend the golden dataset with labelled cases from the uncovered range (see above), and record a new baseline."
        )
    gate = ev.get("gate", {})
    if gate and gate.get("passed") is False:
        out.append(
            "- The candidate did not pass the gate: review the recipe or the gate's limits with the model owner before retrying."
        )
    if opened.get("request", {}).get("severity") not in (None, "auto") and triage.get("matched_rule"):
        out.append(f"- Severity was set by hand; the policy's matrix said {triage['matched_rule']['severity']}.")
    return out or ["- None: thresholds behaved as intended."]


def _naive(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text).replace(tzinfo=None)
