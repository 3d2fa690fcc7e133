"""What senders post, and the one internal alert every path becomes.

Alertmanager webhook version "4" (Prometheus Alertmanager's own payload), Grafana
Alerting's webhook (version "1": Alertmanager's alert shape plus Grafana's fields), the
monitor alerts of Arize and Fiddler, and a documented generic monitor JSON (Evidently or a
home-grown monitor). Unknown fields are accepted: senders add fields over time.

Label conventions (Alertmanager ``labels``; the generic JSON has the same keys as fields):

| label | meaning | maps to the DAG param |
|---|---|---|
| ``model`` (required) | registered model name with a policy | ``model`` |
| ``failure_class`` | drift, skew, bias, hallucination, feedback_poisoning, bad_release | ``failure_type`` (default ``unknown``) |
| ``severity`` | SEV1..SEV4, or critical/high/warning/info | ``severity`` (default ``auto``) |
| annotations ``summary`` / ``description`` | free text | ``description`` |
| ``model_version`` | the version the alert saw misbehave | ``model_version`` (an alert about a version that no longer serves is closed stale) |

Alertmanager's ``startsAt`` goes along as ``alert_started_at``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from firebreak.incidents.enums import FailureClass, Severity

MODEL_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,20}$")

# Common monitoring severities mapped onto the SOP's matrix.
SEVERITY_ALIASES = {
    "critical": Severity.SEV1,
    "page": Severity.SEV1,
    "high": Severity.SEV2,
    "error": Severity.SEV2,
    "warning": Severity.SEV3,
    "info": Severity.SEV4,
}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class AlertmanagerAlert(_Open):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: datetime  # noqa: N815 — Alertmanager's field names
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str = Field(min_length=1, max_length=128)


class AlertmanagerWebhook(_Open):
    version: Literal["4"]
    groupKey: str  # noqa: N815
    truncatedAlerts: int = Field(0, ge=0)  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[AlertmanagerAlert] = Field(min_length=1)


class GenericAlert(_Open):
    """The generic monitor JSON: one alert per delivery."""

    model: str = Field(min_length=1, max_length=64)
    signal: str = Field(min_length=1, max_length=200, description="What was measured, e.g. psi:demand_index")
    value: float
    threshold: float
    dedup_key: str = Field(min_length=1, max_length=255)
    status: Literal["firing", "resolved"] = "firing"
    severity: str | None = None
    failure_class: FailureClass = FailureClass.UNKNOWN
    segment: str | None = None
    window: str | None = None
    description: str = Field("", max_length=4000)
    source: str = Field("generic", max_length=100)


@dataclass(frozen=True)
class Alert:
    """One alert, whatever its sender: what the intake acts on."""

    source: str
    status: Literal["firing", "resolved"]
    model: str
    dedup_key: str
    failure_type: FailureClass
    severity: Severity | None
    description: str
    labels: dict[str, Any] = field(default_factory=dict)
    model_version: str | None = None  # the version the sender saw misbehave, when it says
    started_at: datetime | None = None  # when the sender saw the breach begin: the clock's `detected`

    def conf(self) -> dict[str, Any]:
        """The incident_response params this alert starts."""
        conf: dict[str, Any] = {
            "model": self.model,
            "failure_type": self.failure_type.value,
            "severity": self.severity.value if self.severity else "auto",
            "description": self.description[:4000],
            "remediation": "auto",
            "dry_run": False,
            "dedup_key": self.dedup_key,
        }
        if self.model_version is not None:
            conf["model_version"] = self.model_version
        if self.started_at is not None:
            conf["alert_started_at"] = self.started_at.isoformat()
        return conf


def parse_model_version(value: Any) -> str | None:
    """A version label as sent, if it looks like one (anything else is ignored, never forwarded)."""
    text = str(value).strip().removeprefix("v") if value is not None else ""
    return text if MODEL_VERSION.fullmatch(text) else None


def parse_severity(value: str | None) -> Severity | None:
    """SEV1..SEV4 or a common alias; anything else leaves severity to triage."""
    if not value:
        return None
    text = value.strip()
    if text.upper() in Severity.__members__:
        return Severity(text.upper())
    return SEVERITY_ALIASES.get(text.lower())


def parse_failure_class(value: str | None) -> FailureClass:
    try:
        return FailureClass(value) if value else FailureClass.UNKNOWN
    except ValueError:
        return FailureClass.UNKNOWN


def from_alertmanager(webhook: AlertmanagerWebhook) -> list[Alert]:
    """One Alert per firing episode: the dedup key is ``fingerprint|startsAt``.

    ``fingerprint`` hashes the labels and repeats across episodes; ``startsAt`` tells
    episodes apart, and stays the same in Alertmanager's repeat notifications.
    """
    alerts = []
    for a in webhook.alerts:
        text = a.annotations.get("summary") or a.annotations.get("description") or a.labels.get("alertname", "")
        alerts.append(
            Alert(
                source="alertmanager",
                status=a.status,
                model=a.labels.get("model", ""),
                dedup_key=f"{a.fingerprint}|{a.startsAt.isoformat()}",
                failure_type=parse_failure_class(a.labels.get("failure_class")),
                severity=parse_severity(a.labels.get("severity")),
                description=f"[{a.labels.get('alertname', 'alert')}] {text}".strip(),
                labels=dict(a.labels),
                model_version=parse_model_version(a.labels.get("model_version")),
                started_at=a.startsAt,
            )
        )
    return alerts


def from_generic(alert: GenericAlert) -> Alert:
    text = alert.description or f"{alert.signal} = {alert.value:g} (threshold {alert.threshold:g})"
    if alert.segment:
        text += f" in segment {alert.segment}"
    if alert.window:
        text += f" over {alert.window}"
    return Alert(
        source=alert.source,
        status=alert.status,
        model=alert.model,
        dedup_key=f"{alert.source}:{alert.dedup_key}",
        failure_type=alert.failure_class,
        severity=parse_severity(alert.severity),
        description=text,
        labels={"signal": alert.signal, "value": alert.value, "threshold": alert.threshold, "segment": alert.segment},
        model_version=parse_model_version((alert.model_extra or {}).get("model_version")),
    )


# -- Grafana Alerting ---------------------------------------------------------------------------


class GrafanaWebhook(_Open):
    """Grafana Alerting's webhook contact point (grafana.com, "Configure the webhook notifier").

    Each alert is Alertmanager-shaped (``status``, ``labels``, ``annotations``, ``startsAt``,
    ``fingerprint``) with Grafana's additions (``values``, ``dashboardURL``, ``panelURL``,
    ``silenceURL``); the envelope adds ``orgId``, ``title``, ``state`` and ``message``.
    """

    version: str = "1"
    groupKey: str = ""  # noqa: N815 — Grafana's field names
    truncatedAlerts: int = Field(0, ge=0)  # noqa: N815
    status: Literal["firing", "resolved"]
    orgId: int | None = None  # noqa: N815
    receiver: str = ""
    alerts: list[AlertmanagerAlert] = Field(min_length=1)


def from_grafana(webhook: GrafanaWebhook) -> list[Alert]:
    """One Alert per firing episode, as for Alertmanager: ``grafana:fingerprint|startsAt``."""
    converted = from_alertmanager(
        AlertmanagerWebhook(version="4", groupKey=webhook.groupKey, status=webhook.status, alerts=webhook.alerts)
    )
    return [
        Alert(
            source="grafana",
            status=a.status,
            model=a.model,
            dedup_key=f"grafana:{a.dedup_key}",
            failure_type=a.failure_type,
            severity=a.severity,
            description=a.description,
            labels=a.labels,
            started_at=a.started_at,
        )
        for a in converted
    ]


# -- Arize and Fiddler monitor alerts -------------------------------------------------------------


def _epoch(value: Any) -> datetime | None:
    """A timestamp given as ISO 8601, or Unix seconds or milliseconds."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ArizeAlert(_Open):
    """An Arize monitor alert: a monitor on a model changed status.

    Arize's documented monitor statuses are ``Triggered``, ``Healthy`` and ``No Data``; a
    ``Triggered`` monitor fires, ``Healthy`` resolves the episode, ``No Data`` is ignored.
    Field names are accepted as Arize's snake_case or camelCase.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    monitor_id: str = Field(min_length=1, max_length=200, validation_alias=AliasChoices("monitor_id", "monitorId"))
    monitor_name: str = Field("", max_length=300, validation_alias=AliasChoices("monitor_name", "monitorName"))
    model_name: str = Field(
        min_length=1, max_length=64, validation_alias=AliasChoices("model_name", "modelName", "model_id", "modelId")
    )
    status: str = Field(min_length=1, max_length=40, validation_alias=AliasChoices("status", "monitor_status"))
    metric: str = Field("", max_length=200, validation_alias=AliasChoices("metric", "metric_name", "metricName"))
    value: float | None = Field(None, validation_alias=AliasChoices("value", "metric_value", "metricValue"))
    threshold: float | None = None
    triggered_at: Any = Field(None, validation_alias=AliasChoices("triggered_at", "triggeredAt", "timestamp"))
    severity: str | None = None
    monitor_category: str = Field(
        "", max_length=60, validation_alias=AliasChoices("monitor_category", "monitorCategory", "monitor_type")
    )
    url: str = Field("", max_length=2000, validation_alias=AliasChoices("url", "monitor_url", "link"))


# Arize's monitor categories mapped onto the SOP's failure classes.
ARIZE_CATEGORIES = {"drift": FailureClass.DRIFT, "data_quality": FailureClass.SKEW, "performance": FailureClass.UNKNOWN}


def from_arize(alert: ArizeAlert) -> list[Alert]:
    state = alert.status.strip().lower().replace("_", " ")
    if state == "no data":
        return []
    started = _epoch(alert.triggered_at)
    episode = started.isoformat() if started else "open"
    figures = (
        f" ({alert.metric} {alert.value:g} vs {alert.threshold:g})"
        if alert.value is not None and alert.threshold is not None
        else ""
    )
    return [
        Alert(
            source="arize",
            status="resolved" if state in {"healthy", "resolved"} else "firing",
            model=alert.model_name,
            dedup_key=f"arize:{alert.monitor_id}|{episode}",
            failure_type=ARIZE_CATEGORIES.get(alert.monitor_category.lower(), FailureClass.UNKNOWN),
            severity=parse_severity(alert.severity),
            description=f"[Arize] {alert.monitor_name or alert.monitor_id}{figures}",
            labels={"monitor": alert.monitor_name, "metric": alert.metric, "url": alert.url},
            started_at=started,
        )
    ]


class FiddlerRef(_Open):
    name: str = Field("", max_length=200)
    id: str | None = None
    display_name: str = Field("", max_length=200)
    version: str | None = None


class FiddlerAlert(_Open):
    """A Fiddler alert: its alert rule (name, metric, model, project) and the alert record.

    Field names are those of Fiddler's published alert-rule and alert-record objects
    (``/v3/alert-rules``): ``severity`` WARNING or CRITICAL, ``alert_value``, ``baseline_value``,
    ``alert_run_start_time`` (Unix ms), ``feature_name``, ``message``.
    """

    alert_rule_id: str = Field(min_length=1, max_length=200, validation_alias=AliasChoices("alert_rule_id", "alert_id"))
    alert_rule_name: str = Field("", max_length=300, validation_alias=AliasChoices("alert_rule_name", "name"))
    model: FiddlerRef
    project: FiddlerRef | None = None
    metric: FiddlerRef | None = None
    severity: str = Field("CRITICAL", max_length=20)
    alert_value: float | None = None
    baseline_value: float | None = None
    critical_threshold: float | None = None
    feature_name: str | None = Field(None, max_length=200)
    message: str = Field("", max_length=4000)
    alert_run_start_time: Any = None
    status: str = Field("firing", max_length=20)


FIDDLER_SEVERITY = {"CRITICAL": Severity.SEV1, "HIGH": Severity.SEV2, "WARNING": Severity.SEV3, "MEDIUM": Severity.SEV3}


def from_fiddler(alert: FiddlerAlert) -> list[Alert]:
    started = _epoch(alert.alert_run_start_time)
    metric = alert.metric.display_name or alert.metric.id if alert.metric else ""
    text = alert.message or f"{alert.alert_rule_name or alert.alert_rule_id}: {metric} = {alert.alert_value}"
    if alert.feature_name:
        text += f" on {alert.feature_name}"
    return [
        Alert(
            source="fiddler",
            status="resolved" if alert.status.lower() in {"resolved", "ok"} else "firing",
            model=alert.model.name,
            dedup_key=f"fiddler:{alert.alert_rule_id}|{started.isoformat() if started else 'open'}",
            failure_type=FailureClass.DRIFT if "drift" in str(metric).lower() else FailureClass.UNKNOWN,
            severity=FIDDLER_SEVERITY.get(alert.severity.upper()),
            description=f"[Fiddler] {text}",
            labels={"rule": alert.alert_rule_name, "metric": metric, "value": alert.alert_value},
            started_at=started,
        )
    ]


# The sources beyond Alertmanager and the generic JSON: how each body becomes Alerts.
VENDOR_PARSERS: dict[str, Callable[[Any], list[Alert]]] = {
    "grafana": lambda payload: from_grafana(GrafanaWebhook.model_validate(payload)),
    "arize": lambda payload: from_arize(ArizeAlert.model_validate(payload)),
    "fiddler": lambda payload: from_fiddler(FiddlerAlert.model_validate(payload)),
}
