"""What each target receives: PagerDuty Events API v2 bodies, Slack messages, emails.

Plain data, no sending: :mod:`firebreak.oncall.airflow` hands these to Airflow notifiers.
Every string that came from outside (an alert's description, a model's output quoted in a
root cause) is hostile: control characters are removed, lengths bounded, and each is
escaped for where it lands (Slack's ``&<>``, HTML for mail). The routing key is never in a
payload: the notifier adds it from the Airflow connection.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from firebreak.incidents.enums import Severity

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")

# PagerDuty's Events API v2 limits (developer.pagerduty.com, "Send an Alert Event").
PD_SUMMARY_MAX = 1024
PD_DEDUP_MAX = 255
PD_SEVERITY = {Severity.SEV1: "critical", Severity.SEV2: "error", Severity.SEV3: "warning", Severity.SEV4: "info"}


class Event(StrEnum):
    """What happened to the incident, as the targets hear it."""

    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    UPDATE = "update"
    APPROVAL_NEEDED = "approval_needed"
    CHANGE = "change"  # a rollback or a promotion: a PagerDuty Change Event
    ESCALATED = "escalated"
    RESOLVED = "resolved"  # traffic is back on a fixed model: the page resolves
    CLOSED = "closed"  # the run ended: the close message with the post-mortem


def clean(text: object, limit: int = 500) -> str:
    """One line of inert text: control and bidi characters removed, whitespace folded, bounded."""
    folded = " ".join(_CONTROL.sub(" ", str(text)).split())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


def slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters (api.slack.com, "Escaping text")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Facts:
    """The incident as a message tells it (already read from the stores)."""

    incident_id: str
    model: str
    severity: str | None
    failure_class: str | None
    status: str
    description: str
    owner: str
    headline: str  # the event in one line, e.g. "traffic moved champion -> heuristic"
    links: dict[str, str] = field(default_factory=dict)  # text -> URL (Airflow run, post-mortem)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        sev = self.severity or "untriaged"
        return clean(f"[{sev}] {self.model}: {self.failure_class or 'model incident'} ({self.incident_id})", 200)


def pagerduty_alert(action: str, facts: Facts) -> dict[str, Any]:
    """An Events API v2 alert event (``trigger``, ``acknowledge``, ``resolve``) keyed by the incident id."""
    body: dict[str, Any] = {"event_action": action, "dedup_key": facts.incident_id[:PD_DEDUP_MAX]}
    if action == "trigger":
        body["payload"] = {
            "summary": clean(f"{facts.title}: {facts.headline}", PD_SUMMARY_MAX),
            "source": clean(f"firebreak/{facts.model}", 255),
            "severity": PD_SEVERITY.get(Severity(facts.severity), "critical")
            if facts.severity in set(Severity)
            else "critical",
            "component": clean(facts.model, 255),
            "group": "firebreak",
            "class": clean(facts.failure_class or "model incident", 255),
            "custom_details": {
                "incident": facts.incident_id,
                "owner": clean(facts.owner, 200),
                "description": clean(facts.description, 1000),
                **{k: clean(v, 500) for k, v in facts.details.items()},
            },
        }
        body["client"] = "Firebreak"
        if links := _links(facts):
            body["links"] = links
    return body


def pagerduty_change(facts: Facts) -> dict[str, Any]:
    """An Events API v2 Change Event (a rollback or a promotion: not a problem, context for responders)."""
    body: dict[str, Any] = {
        "payload": {
            "summary": clean(f"{facts.model}: {facts.headline}", PD_SUMMARY_MAX),
            "source": clean(f"firebreak/{facts.model}", 255),
            "custom_details": {
                "incident": facts.incident_id,
                **{k: clean(v, 500) for k, v in facts.details.items()},
            },
        }
    }
    if links := _links(facts):
        body["links"] = links
    return body


def _links(facts: Facts) -> list[dict[str, str]]:
    return [
        {"href": url, "text": clean(text, 100)} for text, url in facts.links.items() if url.startswith(("http", "file"))
    ]


_LEAD = {  # the event's words, and the emoji a Slack message leads with
    Event.OPENED: ("Incident opened", ":rotating_light:"),
    Event.ACKNOWLEDGED: ("Acknowledged", ":eyes:"),
    Event.UPDATE: ("Update", ":information_source:"),
    Event.APPROVAL_NEEDED: ("Approval needed", ":raised_hand:"),
    Event.CHANGE: ("Change", ":arrows_counterclockwise:"),
    Event.ESCALATED: ("Escalated", ":warning:"),
    Event.RESOLVED: ("Traffic restored", ":white_check_mark:"),
    Event.CLOSED: ("Closed", ":memo:"),
}


def slack_message(event: Event, facts: Facts) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (notifications, fallbacks) and ``blocks``."""
    words, emoji = _LEAD[event]
    lead = f"{emoji} {words}"
    title = slack_escape(facts.title)
    headline = slack_escape(clean(facts.headline, 1500))
    text = f"{lead}: {title} — {headline}"
    fields = [
        {"type": "mrkdwn", "text": f"*Status*\n{slack_escape(clean(facts.status, 60))}"},
        {"type": "mrkdwn", "text": f"*Owner*\n{slack_escape(clean(facts.owner, 100))}"},
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{lead}*: {title}\n{headline}"}, "fields": fields}
    ]
    if event == Event.OPENED and facts.description:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(clean(facts.description, 1000))}]}
        )
    links = [f"<{url}|{slack_escape(clean(t, 80))}>" for t, url in facts.links.items() if url.startswith("http")]
    if links:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(links)}]})
    return {"text": text, "blocks": blocks}


def email_message(event: Event, facts: Facts, to: list[str]) -> dict[str, Any]:
    """An email for the model owner: subject and an HTML body with every outside string escaped."""
    subject = clean(f"[Firebreak] {_LEAD[event][0]}: {facts.title}", 200)
    rows = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(clean(v, 1000))}</td></tr>"
        for k, v in {
            "Incident": facts.incident_id,
            "Model": facts.model,
            "Severity": facts.severity or "untriaged",
            "Status": facts.status,
            "What happened": facts.headline,
            "Description": facts.description,
            **facts.details,
        }.items()
    )
    links = "".join(
        f"<li><a href='{html.escape(url, quote=True)}'>{html.escape(clean(t, 80))}</a></li>"
        for t, url in facts.links.items()
    )
    body = f"<p>{html.escape(subject)}</p><table>{rows}</table>" + (f"<ul>{links}</ul>" if links else "")
    return {"to": list(to), "subject": subject, "html": body}
