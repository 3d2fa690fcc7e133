"""A breaker trip, and its recovery, as a generic alert in the alert inbox.

The gateway opens no incident itself: it drops a generic alert file and the
``alert_intake`` DAG opens the incident, as for any other alert source. The trip and the
recovery carry the same dedup key, so the intake resolves the episode the trip opened.
Only the worker whose transition became the shared one writes (or a worker alone while
the state DB is unreachable), so several workers tripping together raise one alert.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from firebreak.containment.breaker import Transition
from firebreak.incidents.enums import BreakerState
from firebreak.policy.schema import Policy

log = logging.getLogger(__name__)


class BreakerAlerts:
    """Writes the alert for one model's breaker episodes.

    Args:
        model: The model the breaker guards.
        policy: Its policy (the breaker's limits, the containment route named in the alert).
        inbox: The alert inbox directory.
        enabled: Off: transitions are still tracked, nothing is written.
    """

    def __init__(self, model: str, policy: Policy, inbox: Path, *, enabled: bool = True) -> None:
        self.model = model
        self.policy = policy
        self.inbox = inbox
        self.enabled = enabled
        self._open_key: str | None = None
        self._version: str | None = None

    def transition(self, transition: Transition, *, version: str | None, decided: bool) -> None:
        """Note a transition; ``decided``: this worker's transition is the shared one (or it is alone)."""
        if transition.target == BreakerState.OPEN:
            self._open_key = f"breaker:{self.model}:v{version}:{int(transition.at)}"
            self._version = version
        if not decided:
            return
        if transition.target == BreakerState.OPEN and transition.source == BreakerState.CLOSED:
            self._send(transition, "firing")
        elif transition.target == BreakerState.CLOSED and self._open_key:
            self._send(transition, "resolved")

    def _send(self, transition: Transition, status: str) -> None:
        if not self.enabled:
            return
        limit = self.policy.serving.breaker
        # The signal is the rate furthest over its limit, relative to the limit.
        worst = max(
            (transition.rates.get(k, 0.0) / max(v, 1e-9), k, v)
            for k, v in (
                ("error_rate", limit.max_error_rate),
                ("low_confidence_rate", limit.max_low_confidence_rate),
                ("sanity_violation_rate", limit.max_sanity_violation_rate),
            )
        )
        route = self.policy.containment.route
        alert = {
            "model": self.model,
            "signal": f"gateway_breaker:{worst[1]}",
            "value": transition.rates.get(worst[1], 0.0),
            "threshold": worst[2],
            "dedup_key": self._open_key,
            "status": status,
            "failure_class": "unknown",
            "description": (
                f"serving gateway breaker {transition.source} -> {transition.target} on {self.model} "
                f"({transition.reason}); traffic on the {route} fallback while open"
            ),
            "source": "gateway",
            "model_version": self._version,  # an alert about a version that no longer serves is closed stale
        }
        write_alert(self.inbox, f"generic-gateway-{self.model}", alert)


def write_alert(inbox: Path, prefix: str, alert: dict[str, Any]) -> None:
    """Write ``alert`` as a new JSON file in the inbox, atomically.

    Written under a dot-name and renamed into place, so the intake never reads half a
    file. A failed write is logged, never raised: an alert must not fail a request.
    """
    try:
        inbox.mkdir(parents=True, exist_ok=True)
        name = f"{prefix}-{time.time_ns()}-{uuid.uuid4().hex[:6]}.json"
        tmp = inbox / f".{name}.tmp"
        tmp.write_text(json.dumps(alert))
        tmp.rename(inbox / name)
    except OSError:
        log.exception("could not write the breaker alert to %s", inbox)
