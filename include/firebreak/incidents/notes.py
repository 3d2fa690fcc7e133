"""The DAG run's note: the incident's outcome in a sentence, where Airflow shows the run.

SOP stage *Close*: on-call people land on the Airflow run first. The plugin's listener
writes this note when an ``incident_response`` run ends (its close teardown has set the
outcome by then).
"""

from __future__ import annotations

from firebreak.errors import IncidentNotFound
from firebreak.incidents.enums import EvidenceKind
from firebreak.incidents.store import IncidentStore
from firebreak.inert import clean
from firebreak.settings import Settings

MAX_NOTE = 1000  # Airflow's dag_run_note.content is a 1,000-character column


def run_note(incident_id: str, settings: Settings) -> str:
    """``resolved · SEV1 drift · pricing: champion v1 -> v2; traffic back on champion. Post-mortem: ...``

    Raises:
        IncidentNotFound: The run opened no incident (a refused request).
    """
    store = IncidentStore(settings.state_db_url)
    incident = store.get_incident(incident_id)
    if incident is None:
        raise IncidentNotFound(f"no incident {incident_id!r}")
    head = " · ".join(
        part
        for part in (
            f"Incident {incident.id}: {incident.status}",
            " ".join(p for p in (incident.severity, incident.failure_class) if p),
            incident.model,
        )
        if part
    )
    text = f"{head}. {incident.outcome or 'still running'}."
    postmortem = store.get_evidence(incident_id).get(EvidenceKind.POSTMORTEM, {}).get("path")
    if postmortem:
        text += f" Post-mortem: {postmortem}"
    return clean(text, MAX_NOTE)
