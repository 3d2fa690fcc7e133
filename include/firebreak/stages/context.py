"""Everything a stage needs about one incident, loaded lazily: stores, policy, kind, registry, data."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firebreak.containment.state import RoutingStore
from firebreak.errors import FirebreakError
from firebreak.incidents.clock import stamp
from firebreak.incidents.enums import ClockMark, EvidenceKind
from firebreak.incidents.store import Incident, IncidentStore
from firebreak.inert import clean
from firebreak.kinds import ModelKind, kind_for
from firebreak.policy.schema import Policy, load_policy
from firebreak.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from firebreak.prediction_log import LogWindow
    from firebreak.registry.mlflow_registry import Registry, Version

ACTOR = "incident_response"
log = logging.getLogger("firebreak.incident")


@dataclass
class Context:
    """One incident's view of the world; cheap to build, every part loaded on first use."""

    incident_id: str
    settings: Settings

    @classmethod
    def load(cls, incident_id: str, settings: Settings | None = None) -> Context:
        return cls(incident_id, settings or Settings.from_env())

    # -- stores and policy ------------------------------------------------------------

    @cached_property
    def store(self) -> IncidentStore:
        return IncidentStore(self.settings.state_db_url)

    @cached_property
    def routing(self) -> RoutingStore:
        return RoutingStore(self.settings.state_db_url)

    @cached_property
    def incident(self) -> Incident:
        found = self.store.get_incident(self.incident_id)
        if found is None:
            raise FirebreakError(f"incident {self.incident_id!r} does not exist")
        return found

    @cached_property
    def policy(self) -> Policy:
        return load_policy(self.incident.model, self.settings.policies_dir)

    @cached_property
    def kind(self) -> ModelKind:
        return kind_for(self.policy)

    @cached_property
    def registry(self) -> Registry:
        from firebreak.registry.mlflow_registry import Registry  # mlflow costs ~1.4 s: only when used

        return Registry(self.settings)

    @property
    def model(self) -> str:
        return self.incident.model

    @property
    def mlflow_run(self) -> str:
        """The incident's evidence run in MLflow (opened with the incident)."""
        if not self.incident.mlflow_run_id:
            raise FirebreakError(f"incident {self.incident_id!r} has no MLflow evidence run")
        return self.incident.mlflow_run_id

    @property
    def dry_run(self) -> bool:
        return self.incident.dry_run

    @property
    def opened_at(self) -> datetime:
        opened = self.incident.opened_at
        return opened.replace(tzinfo=UTC) if opened.tzinfo is None else opened

    def requested(self, key: str, default: str) -> str:
        """A field of the request the incident opened with (the form's or the alert's choice)."""
        return str(self.incident.request.get(key, default))

    # -- evidence -----------------------------------------------------------------------

    def evidence(self) -> dict[str, dict[str, Any]]:
        return self.store.get_evidence(self.incident_id)

    def record(self, kind: EvidenceKind, payload: dict[str, Any], message: str) -> None:
        """Persist evidence and a timeline line for it; the task's log says the same sentence."""
        self.store.put_evidence(self.incident_id, kind, payload)
        self.event(kind, message)

    def event(self, kind: str, message: str) -> None:
        """A timeline line, also written to the running task's log (what it found or decided)."""
        self.store.add_event(self.incident_id, kind, message)
        log.info("%s %s: %s", self.incident_id, kind, clean(message, 1000))

    def tag_run(self, tags: dict[str, Any]) -> None:
        """Tags on the incident's MLflow run (severity, failure class, description) for people searching runs."""
        if self.incident.mlflow_run_id:
            for key, value in tags.items():
                if value not in (None, ""):
                    self.registry.client.set_tag(self.incident.mlflow_run_id, key, clean(value, 4000))

    @cached_property
    def champion_version(self) -> str:
        """The version that served when the incident opened: the one the incident is about."""
        return str(self.evidence()[EvidenceKind.OPENING]["champion_version"])

    # -- the on-call loop -------------------------------------------------------------

    def mark(self, mark: ClockMark, at: datetime | None = None, by: str | None = None) -> None:
        """Set a mark of the incident clock (once; a dry run keeps no clock)."""
        if not self.dry_run:
            stamp(self.store, self.incident_id, mark, at or datetime.now(UTC), by)

    def announce(self, event: str, headline: str, **kwargs: Any) -> None:
        """Tell the severity route's targets (enqueued; Airflow's notifiers deliver). Dry runs page nobody."""
        from firebreak.oncall.announce import announce
        from firebreak.oncall.messages import Event

        if not self.dry_run:
            announce(self.incident_id, Event(event), headline, settings=self.settings, **kwargs)

    def champion_at_opening(self) -> Version:
        """The champion the incident opened with: what every check and the gate compare against."""
        return self.registry.get_version(self.model, self.evidence()[EvidenceKind.OPENING]["champion_version"])

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Figures on the incident's MLflow run, as metrics (chartable, comparable across incidents)."""
        if self.incident.mlflow_run_id:
            self.registry.log_metrics(
                self.incident.mlflow_run_id,
                {key: float(value) for key, value in metrics.items() if isinstance(value, int | float)},
            )

    def log_artifact(self, path: Path, artifact_dir: str) -> str:
        return self.registry.log_evidence(self.mlflow_run, path, artifact_dir)

    def artifact_dir(self) -> Path:
        path = self.settings.evidence_dir / self.incident_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- data ---------------------------------------------------------------------------

    def window(self) -> pd.DataFrame:
        """The triage window: the policy's hours up to the opening, rows the serving champion answered only.

        Triage, containment and investigation read this: never the previous champion's or
        the fallback's answers (:func:`firebreak.investigation.triage.champion_traffic`).
        """
        return self.log_window().frame()

    def log_window(self) -> LogWindow:
        """The triage window, not read yet: the contract, lineage and drift checks stream it when it is big."""
        from firebreak.prediction_log import PredictionLog

        until = self.opened_at + timedelta(minutes=1)
        since = until - timedelta(hours=self.policy.detection.window_hours)
        log = PredictionLog(self.settings.prediction_log_url)
        return log.window(self.model, since=since, until=until, version=self.champion_version)

    def labelled_window(self) -> pd.DataFrame:
        from firebreak.prediction_log import LabelStore

        return LabelStore(self.settings.labels_dir).join(self.model, self.window(), self.policy.features.label)

    def traffic_since_opened(self) -> pd.DataFrame:
        """Prediction-log rows logged after the incident opened (the window ends at opening)."""
        from firebreak.prediction_log import PredictionLog

        return PredictionLog(self.settings.prediction_log_url).read(self.model, since=self.opened_at)
