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

A call is one request, whatever its rows: it counts against the champion by the share of
its rows the model raised on, answered under the confidence floor, or answered outside
the output's sanity bound (a price under cost). A request of 1,000 adversarial rows
weighs what one request weighs. The breaker never does I/O: the gateway records the
transitions it returns (state DB, metrics, the alert inbox).

No single caller decides (issue 17): calls carry their caller (the peer address, or a
header a trusted proxy sets), each caller's most recent ``max_calls_per_caller`` count,
and from ``min_callers`` = 2 up a verdict needs that many distinct callers and must hold
*without any one caller's calls* (leave-one-caller-out). One caller sending answers the
model gets wrong never trips the breaker for everyone; a failure two callers see trips
it within one window. Half-open probes follow the same rule: each caller fills at most
its share of the probes, and the breaker re-opens only when the probes fail without any
one caller's.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from firebreak.incidents.enums import BreakerState
from firebreak.policy.schema import CircuitBreaker

# What each rate is called in a reason, and its limit in the policy.
_LIMITS = (
    ("error rate", "max_error_rate"),
    ("low-confidence rate", "max_low_confidence_rate"),
    ("sanity-violation rate", "max_sanity_violation_rate"),
)


@dataclass(frozen=True)
class Call:
    """The outcome of one champion call: a served request or a half-open probe.

    Each outcome is the share of the request's rows it applies to (``True`` is all of
    them), so a request weighs one call whatever its size.
    """

    error: float = 0.0
    low_confidence: float = 0.0
    sanity_violation: float = 0.0
    caller: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error or self.low_confidence or self.sanity_violation)


@dataclass(frozen=True)
class Rates:
    calls: int
    error_rate: float
    low_confidence_rate: float
    sanity_violation_rate: float

    def values(self) -> tuple[float, float, float]:
        return self.error_rate, self.low_confidence_rate, self.sanity_violation_rate

    def breaches(self, config: CircuitBreaker) -> list[str]:
        """The rates over the policy's limits, as readable reasons (empty: within)."""
        found = []
        for (name, limit_name), value in zip(_LIMITS, self.values(), strict=True):
            limit = getattr(config, limit_name)
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


class _Tally:
    """Sums of calls and of each failure share."""

    __slots__ = ("errors", "low", "n", "sanity")

    def __init__(self) -> None:
        self.n = 0
        self.errors = self.low = self.sanity = 0.0

    def add(self, call: Call, sign: int) -> None:
        self.n += sign
        self.errors += sign * call.error
        self.low += sign * call.low_confidence
        self.sanity += sign * call.sanity_violation

    def failures(self) -> tuple[float, float, float]:
        return self.errors, self.low, self.sanity

    def rates(self) -> Rates:
        if self.n <= 0:
            return Rates(0, 0.0, 0.0, 0.0)
        return Rates(self.n, self.errors / self.n, self.low / self.n, self.sanity / self.n)


class _Entry:
    __slots__ = ("at", "call", "live")

    def __init__(self, at: float, call: Call) -> None:
        self.at, self.call, self.live = at, call, True


class _Window:
    """The calls of the last ``seconds``, at most ``per_caller`` (the most recent) of each caller.

    O(1) amortised per call; the leave-one-caller-out verdict costs one pass over the
    callers with failures, and only when the plain rates breach the policy.
    """

    def __init__(self, seconds: float, per_caller: int) -> None:
        self.seconds = seconds
        self.per_caller = per_caller
        self.calls: deque[_Entry] = deque()
        self.total = _Tally()
        self.callers: dict[str, tuple[_Tally, deque[_Entry]]] = {}

    def add(self, at: float, call: Call) -> None:
        entry = _Entry(at, call)
        self.calls.append(entry)
        tally, entries = self.callers.get(call.caller) or self.callers.setdefault(call.caller, (_Tally(), deque()))
        entries.append(entry)
        tally.add(call, 1)
        self.total.add(call, 1)
        if tally.n > self.per_caller:  # this caller's oldest call stops counting
            self._drop(entries.popleft())
        self.expire(at)

    def expire(self, now: float) -> None:
        while self.calls and self.calls[0].at <= now - self.seconds:
            entry = self.calls.popleft()
            if entry.live:
                self.callers[entry.call.caller][1].popleft()  # its caller's oldest live call
                self._drop(entry)

    def _drop(self, entry: _Entry) -> None:
        entry.live = False
        tally, _ = self.callers[entry.call.caller]
        tally.add(entry.call, -1)
        self.total.add(entry.call, -1)
        if tally.n == 0:
            del self.callers[entry.call.caller]

    def rates(self) -> Rates:
        return self.total.rates()

    def verdict(self, config: CircuitBreaker, *, min_calls: int) -> list[str]:
        """The breaches a verdict may rest on (empty: no verdict, or within the policy)."""
        rates = self.total.rates()
        if rates.calls < min_calls or len(self.callers) < config.min_callers:
            return []
        breaches = rates.breaches(config)
        if not breaches or config.min_callers <= 1:
            return breaches
        return _without_any_one(config, self.total, [t for t, _ in self.callers.values()], min_calls=min_calls)

    def clear(self) -> None:
        self.calls.clear()
        self.callers.clear()
        self.total = _Tally()


