"""The serving gateway's circuit breaker, as a state machine with an injected clock.

closed ──(window rates over the policy)──▶ open ──(open_seconds)──▶ half_open
  ▲                                         ▲                          │
  └──────(probes within the policy)─────────┼──────────────────────────┤
                                            └──(probes over the policy)┘

The champion serves only while the breaker is closed. Open and half-open serve the
policy's fallback. In half-open, the champion is *probed*: it scores the same live input
beside the fallback, and its answer is judged but never returned — unlike a breaker in
front of a network call, a wrong answer from a model is harm to a user, not a retryable
failure, so probes must not reach users.

A call counts against the champion when it raised, answered under the confidence floor,
or broke the output's sanity bound (a price under cost). The breaker never does I/O: the
gateway records the transitions it returns (state DB, metrics, the alert inbox).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from firebreak.incidents.enums import BreakerState
from firebreak.policy.schema import CircuitBreaker


@dataclass(frozen=True)
class Call:
    """The outcome of one champion call (a served request or a half-open probe)."""

    error: bool = False
    low_confidence: bool = False
    sanity_violation: bool = False

    @property
    def failed(self) -> bool:
        return self.error or self.low_confidence or self.sanity_violation


@dataclass(frozen=True)
class Rates:
    calls: int
    error_rate: float
    low_confidence_rate: float
    sanity_violation_rate: float

    def breaches(self, config: CircuitBreaker) -> list[str]:
        """The rates over the policy's limits, as readable reasons (empty: within)."""
        found = []
        for name, value, limit in (
            ("error rate", self.error_rate, config.max_error_rate),
            ("low-confidence rate", self.low_confidence_rate, config.max_low_confidence_rate),
            ("sanity-violation rate", self.sanity_violation_rate, config.max_sanity_violation_rate),
        ):
            if value > limit:
                found.append(f"{name} {value:.0%} > {limit:.0%}")
        return found

    def to_dict(self) -> dict[str, float]:
        return {
            "calls": self.calls,
            "error_rate": round(self.error_rate, 4),
            "low_confidence_rate": round(self.low_confidence_rate, 4),
            "sanity_violation_rate": round(self.sanity_violation_rate, 4),
        }


@dataclass(frozen=True)
class Transition:
    """A change of state, for the caller to record (state DB, metrics, alert)."""

    model: str
    source: BreakerState
    target: BreakerState
    at: float
    reason: str
    rates: dict[str, float] = field(default_factory=dict)


class _Window:
    """Counts of the calls in the last ``seconds``; O(1) amortised per call."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls: deque[tuple[float, Call]] = deque()
        self.errors = self.low = self.sanity = 0

    def add(self, at: float, call: Call) -> None:
        self.calls.append((at, call))
        self._count(call, 1)
        self.expire(at)

    def expire(self, now: float) -> None:
        while self.calls and self.calls[0][0] <= now - self.seconds:
            self._count(self.calls.popleft()[1], -1)

    def _count(self, call: Call, sign: int) -> None:
        self.errors += sign * call.error
        self.low += sign * call.low_confidence
        self.sanity += sign * call.sanity_violation

    def rates(self) -> Rates:
        n = len(self.calls)
        if not n:
            return Rates(0, 0.0, 0.0, 0.0)
        return Rates(n, self.errors / n, self.low / n, self.sanity / n)

    def clear(self) -> None:
        self.calls.clear()
        self.errors = self.low = self.sanity = 0


class Breaker:
    """One model's breaker in one gateway worker.

    Args:
        model: The model it guards (named in transitions).
        config: The policy's ``serving.breaker`` section.
        clock: Seconds since the epoch; injected so tests step time exactly. Wall-clock
            time because workers share ``since`` through the state DB.
    """

    def __init__(self, model: str, config: CircuitBreaker, *, clock: Callable[[], float] = time.time) -> None:
        self.model = model
        self.config = config
        self.clock = clock
        self._state = BreakerState.CLOSED
        self.since = clock()
        self.forced = False
        self.reason = "initial"
        self._window = _Window(config.window_seconds)
        self._probes: list[Call] = []

    # -- reading ---------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The state now; open turns half-open once ``open_seconds`` passed (unless forced)."""
        return self._state

    def poll(self) -> Transition | None:
        """Advance time-driven transitions (open → half-open); call before routing a request."""
        if (
            self._state == BreakerState.OPEN
            and not self.forced
            and self.clock() - self.since >= self.config.open_seconds
        ):
            self._probes = []
            return self._move(BreakerState.HALF_OPEN, f"open for {self.config.open_seconds:g} s: probing the champion")
        return None

    @property
    def probes_wanted(self) -> int:
        """How many more half-open probes the champion needs before a verdict."""
        if self._state != BreakerState.HALF_OPEN:
            return 0
        return self.config.half_open_probes - len(self._probes)

    def rates(self) -> Rates:
        self._window.expire(self.clock())
        return self._window.rates()

    # -- recording -------------------------------------------------------------------

    def record(self, call: Call) -> Transition | None:
        """Count one champion call: a served answer (closed) or a probe (half-open)."""
        now = self.clock()
        if self._state == BreakerState.CLOSED:
            self._window.add(now, call)
            rates = self._window.rates()
            if rates.calls < self.config.min_calls:
                return None
            breaches = rates.breaches(self.config)
            if breaches:
                return self._move(BreakerState.OPEN, "; ".join(breaches), rates)
            return None
        if self._state == BreakerState.HALF_OPEN and self.probes_wanted > 0:
            self._probes.append(call)
            if self.probes_wanted > 0:
                return None
            probes = _Window(float("inf"))
            for probe in self._probes:
                probes.add(now, probe)
            rates = probes.rates()
            breaches = rates.breaches(self.config)
            if breaches:
                return self._move(BreakerState.OPEN, "probes failed: " + "; ".join(breaches), rates)
            return self._move(BreakerState.CLOSED, f"{rates.calls} probes within the policy", rates)
        return None  # open: the champion is not called

    def force_open(self, reason: str) -> Transition | None:
        """Open and stay open until :meth:`release` (an operator or an incident decided)."""
        self.forced = True
        if self._state == BreakerState.OPEN:
            self.reason = reason
            return None
        return self._move(BreakerState.OPEN, reason)

    def release(self, reason: str) -> Transition | None:
        """Lift a forced open: the breaker closes and counts afresh."""
        self.forced = False
        if self._state == BreakerState.CLOSED:
            return None
        return self._move(BreakerState.CLOSED, reason)

    def adopt(self, state: BreakerState, *, since: float, forced: bool, reason: str) -> None:
        """Take the shared state another worker (or an operator) recorded; no transition is emitted."""
        if state != self._state:
            self._window.clear()
            self._probes = []
        self._state, self.since, self.forced, self.reason = state, since, forced, reason

    def _move(self, target: BreakerState, reason: str, rates: Rates | None = None) -> Transition:
        source = self._state
        self._state = target
        self.since = self.clock()
        self.reason = reason
        self._window.clear()
        if target != BreakerState.HALF_OPEN:
            self._probes = []
        return Transition(self.model, source, target, self.since, reason, rates.to_dict() if rates else {})
