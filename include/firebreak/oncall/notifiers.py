"""The library's one Airflow glue module: the outbox's channels are Airflow notifiers.

Imported only where Airflow runs (task and deadline callbacks, the api-server's plugin app,
``firebreak ack`` delivering its ``acknowledge``), never at DAG parse time and never by the
rest of the library. Secrets come from Airflow connections, through Airflow's secrets
backends; nothing here logs them.

- **Slack**: the slack provider's ``SlackWebhookNotifier`` on a Slack Incoming Webhook
  connection (``slack_incoming_webhook``: the webhook token in the password; a host such as
  ``http://127.0.0.1:PORT`` points it elsewhere).
- **Email**: the smtp provider's ``SmtpNotifier`` on an SMTP connection.
- **PagerDuty**: :class:`PagerDutyEventsNotifier`, a ``BaseNotifier`` of ours on the
  pagerduty provider's ``pagerduty_events`` connection (integration key in the password).
  The provider's own notifier sends alert events only, through a client that accepts
  ``https://events.pagerduty.com`` alone; ours also sends Change Events and honours the
  connection's host (PagerDuty's EU service region, or a receiver on loopback in tests).

``notify()`` is called directly, never ``__call__``: Airflow would render Jinja templates in
the notifier's fields, and those fields carry alert text from outside (``{{ 7*7 }}`` must
stay inert).
"""

from __future__ import annotations

import os
from typing import Any

import requests
from airflow.sdk import BaseHook, BaseNotifier
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException

from firebreak.oncall.dispatch import Channel, Delivered, DeliveryError, deliver
from firebreak.settings import Settings

PAGERDUTY_EVENTS = "https://events.pagerduty.com"
MAIL_FROM_ENV = "FIREBREAK_MAIL_FROM"
TIMEOUT = 10


class PagerDutyEventsNotifier(BaseNotifier):
    """Send one Events API v2 body (alert or Change Event) with the connection's routing key."""

    template_fields = ()

    def __init__(self, *, event: dict[str, Any], change: bool = False, pagerduty_events_conn_id: str) -> None:
        super().__init__()
        self.event = event
        self.change = change
        self.pagerduty_events_conn_id = pagerduty_events_conn_id

    def notify(self, context: Any) -> None:
        conn = BaseHook.get_connection(self.pagerduty_events_conn_id)
        if not conn.password:
            raise DeliveryError(
                f"connection {self.pagerduty_events_conn_id!r} has no integration key (password)", retry=False
            )
        url = f"{_base_url(conn)}/v2/change/enqueue" if self.change else f"{_base_url(conn)}/v2/enqueue"
        try:
            response = requests.post(url, json={**self.event, "routing_key": conn.password}, timeout=TIMEOUT)
        except requests.RequestException as exc:  # network errors: PagerDuty says retry
            raise DeliveryError(f"PagerDuty unreachable: {type(exc).__name__}", retry=True) from exc
        if response.status_code == 202:
            return
        # 400 is a bad event (never retried); 429 and 5xx are PagerDuty asking to retry later.
        retry = response.status_code == 429 or response.status_code >= 500
        raise DeliveryError(f"PagerDuty answered {response.status_code}: {response.text[:300]}", retry=retry)


def _base_url(conn: Any) -> str:
    host = (conn.host or "").strip().rstrip("/")
    if not host:
        return PAGERDUTY_EVENTS
    if "://" in host:
        return host
    port = f":{conn.port}" if conn.port else ""
    return f"{conn.schema or 'https'}://{host}{port}"


class PagerDutyChannel:
    def send(self, conn_id: str, payload: dict[str, Any]) -> None:
        notifier = PagerDutyEventsNotifier(
            event=payload["event"], change=payload.get("kind") == "change", pagerduty_events_conn_id=conn_id
        )
        _notify(notifier, conn_id)


class SlackChannel:
    def send(self, conn_id: str, payload: dict[str, Any]) -> None:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        _notify(
            SlackWebhookNotifier(slack_webhook_conn_id=conn_id, text=payload["text"], blocks=payload["blocks"]), conn_id
        )


class EmailChannel:
    def send(self, conn_id: str, payload: dict[str, Any]) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        notifier = SmtpNotifier(
            smtp_conn_id=conn_id,
            from_email=os.environ.get(MAIL_FROM_ENV) or None,
            to=payload["to"],
            subject=payload["subject"],
            html_content=payload["html"],
        )
        _notify(notifier, conn_id)


def _notify(notifier: BaseNotifier, conn_id: str) -> None:
    """Run a notifier, turning its failures into the dispatcher's vocabulary.

    A connection that is not defined is said plainly and not retried (providers wrap that
    case in their own generic errors); anything else from a provider may clear up.
    """
    try:
        BaseHook.get_connection(conn_id)
        notifier.notify({})
    except DeliveryError:
        raise
    except AirflowNotFoundException as exc:
        raise DeliveryError(f"Airflow connection not defined: {exc}", retry=False, unconfigured=True) from exc
    except (AirflowException, OSError, ValueError, requests.RequestException) as exc:
        # Provider errors (a non-200 webhook answer, SMTP refusals, connection resets) may clear up.
        raise DeliveryError(f"{type(exc).__name__}: {str(exc)[:300]}", retry=True) from exc


CHANNELS: dict[str, Channel] = {"pagerduty": PagerDutyChannel(), "slack": SlackChannel(), "email": EmailChannel()}


def deliver_now(incident_id: str | None = None, settings: Settings | None = None) -> Delivered:
    """Deliver the outbox (one incident's, or everything pending) through Airflow's notifiers."""
    settings = settings or Settings.from_env()
    return deliver(settings.state_db_url, CHANNELS, incident_id)
