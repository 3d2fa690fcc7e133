"""Incident identity: the same alert can never open two incidents.

The incident id is derived from the model and the alert's dedup key, so a replayed
alert maps to the incident (and DAG run id) it already opened.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

_RUN_ID_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def incident_id_for(model: str, dedup_key: str) -> str:
    """Return ``<model>-<12 hex>``, stable for the same model and dedup key."""
    digest = hashlib.sha256(f"{model}\n{dedup_key}".encode()).hexdigest()[:12]
    return f"{_RUN_ID_SAFE.sub('-', model)}-{digest}"


def incident_id_from_conf(conf: dict[str, Any], run_id: str) -> str:
    """The incident id for a DAG run: from the alert's dedup key, else from the run id.

    Every task of a run derives it the same way, so tasks need no XCom to find their incident.
    """
    model = str(conf.get("model", "unknown"))
    return incident_id_for(model, str(conf.get("dedup_key") or run_id))