def _without_any_one(config: CircuitBreaker, total: _Tally, callers: list[_Tally], *, min_calls: int) -> list[str]:
    """The rates that breach the policy whatever single caller's calls are left out.

    Leaving out a caller with no failures of a kind only raises that rate, so only the
    callers with failures are tried; every caller must leave ``min_calls`` behind.
    """
    if total.n - max(t.n for t in callers) < min_calls:
        return []
    found = []
    failures = total.failures()
    for k, ((name, limit_name), value) in enumerate(zip(_LIMITS, total.rates().values(), strict=True)):
        limit = getattr(config, limit_name)
        if value <= limit:
            continue
        lowest = min(
            ((failures[k] - t.failures()[k]) / (total.n - t.n) for t in callers if t.failures()[k] > 0),
            default=value,
        )
        if lowest > limit:
            found.append(f"{name} {value:.0%} > {limit:.0%} (over without any one of {len(callers)} callers)")
    return found


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
        self._window = _Window(config.window_seconds, config.max_calls_per_caller)
        # Each caller fills at most its share of the probes, so several callers always decide.
        self._probe_share = math.ceil(config.half_open_probes / config.min_callers)
        self._probes = _Window(math.inf, self._probe_share)

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
            self._probes.clear()
            return self._move(BreakerState.HALF_OPEN, f"open for {self.config.open_seconds:g} s: probing the champion")
        return None

    @property
    def probes_wanted(self) -> int:
        """How many more half-open probes the champion needs before a verdict."""
        if self._state != BreakerState.HALF_OPEN:
            return 0
        return self.config.half_open_probes - self._probes.total.n

    def probes_from(self, callers: Iterable[str]) -> list[int]:
        """Which of these requests (by their callers, in order) to probe: the probes still wanted, each caller's share."""
        wanted = self.probes_wanted
        taken: dict[str, int] = {}
        chosen: list[int] = []
        for i, caller in enumerate(callers):
            if len(chosen) >= wanted:
                break
            entry = self._probes.callers.get(caller)
            count = (entry[0].n if entry else 0) + taken.get(caller, 0)
            if count < self._probe_share:
                chosen.append(i)
                taken[caller] = taken.get(caller, 0) + 1
        return chosen

    def rates(self) -> Rates:
        self._window.expire(self.clock())
        return self._window.rates()

    # -- recording -------------------------------------------------------------------

    def record(self, call: Call) -> Transition | None:
        """Count one champion call: a served request (closed) or a probe (half-open)."""
        now = self.clock()
        if self._state == BreakerState.CLOSED:
            self._window.add(now, call)
            breaches = self._window.verdict(self.config, min_calls=self.config.min_calls)
            if breaches:
                return self._move(BreakerState.OPEN, "; ".join(breaches), self._window.rates())
            return None
        if self._state == BreakerState.HALF_OPEN and self.probes_wanted > 0:
            self._probes.add(now, call)
            if self.probes_wanted > 0:
                return None
            rates = self._probes.rates()
            breaches = self._probes.verdict(self.config, min_calls=1)
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
            self._probes.clear()
        self._state, self.since, self.forced, self.reason = state, since, forced, reason

    def _move(self, target: BreakerState, reason: str, rates: Rates | None = None) -> Transition:
        source = self._state
        self._state = target
        self.since = self.clock()
        self.reason = reason
        self._window.clear()
        if target != BreakerState.HALF_OPEN:
            self._probes.clear()
        return Transition(self.model, source, target, self.since, reason, rates.to_dict() if rates else {})
