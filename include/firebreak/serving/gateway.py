"""The gateway's decisions, with no web framework: route, predict, guard, log, shadow.

:class:`Gateway` serves one registered model. The web app (:mod:`firebreak.serving.app`)
parses and checks requests and hands them here in small batches; everything a request
changes (breaker, prediction log, metrics, shadow) happens here, so the tests drive it
directly with an injected clock.

Shared state and what each worker does with it:

* **Routing** (state DB, moved by the incident DAG's contain/restore steps) and the
  **breaker** row (compare-and-set by whichever worker trips first, or an operator) are
  re-read every ``refresh_seconds`` by a background thread: a change is obeyed by every
  worker within that interval, with no restart.
* **Aliases** (MLflow registry): every alias move Firebreak makes writes the alias
  ledger first, so the refresh re-reads MLflow when the ledger changes (and every
  ``alias_poll_seconds`` for moves made outside Firebreak); a new champion is loaded
  off the request path and swapped in whole.
* **State DB unreachable** (fail-safe): the gateway keeps serving on the last state it
  read, its own breaker keeps counting and tripping locally, every request is answered
  and logged, and ``firebreak_state_store_up`` drops to 0 for the alert. A gateway that
  has never read the routing state serves the policy's containment route, not the
  champion: it cannot know whether an incident contained the model.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from firebreak.containment.breaker import Breaker, Call, Transition
from firebreak.containment.state import RoutingStore
from firebreak.contracts.online import OnlineContract, Violation
from firebreak.incidents.enums import Alias, BreakerState, Route
from firebreak.kinds import kind_for
from firebreak.policy.schema import load_policy
from firebreak.prediction_log import PredictionLog
from firebreak.registry.ledger import AliasLedger
from firebreak.serving import records
from firebreak.serving.breaker_sync import BreakerSync, Published
from firebreak.serving.inbox import BreakerAlerts
from firebreak.serving.logwriter import LogWriter
from firebreak.serving.metrics import ModelMetrics
from firebreak.serving.scorer import Scorer, heuristic_scorer, model_scorer
from firebreak.settings import Settings

if TYPE_CHECKING:
    from firebreak.registry.mlflow_registry import Registry

log = logging.getLogger(__name__)


@dataclass
class Request:
    """One checked request: its rows reach the model together."""

    request_id: str
    records: list[dict[str, Any]]
    received: float = field(default_factory=time.perf_counter)


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    route: str
    version: str


@dataclass
class _Shared:
    """What the last refresh read; replaced whole, so readers never see half an update."""

    route: str | None = None
    route_reason: str = ""
    ledger_mark: str | None = None


class Gateway:
    """Serves one model: ``serve`` answers batches, ``refresh`` follows the shared state.

    Args:
        model: Registered model name with a policy.
        settings: Where the state DB, MLflow and the logs are.
        clock: Wall-clock seconds; the breaker's clock (injected by tests).
        refresh_seconds: How often the shared state is re-read.
        alias_poll_seconds: How often MLflow aliases are re-read even without a ledger change.
        inbox_alerts: Report a trip (and the recovery) as a generic alert in the alert inbox.
    """

    def __init__(
        self,
        model: str,
        settings: Settings,
        *,
        clock: Any = time.time,
        refresh_seconds: float = 0.2,
        alias_poll_seconds: float = 30.0,
        log_interval: float = 1.0,
        inbox_alerts: bool = True,
    ) -> None:
        self.model = model
        self.settings = settings
        self.policy = load_policy(model, settings.policies_dir)
        self.contract = OnlineContract.load(settings.resolve(self.policy.contract))
        kind = kind_for(self.policy)
        kind.prepare_contract(self.contract)
        self.guard = kind.answer_guard(settings)
        self.store = RoutingStore(settings.state_db_url)
        self.ledger = AliasLedger(settings.state_db_url)
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.alias_poll_seconds = alias_poll_seconds
        self.breaker = Breaker(model, self.policy.serving.breaker, clock=clock)
        self._m = ModelMetrics(model)
        self.sync = BreakerSync(self.breaker, self.store, clock=clock, metrics=self._m)
        self.alerts = BreakerAlerts(model, self.policy, settings.alert_inbox_dir, enabled=inbox_alerts)
        self.heuristic = heuristic_scorer(self.policy, settings)
        self.champion: Scorer | None = None
        self.challenger: Scorer | None = None
        self.fallback_model: Scorer | None = None
        self.shared = _Shared()
        self.store_up = False
        self.last_refresh: float | None = None
        self._aliases_read_at = -math.inf
        self._lock = threading.RLock()
        self._registry: Registry | None = None
        self.predictions = LogWriter(PredictionLog(settings.prediction_log_dir), interval=log_interval)
        self.rejections = LogWriter(PredictionLog(settings.rejected_log_dir), interval=log_interval)
        self.shadow_log = LogWriter(PredictionLog(settings.shadow_log_dir), interval=log_interval)
        self._shadow_queue: queue.Queue[tuple[Scorer, pd.DataFrame, list[str]] | None] = queue.Queue(maxsize=256)
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        out = self.policy.features
        self.inputs = list(self.contract.fields)
        self.output = out.output
        self.confidence = out.confidence
        self.floor = self.policy.detection.confidence_floor
        self.sanity = self.policy.detection.output_floor

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """First refresh (loads the models), then the background threads."""
        self.refresh()
        for writer in (self.predictions, self.rejections, self.shadow_log):
            writer.start()
        for target, name in ((self._refresh_loop, "refresh"), (self._shadow_loop, "shadow")):
            thread = threading.Thread(target=target, name=f"firebreak-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        self._shadow_queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        for writer in (self.predictions, self.rejections, self.shadow_log):
            writer.close()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # the loop must outlive any single failure (an MLflow hiccup)
                log.exception("gateway refresh failed; serving on the last known state")

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from firebreak.registry.mlflow_registry import Registry

            self._registry = Registry(self.settings, self.ledger)
        return self._registry

    # -- following the shared state ----------------------------------------------------

    def refresh(self) -> None:
        """Re-read routing, breaker and (when the ledger moved) aliases; obey them."""
        try:
            routing = self.store.get_routing(self.model)
            row = self.store.get_breaker(self.model)
            mark = self.ledger.mark(self.model)
        except sa.exc.SQLAlchemyError as exc:
            if self.store_up or self.last_refresh is None:
                log.error("state DB unreachable (%s): serving on the last known state", exc.__class__.__name__)
            self.store_up = False
            self._m.store_up.set(0)
            return
        self.store_up = True
        self._m.store_up.set(1)
        now = time.monotonic()
        if (
            mark != self.shared.ledger_mark
            or self.champion is None
            or now - self._aliases_read_at > self.alias_poll_seconds
        ):
            self._load_aliases()
            self._aliases_read_at = now
            if self.guard is not None:  # activating a guardrail version writes the ledger too
                self.guard.reload()
        with self._lock:
            self.shared = _Shared(
                route=routing.route if routing else Route.CHAMPION,
                route_reason=routing.reason if routing else "no routing recorded: champion",
                ledger_mark=mark,
            )
            self.sync.follow(row, serving=self.champion.version if self.champion else None)
        self.last_refresh = time.time()

    def _load_aliases(self) -> None:
        reg = self.registry
        loaded: dict[str, Scorer | None] = {}
        for alias, current in (
            (Alias.CHAMPION, self.champion),
            (Alias.CHALLENGER, self.challenger),
            (Alias.FALLBACK, self.fallback_model),
        ):
            version = reg.version_for(self.model, alias)
            if version is None:
                loaded[alias] = None
            elif current is not None and current.version == version.version:
                loaded[alias] = current
            else:
                name = {Alias.CHAMPION: "champion", Alias.CHALLENGER: "challenger", Alias.FALLBACK: "fallback_model"}
                loaded[alias] = model_scorer(reg, version, self.policy, name=name[alias])
                log.info("loaded %s v%s as %s", self.model, version.version, alias)
        with self._lock:
            previous = self.champion.version if self.champion else None
            self.champion = loaded[Alias.CHAMPION]
            self.challenger = loaded[Alias.CHALLENGER]
            self.fallback_model = loaded[Alias.FALLBACK]
            self.sync.champion_loaded(previous, self.champion.version if self.champion else None)
            self._m.version.set(float(self.champion.version) if self.champion else 0)

    def _publish(self, transition: Transition) -> None:
        """Share a local transition (first writer wins), record it, and raise the alert on a trip."""
        version = self.champion.version if self.champion else None
        published = self.sync.publish(transition, version=version)
        if published is Published.ALONE:  # nobody to share with: this worker's breaker decides alone, and alerts
            self.store_up = False
            self._m.store_up.set(0)
        self.alerts.transition(transition, version=version, decided=published is not Published.LOST)

    # -- answering -------------------------------------------------------------------

    def containment_scorer(self) -> Scorer | None:
        route = self.policy.containment.route
        if route == Route.FALLBACK_MODEL:
            return self.fallback_model or self.heuristic
        if route == Route.HEURISTIC:
            return self.heuristic
        return None

    def current(self) -> tuple[Scorer | None, str]:
        """Who answers now, and why (for the response headers and ``/serving``)."""
        route = self.shared.route
        if route is None:
            return self.containment_scorer(), "routing state never read: containment route (fail-safe)"
        if route == Route.DISABLED:
            return None, f"disabled: {self.shared.route_reason}"
        if route == Route.HEURISTIC:
            return self.heuristic, self.shared.route_reason
        if route == Route.FALLBACK_MODEL:
            return self.fallback_model or self.heuristic, self.shared.route_reason
        if self.champion is None:
            return self.containment_scorer(), "no champion alias: containment route"
        if self.breaker.state != BreakerState.CLOSED:
            return self.containment_scorer(), f"breaker {self.breaker.state}: {self.breaker.reason}"
        return self.champion, "champion"

    def serve(self, batch: list[Request]) -> list[Answer]:
        """Answer a batch of checked requests (one model call for all their rows)."""
        with self._lock:
            transition = self.breaker.poll()
            if transition:
                self._publish(transition)
            scorer, why = self.current()
            if scorer is None:
                return [self._disabled(r, why) for r in batch]
            rows = [rec for r in batch for rec in r.records]
            frame = pd.DataFrame({c: [r.get(c) for r in rows] for c in self.inputs})
            probing = self.breaker.state == BreakerState.HALF_OPEN and scorer is not self.champion
            outputs, routes = self._predict(scorer, frame)
            if probing and self.champion is not None:
                self._probe(frame.iloc[: self.breaker.probes_wanted])
        if self.challenger is not None and scorer is self.champion:
            self._shadow(frame, batch)
        return self._answer(batch, frame, outputs, routes, scorer)

    def _predict(self, scorer: Scorer, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """Predict; for the champion, count each row on the breaker and guard its answers."""
        fallback = self.containment_scorer()
        if scorer is not self.champion:
            outputs = scorer.predict(frame).reset_index(drop=True)
            routes = [scorer.name] * len(frame)
            self._guard(frame, outputs, routes)
            return outputs, routes
        try:
            outputs = scorer.predict(frame).reset_index(drop=True)
        except Exception:  # any model failure is a breaker failure, and the user still gets an answer
            log.exception("champion v%s failed on %d rows", scorer.version, len(frame))
            for _ in range(len(frame)):
                if transition := self.breaker.record(Call(error=True)):
                    self._publish(transition)
            if fallback is None:
                raise
            outputs = fallback.predict(frame).reset_index(drop=True)
            routes = [fallback.name] * len(frame)
            self._guard(frame, outputs, routes)
            return outputs, routes
        low, insane = self._judge(frame, outputs)
        routes = [scorer.name] * len(frame)
        blocked = self._guard(frame, outputs, routes)  # already answered safely; the breaker counts them
        for i in range(len(frame)):
            call = Call(low_confidence=low[i], sanity_violation=insane[i] or i in blocked)
            if transition := self.breaker.record(call):
                self._publish(transition)
        bad = [i for i, flag in enumerate(insane) if flag]
        if bad and fallback is not None:
            # Never serve an answer outside the sanity bound (a price under cost): the fallback answers that row.
            replaced = fallback.predict(frame.iloc[bad]).reset_index(drop=True)
            for column in replaced.columns.intersection(outputs.columns):
                outputs.loc[bad, column] = replaced[column].to_numpy()
            for i in bad:
                routes[i] = fallback.name
            self._m.sanity.inc(len(bad))
        if self.confidence in outputs.columns:
            for value in outputs[self.confidence].to_numpy():
                self._m.confidence.observe(float(value))
        return outputs, routes

    def _guard(self, frame: pd.DataFrame, outputs: pd.DataFrame, routes: list[str]) -> dict[int, str]:
        """The model kind's answer guard: a blocked answer was replaced by the safe one.

        Returns the rows blocked and the rule that fired; their route becomes ``guardrail``
        and the rule is logged with them.
        """
        if self.guard is None:
            return {}
        blocked = self.guard.apply(frame, outputs)
        for i, rule in blocked.items():
            routes[i] = "guardrail"
            self._m.guardrail(rule)
        return blocked

    def _judge(self, frame: pd.DataFrame, outputs: pd.DataFrame) -> tuple[list[bool], list[bool]]:
        n = len(frame)
        low = [False] * n
        if self.confidence in outputs.columns:
            low = (outputs[self.confidence].to_numpy(dtype=float) < self.floor).tolist()
        insane = [False] * n
        if self.sanity is not None and self.output in outputs.columns:
            base = frame[self.sanity.relative_to].to_numpy(dtype=float)
            insane = (outputs[self.output].to_numpy(dtype=float) < base * self.sanity.min_ratio).tolist()
        return low, insane

    def _probe(self, frame: pd.DataFrame) -> None:
        assert self.champion is not None
        try:
            outputs = self.champion.predict(frame).reset_index(drop=True)
            low, insane = self._judge(frame, outputs)
            calls = [Call(low_confidence=lo, sanity_violation=bad) for lo, bad in zip(low, insane, strict=True)]
        except Exception:  # noqa: BLE001 — a failing probe is a failed probe
            calls = [Call(error=True)] * len(frame)
        for call in calls:
            if transition := self.breaker.record(call):
                self._publish(transition)

    def _answer(
        self, batch: list[Request], frame: pd.DataFrame, outputs: pd.DataFrame, routes: list[str], scorer: Scorer
    ) -> list[Answer]:
        columns = list(outputs.columns)
        predictions = [
            dict(zip(columns, values, strict=True))
            for values in zip(*(outputs[c].tolist() for c in columns), strict=True)
        ]
        now = datetime.now(UTC)
        done = time.perf_counter()
        fallback = self.containment_scorer()
        versions = {scorer.name: scorer.version, "guardrail": scorer.version}
        if fallback is not None:
            versions.setdefault(fallback.name, fallback.version)
        answers, start = [], 0
        for request in batch:
            n = len(request.records)
            answered = [{k: v for k, v in p.items() if k != "guardrail"} for p in predictions[start : start + n]]
            route = routes[start]
            self._m.answered(route, "ok", done - request.received, n)
            answers.append(Answer(200, {"predictions": answered}, route, versions.get(route, route)))
            start += n
        self.predictions.add(
            records.prediction_rows(self.model, batch, predictions, routes, versions, ts=now, done=done)
        )
        return answers

    def _disabled(self, request: Request, why: str) -> Answer:
        self._m.answered(Route.DISABLED, "disabled", time.perf_counter() - request.received, 0)
        self.reject(request.request_id, 503, why, [], received=request.received)
        return Answer(503, {"error": f"model {self.model} is not serving: {why}"}, Route.DISABLED, "")

    def reject(
        self,
        request_id: str,
        status: int,
        reason: str,
        violations: list[Violation],
        *,
        received: float,
        body: str = "",
    ) -> None:
        """Log a refused request with its reason (the model never saw it)."""
        for v in violations:
            self._m.violation(v.field, v.rule)
        self._m.answered("rejected", f"http_{status}", time.perf_counter() - received, 0)
        row = records.rejection_row(self.model, request_id, status, reason, violations, body, ts=datetime.now(UTC))
        self.rejections.add([row])

    # -- shadow --------------------------------------------------------------------------

    def _shadow(self, frame: pd.DataFrame, batch: list[Request]) -> None:
        assert self.challenger is not None
        ids = records.row_ids(batch)
        try:
            self._shadow_queue.put_nowait((self.challenger, frame, ids))
        except queue.Full:  # shadow never slows the answer: drop, and count it
            self._m.shadowed("dropped")

    def _shadow_loop(self) -> None:
        while (item := self._shadow_queue.get()) is not None:
            challenger, frame, ids = item
            try:
                outputs = challenger.predict(frame).reset_index(drop=True)
            except Exception:  # noqa: BLE001 — a failing challenger never fails a request
                log.exception("challenger v%s failed in shadow", challenger.version)
                self._m.shadowed("error", len(ids))
                continue
            rows = records.shadow_rows(self.model, ids, challenger.version, outputs, ts=datetime.now(UTC))
            self.shadow_log.add(rows)
            self._m.shadowed("ok", len(ids))

    # -- what serves now -----------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        scorer, why = self.current()
        return {
            "model": self.model,
            "route": scorer.name if scorer else Route.DISABLED.value,
            "version": scorer.version if scorer else None,
            "why": why,
            "routing": self.shared.route,
            "champion": self.champion.version if self.champion else None,
            "challenger": self.challenger.version if self.challenger else None,
            "fallback": self.policy.containment.route.value,
            "breaker": {
                "state": self.breaker.state.value,
                "since": self.breaker.since,
                "forced": self.breaker.forced,
                "reason": self.breaker.reason,
                **self.breaker.rates().to_dict(),
            },
            "state_store_up": self.store_up,
            "last_refresh": self.last_refresh,
            "contract": {"name": self.contract.name, "fields": self.inputs, "batch_only": self.contract.batch_only},
        }
