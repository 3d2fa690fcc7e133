"""Pages, messages and mail through Airflow's notifiers to receivers on loopback.

The outbox is delivered by the real glue (``firebreak.oncall.notifiers``: the slack and smtp
providers' notifiers, our PagerDuty Events v2 notifier) with connections from
``AIRFLOW_CONN_*`` variables, as Airflow's secrets backend serves them. PagerDuty and Slack
cannot be reached from here: their loopback stand-ins check every body against the
published schema (``tests/oncall_receivers.py``); the mail goes to a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.oncall_receivers import ROUTING_KEYS, Receivers, receivers

pytestmark = pytest.mark.integration

PRIMARY, BACKUP = ROUTING_KEYS["pagerduty_pricing"], ROUTING_KEYS["pagerduty_ml_platform"]


@pytest.fixture
def loop(firebreak_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Receivers, Any]]:
    """Receivers, the connections pointing at them, and a SEV1 pricing incident in the state DB."""
    from firebreak.incidents.store import IncidentStore
    from firebreak.settings import Settings

    with receivers() as found:
        for key, value in found.connections().items():
            monkeypatch.setenv(key, value)
        settings = Settings.from_env()
        store = IncidentStore(settings.state_db_url)
        store.create_incident(
            incident_id="pricing-oncall-1",
            model="pricing",
            description="prices below cost <b>{{ 7*7 }}</b>\x1b[31m",
            dedup_key="oncall-1",
            dag_run_id="run-1",
            dry_run=False,
            request={},
        )
        store.update_incident("pricing-oncall-1", severity="SEV1", failure_class="drift")
        yield found, settings


def test_an_opened_incident_pages_once_tells_slack_and_mails_the_owner(loop: tuple[Receivers, Any]) -> None:
    from firebreak.oncall.announce import announce
    from firebreak.oncall.messages import Event
    from firebreak.oncall.notifiers import deliver_now
    from firebreak.oncall.outbox import Outbox

    found, settings = loop
    for _ in range(3):  # a retried task, duplicate deliveries: the same notification each time
        announce("pricing-oncall-1", Event.OPENED, "SEV1 drift: 95% below cost", settings=settings)
    started = time.time()
    done = deliver_now("pricing-oncall-1", settings)
    assert (done.sent, done.failed, done.pending) == (3, 0, 0)
    assert deliver_now("pricing-oncall-1", settings).sent == 0  # nothing left to send

    assert found.pagerduty.rejected == [] and found.slack.rejected == []
    (page,) = found.pagerduty.events("trigger")
    assert page.body["routing_key"] == PRIMARY and page.body["dedup_key"] == "pricing-oncall-1"
    assert page.body["payload"]["severity"] == "critical"
    assert "{{ 7*7 }}" in page.body["payload"]["custom_details"]["description"]  # inert, not rendered
    assert "\x1b" not in page.body["payload"]["custom_details"]["description"]
    (message,) = found.slack.received
    assert message.body["text"].startswith(":rotating_light: Incident opened: [SEV1] pricing")
    assert "&lt;b&gt;" in str(message.body["blocks"])  # Slack's control characters escaped
    ((_, mail),) = found.mail.messages
    assert mail["To"] == "pricing-data-science@example.com"
    assert "Incident opened" in mail["Subject"]
    html = mail.get_payload()[0].get_payload(decode=True).decode()
    assert "&lt;b&gt;{{ 7*7 }}&lt;/b&gt;" in html
    latencies = [n.latency for n in Outbox(settings.state_db_url).for_incident("pricing-oncall-1")]
    print(f"\n[oncall] enqueue -> accepted, pager/slack/mail: {latencies}; delivery call {time.time() - started:.3f} s")
    assert all(latency is not None for latency in latencies)


def test_acknowledge_reaches_the_pager_and_stops_escalation(loop: tuple[Receivers, Any]) -> None:
    from firebreak.incidents.enums import Severity
    from firebreak.oncall.acknowledge import acknowledge
    from firebreak.oncall.announce import announce
    from firebreak.oncall.escalation import Target, on_deadline
    from firebreak.oncall.messages import Event
    from firebreak.oncall.notifiers import deliver_now
    from tests.state import State

    found, settings = loop
    announce("pricing-oncall-1", Event.OPENED, "SEV1", settings=settings)
    deliver_now("pricing-oncall-1", settings)
    first = acknowledge("pricing-oncall-1", "bob", via="shell", settings=settings)
    again = acknowledge("pricing-oncall-1", "carol", via="ui", settings=settings)
    deliver_now("pricing-oncall-1", settings)
    assert first.first and not again.first and again.by == "bob"
    (ack,) = found.pagerduty.events("acknowledge")
    assert ack.body == {"event_action": "acknowledge", "dedup_key": "pricing-oncall-1", "routing_key": PRIMARY}

    outcome = on_deadline("pricing-oncall-1", Severity.SEV1, Target.ACKNOWLEDGE, settings=settings)
    deliver_now("pricing-oncall-1", settings)
    assert not outcome.acted and "acknowledged at" in outcome.reason
    assert found.pagerduty.events("trigger", BACKUP) == []
    timeline = [e.message for e in State(settings.state_db_url).incidents.events("pricing-oncall-1")]
    assert "acknowledged by bob via shell" in timeline
    assert any(m.startswith("carol acknowledged via ui; already held by bob") for m in timeline)


def test_an_acknowledgement_before_the_page_goes_out_still_reaches_the_pager_after_it(
    loop: tuple[Receivers, Any],
) -> None:
    """Someone takes the incident the moment it shows a severity, before triage has paged: the
    pager must not keep ringing for an incident a person already holds."""
    from firebreak.oncall.acknowledge import acknowledge
    from firebreak.oncall.announce import announce
    from firebreak.oncall.messages import Event
    from firebreak.oncall.notifiers import deliver_now

    found, settings = loop
    acknowledge("pricing-oncall-1", "bob", via="ui", settings=settings)
    announce("pricing-oncall-1", Event.OPENED, "SEV1", settings=settings)
    announce("pricing-oncall-1", Event.OPENED, "SEV1", settings=settings)  # a retried task
    deliver_now("pricing-oncall-1", settings)
    actions = [r.body["event_action"] for r in found.pagerduty.received if r.body["routing_key"] == PRIMARY]
    assert actions == ["trigger", "acknowledge"]


def test_an_unacknowledged_sev1_pages_the_next_target_and_says_so(loop: tuple[Receivers, Any]) -> None:
    from firebreak.incidents.enums import Severity
    from firebreak.oncall.announce import announce
    from firebreak.oncall.escalation import Target, on_deadline
    from firebreak.oncall.messages import Event
    from firebreak.oncall.notifiers import deliver_now
    from tests.state import State

    found, settings = loop
    announce("pricing-oncall-1", Event.OPENED, "SEV1", settings=settings)
    # SEV2's deadline on a SEV1 incident is not this incident's: nothing happens.
    assert not on_deadline("pricing-oncall-1", Severity.SEV2, Target.ACKNOWLEDGE, settings=settings).acted
    outcome = on_deadline("pricing-oncall-1", Severity.SEV1, Target.ACKNOWLEDGE, settings=settings)
    on_deadline("pricing-oncall-1", Severity.SEV1, Target.ACKNOWLEDGE, settings=settings)  # a second firing: no repeat
    deliver_now("pricing-oncall-1", settings)
    assert outcome.acted
    (escalated,) = found.pagerduty.events("trigger", BACKUP)
    assert escalated.body["dedup_key"] == "pricing-oncall-1"
    assert "escalated: not acknowledged within the SEV1 target 5 min" in escalated.body["payload"]["summary"]
    assert any("Escalated" in r.body["text"] for r in found.slack.received)
    lines = [
        e.message for e in State(settings.state_db_url).incidents.events("pricing-oncall-1") if e.kind == "escalated"
    ]
    assert len(lines) == 2 and lines[0].startswith("escalated: not acknowledged within the SEV1 target 5 min")

    # Resolve goes to every service an alert is open on: the primary and the escalation target.
    announce("pricing-oncall-1", Event.RESOLVED, "traffic back on champion v2", settings=settings)
    deliver_now("pricing-oncall-1", settings)
    assert {r.body["routing_key"] for r in found.pagerduty.events("resolve")} == {PRIMARY, BACKUP}
    assert found.pagerduty.rejected == []


def test_a_receiver_down_is_retried_and_a_missing_connection_is_said(
    loop: tuple[Receivers, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from firebreak.oncall.announce import announce
    from firebreak.oncall.messages import Event
    from firebreak.oncall.notifiers import deliver_now
    from firebreak.oncall.outbox import Outbox
    from tests.state import State

    found, settings = loop
    found.pagerduty.fail_next = 1  # PagerDuty answers 503 once: "retry later"
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT")
    announce("pricing-oncall-1", Event.OPENED, "SEV1", settings=settings)
    first = deliver_now("pricing-oncall-1", settings)
    assert (first.sent, first.failed, first.pending) == (1, 1, 1)  # Slack sent, mail failed, page to retry
    second = deliver_now("pricing-oncall-1", settings)
    assert second.sent == 1 and len(found.pagerduty.events("trigger")) == 1
    status = {n.target: (n.status, n.attempts) for n in Outbox(settings.state_db_url).for_incident("pricing-oncall-1")}
    assert status == {"ic-pager": ("sent", 2), "team-slack": ("sent", 1), "owner-mail": ("unconfigured", 1)}
    # Said once per target and incident, not for every later notification to it.
    announce("pricing-oncall-1", Event.CLOSED, "resolved", settings=settings)
    deliver_now("pricing-oncall-1", settings)
    events = State(settings.state_db_url).incidents.events("pricing-oncall-1")
    assert [e.message for e in events if e.kind == "notify_failed"] == [
        "owner-mail (email) is not told about this incident: Airflow connection not defined: "
        "The conn_id `smtp_default` isn't defined"
    ]
