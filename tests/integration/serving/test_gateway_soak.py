"""The gateway soak's checks in under a minute of traffic (``benchmarks/soak_gateway.py`` runs ten).

``firebreak serve --workers 2`` in front of the pricing model takes constant-rate traffic
from several callers while the season ends and returns (a real failure and recovery), one
caller sends in-contract rows the model gets wrong all along, two workers are killed with
``kill -9`` and another process holds the state DB's write lock (``firebreak_dev.soak``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firebreak_dev.soak import Plan, run

pytestmark = pytest.mark.integration


def test_every_request_is_answered_in_time_every_answer_logged_and_nothing_blocked_is_served(tmp_path: Path) -> None:
    report = run(Plan.short(), tmp_path)
    counts = report.counts()
    assert report.problems() == [], report.markdown()
    assert counts["rows lost"] == 0 and counts["rows logged"] == counts["rows answered"] > 0
    assert counts["refused 4xx"] > 0  # contract-breaking requests were sent, and each was refused
    assert counts["retried after a kill"] >= 0 and len(report.plan.kills) == 2
    late = [e for e in report.events if e["target"] == "open" and (e.get("data") or {}).get("late")]
    assert late, "the trip during the lock never reached breaker_events"
