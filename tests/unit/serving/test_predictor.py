"""The predictor on batches of several callers: one caller's failing rows are charged to that caller alone.

A real breaker (the pricing policy's, two callers needed) and plain-function scorers: the
champion fails on any batch holding an ``amount`` of -1 (a row the team's server answers
with a 500), the fallback answers everything.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from firebreak.containment.breaker import Breaker
from firebreak.errors import UpstreamError, UpstreamUnavailable
from firebreak.incidents.enums import BreakerState
from firebreak.policy.schema import load_policy
from firebreak.serving.metrics import ModelMetrics
from firebreak.serving.predictor import Predictor
from firebreak.serving.scorer import Scorer
from firebreak.settings import Settings

POISON = -1.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Champion:
    """Answers a price and a confidence; fails a whole call when any row carries the poison."""

    def __init__(self, failure: type[Exception] = UpstreamError, *, slow: float = 0.0) -> None:
        self.calls: list[int] = []
        self.failure = failure
        self.slow = slow

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.calls.append(len(frame))
        time.sleep(self.slow)
        if (frame["amount"] == POISON).any():
            raise self.failure("upstream answered 500: 'internal error'")
        return pd.DataFrame({"price": frame["amount"] * 2.0, "confidence": 0.9})


def fallback(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"price": frame["amount"] * 1.5})


@pytest.fixture
def predictor_for(firebreak_home: Path):  # type: ignore[no-untyped-def]
    policy = load_policy("pricing", Settings.from_env().policies_dir)
    # Only the failure under test counts: no sanity bound.
    policy = policy.model_copy(update={"detection": policy.detection.model_copy(update={"output_floor": None})})
    clock = Clock()

    def build() -> tuple[Predictor, Breaker, Clock]:
        breaker = Breaker("pricing", policy.serving.breaker, clock=clock)
        return Predictor(policy, breaker, None, ModelMetrics("pricing"), on_transition=lambda t: None), breaker, clock

    return build


def frame_of(amounts: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"amount": amounts})


def test_one_callers_failing_row_is_charged_to_it_alone_and_the_others_get_the_champion(predictor_for) -> None:  # type: ignore[no-untyped-def]
    predictor, breaker, clock = predictor_for()
    champion = Champion()
    scorer, spare = Scorer("champion", "3", champion), Scorer("heuristic", "heuristic", fallback)
    config = breaker.config
    # Busy traffic: every batch holds the attacker's poisoned request beside two callers' good ones.
    for i in range(config.min_calls * 3):
        clock.now += 0.01
        outputs, routes = predictor.predict(
            scorer,
            frame_of([POISON, 10.0, 20.0, 30.0]),
            sizes=[1, 1, 2],
            callers=["attacker", f"alice-{i % 3}", "bob"],
            champion=scorer,
            fallback=spare,
        )
        assert routes == ["heuristic", "champion", "champion", "champion"]
        assert outputs["price"].tolist() == [-1.5, 20.0, 40.0, 60.0]
        # The fallback's answer carries no confidence of its own: None, never a NaN a JSON body cannot hold.
        assert outputs["confidence"].tolist() == [None, 0.9, 0.9, 0.9]
    assert breaker.state == BreakerState.CLOSED, breaker.rates()
    assert 0 < breaker.rates().error_rate < 0.5  # the attacker's calls failed, nobody else's
    # The failed batch, then each request alone.
    assert champion.calls[:4] == [4, 1, 1, 2]


def test_a_failure_every_caller_meets_still_trips_the_breaker(predictor_for) -> None:  # type: ignore[no-untyped-def]
    predictor, breaker, clock = predictor_for()
    scorer, spare = Scorer("champion", "3", Champion()), Scorer("heuristic", "heuristic", fallback)
    for i in range(breaker.config.min_calls):
        clock.now += 0.01
        predictor.predict(
            scorer,
            frame_of([POISON, POISON]),
            sizes=[1, 1],
            callers=[f"c{i}", f"d{i}"],
            champion=scorer,
            fallback=spare,
        )
    assert breaker.state == BreakerState.OPEN


def test_a_server_that_does_not_answer_is_not_asked_again_request_by_request(predictor_for) -> None:  # type: ignore[no-untyped-def]
    predictor, breaker, _ = predictor_for()
    champion = Champion(UpstreamUnavailable)
    scorer, spare = Scorer("champion", "3", champion), Scorer("heuristic", "heuristic", fallback)
    outputs, routes = predictor.predict(
        scorer,
        frame_of([POISON, 10.0, 20.0]),
        sizes=[1, 1, 1],
        callers=["a", "b", "c"],
        champion=scorer,
        fallback=spare,
    )
    assert champion.calls == [3]  # one timeout, not three more
    assert routes == ["heuristic"] * 3
    assert breaker.rates().error_rate == 1.0


def test_half_open_probes_of_one_callers_failing_rows_cannot_hold_the_breaker_open(predictor_for) -> None:  # type: ignore[no-untyped-def]
    predictor, breaker, clock = predictor_for()
    config = breaker.config
    scorer = Scorer("champion", "3", Champion())
    # Trip it with failures two callers see, then wait out the open period.
    for i in range(config.min_calls):
        clock.now += 0.01
        predictor.probe(scorer, frame_of([POISON, POISON]), sizes=[1, 1], callers=[f"x{i}", f"y{i}"])
    assert breaker.state == BreakerState.OPEN
    clock.now += config.open_seconds + 1
    breaker.poll()
    assert breaker.state == BreakerState.HALF_OPEN
    # Probes: the attacker's poisoned request rides in every batch beside healthy callers' requests.
    for i in range(config.half_open_probes):
        predictor.probe(scorer, frame_of([POISON, 10.0, 20.0]), sizes=[1, 1, 1], callers=["attacker", f"p{i}", f"q{i}"])
        if breaker.state != BreakerState.HALF_OPEN:
            break
    assert breaker.state == BreakerState.CLOSED


def test_asking_again_takes_at_most_the_upstream_timeout_in_all(predictor_for) -> None:  # type: ignore[no-untyped-def]
    """A server that fails every request slowly: not one timeout per request; the rest fail over together."""
    predictor, breaker, _ = predictor_for()
    predictor.retry_seconds = 0.5
    champion = Champion(slow=0.2)
    scorer, spare = Scorer("champion", "3", champion), Scorer("heuristic", "heuristic", fallback)
    outputs, routes = predictor.predict(
        scorer,
        frame_of([POISON] * 10),
        sizes=[1] * 10,
        callers=[f"c{i}" for i in range(10)],
        champion=scorer,
        fallback=spare,
    )
    assert len(champion.calls) <= 5, champion.calls  # the batch, then as many alone as 0.5 s allows
    assert routes == ["heuristic"] * 10 and outputs["price"].tolist() == [-1.5] * 10
    assert breaker.rates().calls == 10 and breaker.rates().error_rate == 1.0  # every request charged once
