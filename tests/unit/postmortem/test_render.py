"""The post-mortem as an incident commander reads it: attacker text inert, figures that fit the
model, impact, the clock, action items with owners and due dates, links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from firebreak.containment.segment import MISSING, Condition, Segment
from firebreak.containment.state import RoutingState
from firebreak.incidents.clock import Clock, ClockEntry
from firebreak.incidents.enums import ClockMark, IncidentStatus
from firebreak.incidents.store import Incident, TimelineEvent
from firebreak.policy.schema import load_policy
from firebreak.postmortem.html import to_html
from firebreak.postmortem.render import ChartRef, Links, render_postmortem

POLICIES = Path(__file__).resolve().parents[3] / "include" / "policies"
OPENED = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
SECTIONS = [
    "What was reported",
    "Impact",
    "Clock against the SOP's targets",
    "Timeline",
    "On-call",
    "Evidence",
    "Alias moves",
    "Detection: what it saw and what it missed",
    "Action items",
]
HOSTILE = {
    "newlines": "prices low\n| forged | row |\n\nsecond paragraph",
    "headings": "# Breaking\n## Not a section\n===",
    "script": "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "ansi": "\x1b[31mred alert\x1b[0m \x1b]8;;http://evil.example\x07link\x1b]8;;\x07",
    "nul": "before\x00after\x07 bell",
}
MD = MarkdownIt("commonmark", {"html": True}).enable("table")


def incident(description: str, model: str = "pricing", **changes: Any) -> Incident:
    values: dict[str, Any] = {
        "id": f"{model}-0123456789ab",
        "model": model,
        "status": IncidentStatus.RESOLVED,
        "severity": "SEV1",
        "failure_class": "drift",
        "description": description,
        "dedup_key": "source:alert-1",
        "dag_run_id": f"{model}-0123456789ab",
        "dry_run": False,
        "mlflow_run_id": "abc",
        "request": {"severity": "auto"},
        "outcome": "resolved: champion v1 -> v2; traffic back on champion",
        "opened_at": OPENED,
        "closed_at": OPENED + timedelta(minutes=9),
    }
    values.update(changes)
    return Incident(**values)


def events(description: str) -> list[TimelineEvent]:
    at = OPENED
    return [
        TimelineEvent(at, "opening", f"incident opened for pricing (champion v1): {description}", None),
        TimelineEvent(at + timedelta(seconds=5), "task_started", "triage started", {"task_id": "triage"}),
        TimelineEvent(at + timedelta(seconds=9), "triage", "triaged SEV1 (drift) on 1500 predictions", None),
        TimelineEvent(at + timedelta(minutes=2), "containment", "traffic of pricing moved champion -> heuristic", None),
        TimelineEvent(
            at + timedelta(minutes=3), "acknowledged", f"acknowledged by alice: {description}", {"by": "alice"}
        ),
        TimelineEvent(at + timedelta(minutes=8), "task_failed", f"retrain failed: {description}", {"task_id": "x"}),
    ]


EVIDENCE: dict[str, dict[str, Any]] = {
    "triage": {
        "rows": 1500,
        "signals": {"sanity_violation_rate": 0.9527},
        "matched_rule": {"severity": "SEV1", "hits": {"sanity_violation_rate": 0.9527}},
        "first_breach_at": "2026-11-29 10:54:42.536343+00:00",
        "first_hour_over": {"sanity_violation_rate": "2026-11-29 10:00:00+00:00"},
    },
    "impact": {
        "items": [
            {"key": "answered", "label": "price requests answered", "value": 1500, "format": "count"},
            {"key": "below_floor", "label": "price requests below cost", "value": 1429, "of": 1500, "format": "count"},
            {"key": "money_at_stake", "label": "money at stake", "value": 12818.734, "format": "money", "unit": "USD"},
        ]
    },
    "containment": {
        "route": "heuristic",
        "description": "last-known-good pricing",
        "fallback_on_recent": {"mae": 2.6, "mape": 0.043, "sanity_violation_rate": 0.0, "low_confidence_rate": 0.0},
    },
    "gate": {
        "passed": True,
        "checks": [{"name": "recent MAE improves on champion", "passed": True, "candidate": 1.0058, "limit": 11.3889}],
        "champion": {
            w: {"rows": 400, "mae": 1.5, "mape": 0.02, "sanity_violation_rate": 0.0, "low_confidence_rate": 0.0}
            for w in ("golden", "recent")
        },
        "candidate": {
            w: {"rows": 400, "mae": 1.0, "mape": 0.01, "sanity_violation_rate": 0.0, "low_confidence_rate": 0.0}
            for w in ("golden", "recent")
        },
    },
}


def clock() -> Clock:
    """The marks the stages and the on-call loop would have set for :func:`events`."""
    marks = {
        ClockMark.DETECTED: (0, "opened by hand"),
        ClockMark.OPENED: (0, "incident_response"),
        ClockMark.CONTAINED: (120, "contain"),
        ClockMark.ACKNOWLEDGED: (180, "alice"),
        ClockMark.RESOLVED: (540, "postmortem"),
    }
    return Clock({m: ClockEntry(m, OPENED + timedelta(seconds=s), by) for m, (s, by) in marks.items()})


def render(description: str, model: str = "pricing", evidence: dict[str, dict[str, Any]] | None = None) -> str:
    return render_postmortem(
        incident(description, model),
        load_policy(model, POLICIES),
        evidence if evidence is not None else EVIDENCE,
        events(description),
        IncidentStatus.RESOLVED,
        f"resolved: {description}",
        [],
        RoutingState(model, "champion", 2, None, "restored", OPENED),
        links=Links(
            airflow_run="http://airflow.example/dags/incident_response/runs/pricing-0123456789ab",
            mlflow_run="http://mlflow.example/#/experiments/2/runs/abc",
            html="pricing-0123456789ab.html",
        ),
        charts=[ChartRef("drift", "Drift by column", "pricing-0123456789ab/drift.png")],
        now=OPENED + timedelta(minutes=10),
        clock=clock(),
    )


def table_after(tokens: list[Any], heading: str) -> list[list[str]]:
    """Rows (cell texts) of the first table after the level-2 heading ``heading``."""
    start = next(i for i, t in enumerate(tokens) if t.type == "inline" and t.content == heading)
    rows: list[list[str]] = []
    for token in tokens[start:]:
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and rows and tokens[tokens.index(token) - 1].type in {"td_open", "th_open"}:
            rows[-1].append(token.content)
        elif token.type == "table_close":
            return rows
    return rows


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_alert_text_stays_inert(case: str) -> None:
    """The description lands in the header, the fenced report, the timeline and the status line:
    none of it adds a heading, breaks the timeline table, or carries markup, escapes or NULs."""
    text = render(HOSTILE[case])
    tokens = MD.parse(text)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h2"]
    assert headings == SECTIONS
    assert [t.tag for t in tokens if t.type == "heading_open" and t.tag == "h1"] == ["h1"]
    assert not [t for t in tokens if t.type == "html_block"]
    assert not [c for t in tokens for c in (t.children or []) if c.type == "html_inline"]
    timeline = table_after(tokens, "Timeline")
    assert len(timeline) == 1 + 5  # the header and every line but the task bookkeeping
    assert all(len(row) == 2 for row in timeline)
    assert "\x00" not in text and "\x1b" not in text and "\x07" not in text
    page = to_html(text, "Post-mortem", {}).lower()
    assert "<script" not in page and "<img src=x" not in page and "onerror=" not in page.replace("onerror=alert", "")


def test_the_report_is_kept_verbatim_in_a_fence() -> None:
    text = render(HOSTILE["script"] + "\n```\n# escape attempt")
    fences = [t for t in MD.parse(text) if t.type == "fence"]
    assert len(fences) == 1 and "# escape attempt" in fences[0].content and "<script>" in fences[0].content
    assert "&lt;script&gt;alert(1)" in to_html(text, "x", {})


def test_impact_clock_actions_and_links_for_people() -> None:
    text = render("prices below cost since the season ended")
    assert "**1,429** of 1,500 (95.3%) price requests below cost" in text
    assert "**USD\u00a012,818.73** money at stake" in text
    table = table_after(MD.parse(text), "Clock against the SOP's targets")
    assert table[0] == ["milestone", "time (UTC)", "since opened", "by", "SOP target", "met"]
    assert table[3][:3] == ["incident opened", "2026-11-30 10:00:00", "0 s"]
    assert table[4] == [
        "acknowledged",
        "2026-11-30 10:03:00",
        "3 min 00 s",
        "alice",
        "within 5 min of opening",
        "yes",
    ]
    assert table[5] == [
        "contained (traffic off the model)",
        "2026-11-30 10:02:00",
        "2 min 00 s",
        "contain",
        "within 15 min of opening",
        "yes",
    ]
    assert "time to contain 2 min 00 s, time to resolve 9 min 00 s" in text
    assert "Clock order: monotonic." in text
    actions = table_after(MD.parse(text), "Action items")
    assert actions[0] == ["#", "action", "owner", "due"]
    assert {row[2] for row in actions[1:]} == {"pricing-data-science", "incident commander (on-call)"}
    assert all(row[3] >= "2026-12-01" for row in actions[1:])  # due dates after the close, business days
    assert "[Airflow run](http://airflow.example/dags/incident_response/runs/pricing-0123456789ab)" in text
    assert "[MLflow run](http://mlflow.example/#/experiments/2/runs/abc)" in text
    assert "![Drift by column](pricing-0123456789ab/drift.png)" not in text  # no drift evidence: no drift chart
    assert ".536343" not in text  # timestamps to the second


def test_a_classifier_gets_decision_figures_not_price_figures() -> None:
    """The loan model decides 0/1 and is gated on accuracy: decision figures, never MAPE or a sanity floor."""
    declined = {"key": "wrongly_declined", "label": "applicants wrongly declined", "value": 212, "of": 900}
    evidence = {
        **EVIDENCE,
        "containment": {**EVIDENCE["containment"], "description": "the manual scorecard"},
        "impact": {"items": [{**declined, "format": "count"}]},
    }
    text = render("approvals fell for 18-25", model="loan_approval", evidence=evidence)
    gate_figures = [line for line in text.splitlines() if line.startswith("| figures |")]
    assert gate_figures == ["| figures | accuracy | AUC | F1 | log-loss | low confidence | mean confidence |"]
    containment = next(line for line in text.splitlines() if line.startswith("**Containment:**"))
    assert "accuracy" in containment and "MAE" not in containment
    assert "MAPE" not in text and "below sanity bound" not in text and "below cost" not in text
    assert "**212** of 900 (23.6%) applicants wrongly declined" in text
    assert "MAPE" in render("prices below cost")


def test_the_html_version_carries_its_charts_inline_and_runs_nothing() -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    text = render("x", evidence={**EVIDENCE, "drift": {"columns": [], "drift_share": 0.5}})
    assert "![Drift by column](pricing-0123456789ab/drift.png)" in text
    page = to_html(text, "Post-mortem", {"pricing-0123456789ab/drift.png": png})
    assert 'src="data:image/png;base64,' in page
    assert "default-src 'none'" in page and "<script" not in page.lower()


def test_a_segment_reads_as_its_data_in_the_post_mortem() -> None:
    """Segment descriptions are plain text; the post-mortem escapes them once, so a reader sees
    ``height_m=<missing>`` (not ``height\\_m`` or ``&lt;missing&gt;``) and a hostile value stays inert."""
    segment = Segment((Condition("height_m", values=(MISSING,)), Condition("region", values=("<img src=x>|",))))
    found = {
        "scope": "segment",
        "signal": "error",
        "segments": [{**segment.to_dict(), "rows": 120, "share": 0.04, "lift": 6.2}],
    }
    evidence = {
        **EVIDENCE,
        "triage": {**EVIDENCE.get("triage", {}), "segments": found},
        "containment": {**EVIDENCE.get("containment", {}), "segment": segment.to_dict()},
    }
    page = to_html(render("a segment fails", evidence=evidence), "Post-mortem", {})
    shown = "height_m=&lt;missing&gt; and region=&lt;img src=x&gt;|"
    assert f"Who was hit: segment {shown}: 120 rows, 4.0% of traffic, lift 6.2 (error)." in page
    assert f"Contained: only the segment {shown}; the rest stayed on the champion." in page
    assert "<img src=x" not in page
