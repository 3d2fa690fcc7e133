"""What the targets receive: bodies valid by PagerDuty's published schema, hostile text inert."""

from __future__ import annotations

import pytest

from firebreak.oncall.messages import Event, Facts, email_message, pagerduty_alert, pagerduty_change, slack_message
from tests.oncall_receivers import pagerduty_errors

HOSTILE = "<script>alert(1)</script> {{ 7*7 }} \x1b[31m\u202e" + "x" * 3000
FACTS = Facts(
    incident_id="pricing-3f1c2a9b0d4e",
    model="pricing",
    severity="SEV2",
    failure_class="drift",
    status="contained",
    description=HOSTILE,
    owner="pricing-data-science",
    headline=HOSTILE,
    links={"Airflow run": "https://airflow.example.com/dags/incident_response/runs/r1", "evil": "javascript:alert(1)"},
    details={"signals": HOSTILE},
)
KEY = {"routing_key": "K" * 32}


@pytest.mark.parametrize("action", ["trigger", "acknowledge", "resolve"])
def test_alert_events_are_valid_events_api_v2_bodies(action: str) -> None:
    body = pagerduty_alert(action, FACTS)
    assert pagerduty_errors({**body, **KEY}, change=False) == []
    assert body["dedup_key"] == FACTS.incident_id
    if action == "trigger":
        payload = body["payload"]
        assert payload["severity"] == "error" and len(payload["summary"]) <= 1024
        assert "\x1b" not in payload["summary"] and "\u202e" not in payload["summary"]
        assert [link["href"] for link in body["links"]] == [FACTS.links["Airflow run"]]  # no javascript: link
    else:
        assert "payload" not in body


def test_change_events_are_valid_and_routing_keys_never_in_a_payload() -> None:
    body = pagerduty_change(FACTS)
    assert pagerduty_errors({**body, **KEY}, change=True) == []
    assert "routing_key" not in body and "routing_key" not in pagerduty_alert("trigger", FACTS)


def test_the_published_schema_refuses_what_pagerduty_refuses() -> None:
    assert pagerduty_errors({"event_action": "resolve", **KEY}, change=False) != []  # no dedup_key
    assert pagerduty_errors({**pagerduty_alert("trigger", FACTS), "routing_key": "short"}, change=False) != []


def test_slack_and_mail_escape_what_came_from_outside() -> None:
    slack = slack_message(Event.OPENED, FACTS)
    assert "<script>" not in str(slack) and "&lt;script&gt;" in str(slack)
    assert "javascript:" not in str(slack)
    mail = email_message(Event.CLOSED, FACTS, ["owner@example.com"])
    assert "<script>" not in mail["html"] and "&lt;script&gt;" in mail["html"]
    assert "\n" not in mail["subject"] and len(mail["subject"]) <= 200
