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
    min_callers=1,  # the state machine on one caller's calls; the per-caller rules are tested below
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


# -- no single caller decides (issue 17) ---------------------------------------------

GUARDED = CONFIG.model_copy(update={"min_callers": 2, "max_calls_per_caller": 6})


def calls(caller: str, outcome: Call, n: int) -> list[Call]:
    return [Call(outcome.error, outcome.low_confidence, outcome.sanity_violation, caller=caller)] * n


def test_one_caller_alone_never_trips_the_breaker_for_everyone(clock: Clock) -> None:
    breaker = Breaker("pricing", GUARDED, clock=clock)
    script = calls("alice", OK, 3) + calls("mallory", ERROR, 40) + calls("bob", OK, 3)
    assert [breaker.record(c) for c in script] == [None] * len(script)
    assert breaker.state == BreakerState.CLOSED
    # Without mallory, 6 calls and no error; with her, capped at her 6 most recent: 50% > 25%.
    assert breaker.rates().calls == 12 and breaker.rates().error_rate == 0.5


def test_a_failure_two_callers_see_trips_within_one_window(clock: Clock) -> None:
    breaker = Breaker("pricing", GUARDED, clock=clock)
    for c in calls("alice", OK, 2) + calls("bob", OK, 2):
        assert breaker.record(c) is None
    clock.now += 1
    transition = None
    for c in [*calls("alice", ERROR, 1), *calls("bob", ERROR, 1), *calls("alice", ERROR, 1), *calls("bob", ERROR, 1)]:
        transition = transition or breaker.record(c)
    assert transition is not None and transition.target == BreakerState.OPEN
    assert transition.reason == "error rate 50% > 25% (over without any one of 2 callers)"
    assert clock.now - 1 < transition.at <= clock.now  # within the 10 s window the failure began in


def test_one_caller_flooding_good_answers_cannot_hide_a_failure_others_see(clock: Clock) -> None:
    breaker = Breaker("pricing", GUARDED, clock=clock)
    for c in calls("flood", OK, 500):
        assert breaker.record(c) is None
    transition = None
    for c in calls("alice", ERROR, 3) + calls("bob", ERROR, 3):
        transition = transition or breaker.record(c)
    # The flood counts its 6 most recent calls: 6 errors in 12 calls, still 40% without alice or bob.
    assert transition is not None and transition.target == BreakerState.OPEN


def test_a_request_weighs_one_call_whatever_its_rows(clock: Clock) -> None:
    breaker = Breaker("pricing", CONFIG, clock=clock)
    breaker.record(Call(low_confidence=1.0, caller="mallory"))  # 1,000 rows under the floor: one call
    for c in calls("alice", OK, 2):
        breaker.record(c)
    assert breaker.rates().calls == 3 and breaker.rates().low_confidence_rate == pytest.approx(1 / 3)
    assert breaker.record(Call(low_confidence=0.25, caller="bob")) is None  # a quarter of bob's rows: 0.25 of a call
    assert breaker.rates().low_confidence_rate == pytest.approx(1.25 / 4)


def half_open(breaker: Breaker, clock: Clock) -> None:
    for c in calls("alice", ERROR, 4) + calls("bob", ERROR, 4):
        breaker.record(c)
    assert breaker.state == BreakerState.OPEN
    clock.now += GUARDED.open_seconds
    assert breaker.poll() is not None and breaker.state == BreakerState.HALF_OPEN


def test_each_caller_fills_at_most_its_share_of_the_probes(clock: Clock) -> None:
    breaker = Breaker("pricing", GUARDED.model_copy(update={"half_open_probes": 4}), clock=clock)
    half_open(breaker, clock)
    assert breaker.probes_from(["mallory"] * 5 + ["alice", "bob", "alice"]) == [0, 1, 5, 6]
    for c in calls("mallory", ERROR, 2):
        assert breaker.record(c) is None
    assert breaker.probes_from(["mallory", "alice"]) == [1]


def test_one_callers_failing_probes_cannot_keep_a_healthy_model_contained(clock: Clock) -> None:
    breaker = Breaker("pricing", GUARDED.model_copy(update={"half_open_probes": 4}), clock=clock)
    half_open(breaker, clock)
    transitions = [
        breaker.record(c) for c in [*calls("mallory", ERROR, 2), *calls("alice", OK, 1), *calls("bob", OK, 1)]
    ]
    assert transitions[-1] is not None and transitions[-1].target == BreakerState.CLOSED


def test_probes_failing_for_several_callers_reopen(clock: Clock) -> None:
    breaker = Breaker("pricing", GUARDED.model_copy(update={"half_open_probes": 4}), clock=clock)
    half_open(breaker, clock)
    transitions = [
        breaker.record(c)
        for c in [
            *calls("alice", ERROR, 1),
            *calls("bob", ERROR, 1),
            *calls("carol", ERROR, 1),
            *calls("mallory", OK, 1),
        ]
    ]
    assert transitions[-1] is not None and transitions[-1].target == BreakerState.OPEN
    assert transitions[-1].reason.startswith("probes failed: error rate 75% > 25% (over without any one of 4 callers)")
