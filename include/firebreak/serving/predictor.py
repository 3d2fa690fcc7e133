"""Predicting under watch: every answer guarded, the champion's judged on the breaker.

Whoever answers, the model kind's answer guard checks its answers before a user sees
them (a blocked answer is replaced by the safe one and routed ``guardrail``). The champion is
also judged row by row: an error, an answer under the confidence floor, outside the
output's sanity bound (a price under cost) or blocked by the guard counts against it on
the breaker — as the share of its request's rows, so each request is one call on the
breaker, with its caller, whatever its size. An answer outside the sanity bound is never
served: the containment route answers that row. In half-open, the champion is probed on
the input of the requests the breaker picks; its answers are judged, never returned.

A batch holds several callers' requests. When the champion fails on a batch of several
(an error, or an answer the gateway refuses) and the failure is an answer rather than a
server that did not answer at all, each request is asked again alone: one caller whose
rows make the model fail is charged alone and answered by the fallback, and the other
callers get the champion's answers. Otherwise one caller could trip the breaker for
everyone by sending rows the model fails on into busy traffic. Asking again takes at most
the policy's upstream timeout in all: a server that fails everything slowly does not hold
the batch for one timeout per request; the requests not asked by then are charged and
answered by the fallback together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from firebreak.containment.breaker import Breaker, Call, Transition
from firebreak.errors import UpstreamUnavailable
from firebreak.kinds import AnswerGuard
from firebreak.policy.schema import Policy
from firebreak.serving.metrics import ModelMetrics
from firebreak.serving.scorer import Scorer

log = logging.getLogger(__name__)

# The route of an answer the guard blocked (the user got the safe answer), and the log
# column with the rule that fired.
GUARDRAIL = "guardrail"


class Predictor:
    """Calls the scorer that answers, guards its answers and counts the champion's on the breaker.

    Args:
        policy: The model's policy (output, confidence floor, sanity bound).
        breaker: This worker's breaker.
        guard: The model kind's answer guard, or None.
        metrics: The model's metrics.
        on_transition: Called with each breaker transition a counted call causes.
    """

    def __init__(
        self,
        policy: Policy,
        breaker: Breaker,
        guard: AnswerGuard | None,
        metrics: ModelMetrics,
        on_transition: Callable[[Transition], None],
    ) -> None:
        self.breaker = breaker
        self.guard = guard
        self.on_transition = on_transition
        self.output = policy.features.output
        self.confidence = policy.features.confidence
        self.floor = policy.detection.confidence_floor
        self.sanity = policy.detection.output_floor
        self.retry_seconds = policy.serving.upstream.timeout_seconds  # the time asking again may take, in all
        self._m = metrics

    def predict(
        self,
        scorer: Scorer,
        frame: pd.DataFrame,
        *,
        sizes: Sequence[int],
        callers: Sequence[str],
        champion: Scorer | None,
        fallback: Scorer | None,
    ) -> tuple[pd.DataFrame, list[str]]:
        """The answers to ``frame`` and the route of each row.

        ``frame`` holds the rows of several requests in order: ``sizes`` rows each, from
        ``callers``. ``fallback`` is the containment route's scorer.
        """
        if scorer is not champion:
            return self._guarded(scorer, frame)
        try:
            outputs = scorer.predict(frame).reset_index(drop=True)
            low, insane = self._judge(frame, outputs)  # an answer that is not a number where one is due fails too
        except Exception as exc:  # any model failure is a breaker failure, and the user still gets an answer
            if fallback is not None and _one_by_one(exc, sizes):
                return self._each_alone(scorer, frame, sizes, callers, champion, fallback)
            log.exception("champion v%s failed on %d rows", scorer.version, len(frame))
            if fallback is None:
                self._count(sizes, callers, error=np.ones(len(frame), dtype=bool))
                raise
            return self._failed_over(frame, sizes, callers, fallback)
        routes = [scorer.name] * len(frame)
        blocked = self._guard(frame, outputs, routes)  # already answered safely; the breaker counts them
        bad = np.flatnonzero(insane).tolist()
        if blocked:
            insane = insane.copy()
            insane[list(blocked)] = True
        self._count(sizes, callers, low=low, insane=insane)
        if bad and fallback is not None:
            # Never serve an answer outside the sanity bound (a price under cost): the fallback answers that row.
            replaced = fallback.predict(frame.iloc[bad]).reset_index(drop=True)
            for column in replaced.columns.intersection(outputs.columns):
                outputs.loc[bad, column] = replaced[column].to_numpy()
            for i in bad:
                routes[i] = fallback.name
            self._m.sanity.inc(len(bad))
        return outputs, routes

    def _each_alone(
        self,
        scorer: Scorer,
        frame: pd.DataFrame,
        sizes: Sequence[int],
        callers: Sequence[str],
        champion: Scorer | None,
        fallback: Scorer,
    ) -> tuple[pd.DataFrame, list[str]]:
        """The batch asked again request by request: each is judged, counted and answered on its own."""
        log.warning("champion v%s failed on a batch of %d requests; asking each alone", scorer.version, len(sizes))
        deadline = time.monotonic() + self.retry_seconds
        parts, routes = [], []
        for i, (start, size, caller) in enumerate(zip(_starts(sizes), sizes, callers, strict=True)):
            if time.monotonic() >= deadline:  # out of time: the rest fail over together
                outputs, answered = self._failed_over(
                    frame.iloc[start:].reset_index(drop=True), sizes[i:], callers[i:], fallback
                )
                parts.append(outputs.astype(object))
                routes += answered
                break
            rows = frame.iloc[start : start + size].reset_index(drop=True)
            outputs, answered = self.predict(
                scorer, rows, sizes=[size], callers=[caller], champion=champion, fallback=fallback
            )
            parts.append(outputs.astype(object))
            routes += answered
        # A column one scorer answers and the other does not (a confidence) is None on the other's rows, never NaN.
        combined = pd.concat(parts, ignore_index=True)  # object columns: a missing cell is NaN until replaced
        return combined.where(combined.notna(), None), routes

    def _failed_over(
        self, frame: pd.DataFrame, sizes: Sequence[int], callers: Sequence[str], fallback: Scorer
    ) -> tuple[pd.DataFrame, list[str]]:
        """The champion failed these requests: each is one failed call on the breaker, the fallback answers."""
        self._count(sizes, callers, error=np.ones(len(frame), dtype=bool))
        return self._guarded(fallback, frame)

    def probe(self, champion: Scorer, frame: pd.DataFrame, *, sizes: Sequence[int], callers: Sequence[str]) -> None:
        """Half-open: the champion scores the input the fallback answered; judged on the breaker, never returned.

        A probe of several requests that fails as an answer is asked again request by request
        (see the module docstring): one caller cannot hold the breaker open for everyone.
        """
        try:
            outputs = champion.predict(frame).reset_index(drop=True)
            low, insane = self._judge(frame, outputs)
        except Exception as exc:  # noqa: BLE001 — a failing probe is a failed probe
            if _one_by_one(exc, sizes):
                deadline = time.monotonic() + self.retry_seconds
                for start, size, caller in zip(_starts(sizes), sizes, callers, strict=True):
                    if time.monotonic() >= deadline:
                        break  # the probes not asked are not counted: later requests probe again
                    rows = frame.iloc[start : start + size].reset_index(drop=True)
                    self.probe(champion, rows, sizes=[size], callers=[caller])
                return
            self._count(sizes, callers, error=np.ones(len(frame), dtype=bool))
            return
        self._count(sizes, callers, low=low, insane=insane)

    def _guarded(self, scorer: Scorer, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        outputs = scorer.predict(frame).reset_index(drop=True)
        routes = [scorer.name] * len(frame)
        self._guard(frame, outputs, routes)
        return outputs, routes

    def _guard(self, frame: pd.DataFrame, outputs: pd.DataFrame, routes: list[str]) -> dict[int, str]:
        """The answer guard: a blocked answer was replaced by the safe one.

        Returns the rows blocked and the rule that fired; their route becomes ``guardrail``
        and the rule is logged with them.
        """
        if self.guard is None:
            return {}
        blocked = self.guard.apply(frame, outputs)
        for i, rule in blocked.items():
            routes[i] = GUARDRAIL
            self._m.guardrail(rule)
        return blocked

    def _judge(self, frame: pd.DataFrame, outputs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per row: answered under the confidence floor; answered outside the sanity bound."""
        n = len(frame)
        low = np.zeros(n, dtype=bool)
        if self.confidence in outputs.columns:
            low = outputs[self.confidence].to_numpy(dtype=float) < self.floor
        insane = np.zeros(n, dtype=bool)
        if self.sanity is not None and self.output in outputs.columns:
            base = frame[self.sanity.relative_to].to_numpy(dtype=float)
            insane = outputs[self.output].to_numpy(dtype=float) < base * self.sanity.min_ratio
        return low, insane

    def _count(
        self,
        sizes: Sequence[int],
        callers: Sequence[str],
        *,
        error: np.ndarray | None = None,
        low: np.ndarray | None = None,
        insane: np.ndarray | None = None,
    ) -> None:
        """One breaker call per request: the share of its rows that failed each way, and its caller."""
        single = len(sizes) == sum(sizes)  # one row per request (the usual case): the flags are the shares
        starts = None if single else _starts(sizes)
        counts = np.asarray(sizes, dtype=float)

        def shares(flags: np.ndarray | None) -> list[float]:
            if flags is None:
                return [0.0] * len(sizes)
            if starts is None:
                return flags.astype(float).tolist()
            return (np.add.reduceat(flags.astype(float), starts) / counts).tolist()

        for caller, e, lo, bad in zip(callers, shares(error), shares(low), shares(insane), strict=True):
            if transition := self.breaker.record(Call(e, lo, bad, caller)):
                self.on_transition(transition)


def _starts(sizes: Sequence[int]) -> list[int]:
    """Where each request's rows start in the batch."""
    return np.cumsum([0, *sizes[:-1]]).tolist()


def _one_by_one(exc: Exception, sizes: Sequence[int]) -> bool:
    """Whether a failure on a batch of several requests is worth asking each request alone.

    Not when the server did not answer at all (down, or past its timeout): asking again
    would wait again for every request in the batch.
    """
    return len(sizes) > 1 and not isinstance(exc, UpstreamUnavailable)
