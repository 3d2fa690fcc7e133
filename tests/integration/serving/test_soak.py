"""The gateway soak's short plan (``firebreak_dev.soak``): every fault at once, on real processes.

``firebreak serve --model pricing --workers 2`` takes open-loop traffic from four callers on
their own loopback addresses and one adversarial caller, through a real failure and recovery,
two ``kill -9``s of workers and the state DB's write lock held by another process. The test
holds the run to every check of the soak but its latency budget (``benchmarks/soak_gateway.py``
measures that, for ten minutes at 200 requests a second).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firebreak_dev.soak import Plan, run

pytestmark = pytest.mark.integration


def test_the_short_soak_answers_and_logs_everything_and_contains_only_on_the_real_failure(tmp_path: Path) -> None:
    plan = Plan.short()
    report = run(plan, tmp_path)
    counts = report.counts()
    assert report.problems(timed=False) == [], report.markdown()
    invalid = sum(1 for o in report.outcomes if o.who == "invalid")
    # Every request answered: the invalid ones refused, every other one 200, every answered row logged.
    assert counts["sent"] == int(plan.seconds * plan.rate) + int(plan.seconds * plan.adversary_rate)
    assert counts["refused 4xx"] == invalid > 0
    assert counts["answered 200"] == counts["sent"] - invalid
    assert counts["rows logged"] == counts["rows answered"] > counts["answered 200"]  # the adversary's 20-row batches
    assert counts["rows lost"] == 0
    assert counts["workers killed (kill -9)"] == len(plan.kills)
    assert counts["prices under cost served"] == counts["contract-breaking served"] == 0
    # The breaker tripped on the failure and only then (the adversary never tripped it), and closed again.
    trips = report.trips()
    assert trips and all(plan.failure[0] <= at < plan.failure[1] for at in trips), report.markdown()
    assert report.events[-1]["target"] == "closed", report.markdown()
    # A trip decided while the state DB was locked reached breaker_events once the lock was gone.
    if trips[0] < plan.lock[1]:
        assert (report.events[0].get("data") or {}).get("late") is True, report.markdown()
    # Legitimate traffic left the champion only while it failed (and for rows it priced under cost).
    assert counts["healthy model contained (legit answers off the champion)"] == 0
