"""What starts an incident: the DAG's params, an alert, or a CLI call, validated at the boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firebreak.errors import IncidentRequestError
from firebreak.incidents.enums import FailureClass, Remediation, Severity
from firebreak.model_names import MAX_MODEL_NAME_LENGTH, ModelName


class IncidentRequest(BaseModel):
    """The request an incident opens with; unknown fields are refused, each bad field is named."""

    model_config = ConfigDict(extra="forbid")

    model: ModelName = Field(min_length=1, max_length=MAX_MODEL_NAME_LENGTH)
    failure_type: FailureClass = FailureClass.UNKNOWN
    severity: Severity | Literal["auto"] = "auto"
    description: str = Field("", max_length=4000)
    remediation: Remediation | Literal["auto"] = "auto"
    dry_run: bool = False
    dedup_key: str | None = Field(None, max_length=255)
    # What the alert said about itself: the version it saw misbehave and when its episode
    # began. Triage uses them to tell an alert about a version that no longer serves.
    model_version: str | None = Field(None, max_length=20, pattern=r"^[A-Za-z0-9._-]+$")
    alert_started_at: datetime | None = None

    @classmethod
    def from_conf(cls, conf: dict[str, Any]) -> IncidentRequest:
        try:
            return cls.model_validate(conf)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
            )
            raise IncidentRequestError(f"invalid incident request: {problems}") from exc
