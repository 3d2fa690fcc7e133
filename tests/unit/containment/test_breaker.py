"""The circuit breaker as a state machine: exact call scripts against an injected clock."""

from __future__ import annotations

import pytest

from firebreak.containment.breaker import Breaker, Call
from firebreak.incidents.enums import BreakerState
from firebreak.policy.schema import CircuitBreaker

OK = Call()
ERROR = Call(error=True)
LOW = Call(low_confidence=True)
INSANE = Call(sanity_violation=True)

CONFIG = CircuitBreaker(
    window_seconds=10,
    min_calls=4,
    max_error_rate=0.25,
    max_low_confidence_rate=0.5,
    max_sanity_violation_rate=0.0,
    open_seconds=5,
    half_open_probes=3,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> Breaker:
    return Breaker("pricing", CONFIG, clock=clock)


def test_no_verdict_under_the_minimum_number_of_calls(breaker: Breaker) -> None:
    for _ in range(3):
        assert breaker.record(ERROR) is None
    assert breaker.state == BreakerState.CLOSED
    assert breaker.rates().calls == 3


def test_trips_on_error_rate_over_the_limit_and_names_it(breaker: Breaker, clock: Clock) -> None:
    script = [OK, OK, OK, ERROR]  # 1 of 4 = 25%: at the limit, not over it
    assert [breaker.record(c) for c in script] == [None] * 4
    assert breaker.state == BreakerState.CLOSED
    clock.now += 1
    transition = breaker.record(ERROR)  # 2 of 5 = 40%
    assert transition is not None
    assert (transition.source, transition.target) == (BreakerState.CLOSED, BreakerState.OPEN)
    assert transition.reason == "error rate 40% > 25%"
    assert transition.rates == {"calls": 5, "error_rate": 0.4, "low_confidence_rate": 0.0, "sanity_violation_rate": 0.0}
    assert transition.at == clock.now == breaker.since
    assert breaker.state == BreakerState.OPEN


def test_one_answer_under_cost_trips_when_the_policy_tolerates_none(breaker: Breaker) -> None:
    for c in (OK, OK, OK):
        breaker.record(c)
    transition = breaker.record(INSANE)
    assert transition is not None and transition.target == BreakerState.OPEN
    assert "sanity-violation rate 25% > 0%" in transition.reason


def test_low_confidence_trips_only_over_its_own_limit(breaker: Breaker) -> None:
    for c in (LOW, OK, LOW, OK):  # 50%: at the limit
        assert breaker.record(c) is None
    transition = breaker.record(LOW)  # 60%
    assert transition is not None and transition.reason == "low-confidence rate 60% > 50%"


def test_calls_older_than_the_window_stop_counting(breaker: Breaker, clock: Clock) -> None:
    for c in (ERROR, ERROR, ERROR):
        breaker.record(c)
    clock.now += 10  # the three errors leave the 10 s window
    for c in (OK, OK, OK):
        assert breaker.record(c) is None
    assert breaker.rates().calls == 3
    assert breaker.state == BreakerState.CLOSED


def trip(breaker: Breaker) -> None:
    for c in (ERROR, ERROR, ERROR, ERROR):
        breaker.record(c)
    assert breaker.state == BreakerState.OPEN


def test_open_waits_then_half_opens_and_closes_after_good_probes(breaker: Breaker, clock: Clock) -> None:
    trip(breaker)
    assert breaker.record(OK) is None  # open: the champion is not counted
    clock.now += 4.9
    assert breaker.poll() is None
    assert breaker.state == BreakerState.OPEN
    clock.now += 0.1
    half = breaker.poll()
    assert half is not None and (half.source, half.target) == (BreakerState.OPEN, BreakerState.HALF_OPEN)
    assert breaker.probes_wanted == 3
    assert breaker.record(OK) is None
    assert breaker.probes_wanted == 2
    assert breaker.record(OK) is None
    closed = breaker.record(OK)
    assert closed is not None and (closed.source, closed.target) == (BreakerState.HALF_OPEN, BreakerState.CLOSED)
    assert closed.reason == "3 probes within the policy"
    assert breaker.probes_wanted == 0
    assert breaker.rates().calls == 0  # a closed breaker counts afresh


def test_failed_probes_reopen_and_the_wait_starts_again(breaker: Breaker, clock: Clock) -> None:
    trip(breaker)
    clock.now += 5
    breaker.poll()
    breaker.record(OK)
    breaker.record(ERROR)
    reopened = breaker.record(OK)  # 1 of 3 probes failed: 33% > 25%
    assert reopened is not None and (reopened.source, reopened.target) == (BreakerState.HALF_OPEN, BreakerState.OPEN)
    assert reopened.reason == "probes failed: error rate 33% > 25%"
    assert breaker.since == clock.now
    clock.now += 4
    assert breaker.poll() is None
    clock.now += 1
    assert breaker.poll() is not None and breaker.state == BreakerState.HALF_OPEN


def test_forced_open_never_half_opens_until_released(breaker: Breaker, clock: Clock) -> None:
    forced = breaker.force_open("operator: bad upstream feed")
    assert forced is not None and forced.target == BreakerState.OPEN and breaker.forced
    clock.now += 3600
    assert breaker.poll() is None
    assert breaker.state == BreakerState.OPEN
    released = breaker.release("operator: feed fixed")
    assert released is not None and released.target == BreakerState.CLOSED and not breaker.forced


def test_adopting_the_shared_state_emits_nothing_and_resets_the_counts(breaker: Breaker, clock: Clock) -> None:
    breaker.record(ERROR)
    breaker.adopt(BreakerState.OPEN, since=clock.now - 5, forced=False, reason="tripped by another worker")
    assert breaker.state == BreakerState.OPEN and breaker.reason == "tripped by another worker"
    assert breaker.rates().calls == 0
    transition = breaker.poll()  # its wait started 5 s ago, on the other worker
    assert transition is not None and transition.target == BreakerState.HALF_OPEN
