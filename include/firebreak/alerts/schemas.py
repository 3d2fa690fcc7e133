"""What senders post, and the one internal alert both paths become.

Alertmanager webhook version "4" (Prometheus Alertmanager's own payload) and a documented
generic monitor JSON (Arize, Fiddler, Evidently or a home-grown monitor). Unknown fields
are accepted: senders add fields over time.

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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    started_at: datetime | None = None  # when the sender's episode began, when it says

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
