"""The gateway's request path, with no web framework: route, predict, guard, answer, log.

:class:`Gateway` serves one registered model. The web app (:mod:`firebreak.serving.app`)
parses and checks requests and hands them here in small batches; everything a request
changes (breaker, prediction log, metrics, shadow) happens here, so the tests drive it
directly with an injected clock.

A batch goes: poll the breaker (open turns half-open) → pick who answers
(:mod:`~firebreak.serving.routes`) → predict, guarding the answers and counting the
champion's on the breaker (:mod:`~firebreak.serving.predictor`) → hand the rows to the
challenger in shadow (:mod:`~firebreak.serving.shadow`) → answer and log
(:mod:`~firebreak.serving.records`). What the request path obeys is re-read off it by
:mod:`~firebreak.serving.shared_state`; a breaker transition is shared through
:mod:`~firebreak.serving.breaker_sync` and alerted through :mod:`~firebreak.serving.inbox`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from firebreak.containment.breaker import Breaker, Transition
from firebreak.containment.state import RoutingStore
from firebreak.contracts.online import OnlineContract, Violation
from firebreak.incidents.enums import BreakerState, Route
from firebreak.kinds import kind_for
from firebreak.policy.schema import load_policy
from firebreak.prediction_log import PredictionLog
from firebreak.registry.ledger import AliasLedger
from firebreak.serving import records
from firebreak.serving.breaker_sync import BreakerSync, Published
from firebreak.serving.inbox import BreakerAlerts
from firebreak.serving.logwriter import LogWriter
from firebreak.serving.metrics import ModelMetrics
from firebreak.serving.predictor import GUARDRAIL, Predictor
from firebreak.serving.routes import Routes
from firebreak.serving.scorer import Scorer
from firebreak.serving.shadow import Shadow
from firebreak.serving.shared_state import Aliases, SharedStateFollower
from firebreak.serving.upstream import UpstreamClient, UpstreamSpec, upstream_scorer
from firebreak.settings import Settings

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


class Gateway:
    """Serves one model: ``serve`` answers batches, ``refresh`` follows the shared state.

    Args:
        model: Registered model name with a policy.
        settings: Where the state DB, MLflow and the logs are.
        clock: Wall-clock seconds; the breaker's clock (injected by tests).
        refresh_seconds: How often the shared state is re-read.
        alias_poll_seconds: How often MLflow aliases are re-read even without a ledger change.
        log_interval: How often the buffered log rows are written.
        inbox_alerts: Report a trip (and the recovery) as a generic alert in the alert inbox.
        upstream: The team's own model server, when the gateway fronts it: then it is the champion
            (:mod:`~firebreak.serving.upstream`).
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
        upstream: UpstreamSpec | None = None,
    ) -> None:
        self.model = model
        self.settings = settings
        self.policy = load_policy(model, settings.policies_dir)
        kind = kind_for(self.policy)
        self.contract = OnlineContract.load(settings.resolve(self.policy.contract))
        kind.prepare_contract(self.contract)
        self.guard = kind.answer_guard(settings)
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self._m = ModelMetrics(model)
        self._lock = threading.RLock()
        self.upstream = (
            None
            if upstream is None
            else UpstreamClient(
                upstream,
                timeout_seconds=self.policy.serving.upstream.timeout_seconds,
                max_connections=self.policy.serving.upstream.max_connections,
            )
        )
        self.store = RoutingStore(settings.state_db_url)
        self.ledger = AliasLedger(settings.state_db_url)
        self.breaker = Breaker(model, self.policy.serving.breaker, clock=clock)
        self.sync = BreakerSync(self.breaker, self.store, clock=clock, metrics=self._m)
        self.follower = SharedStateFollower(
            model,
            self.policy,
            settings,
            store=self.store,
            ledger=self.ledger,
            sync=self.sync,
            guard=self.guard,
            lock=self._lock,
            metrics=self._m,
            alias_poll_seconds=alias_poll_seconds,
            upstream=None if self.upstream is None else self._upstream_champion,
        )
        self.routes = Routes(self.policy, settings)
        self.predictor = Predictor(self.policy, self.breaker, self.guard, self._m, on_transition=self._publish)
        self.alerts = BreakerAlerts(model, self.policy, settings.alert_inbox_dir, enabled=inbox_alerts)
        self.predictions = LogWriter(PredictionLog(settings.prediction_log_url), interval=log_interval)
        self.rejections = LogWriter(PredictionLog(settings.rejected_log_dir), interval=log_interval)
        self.shadow = Shadow(model, LogWriter(PredictionLog(settings.shadow_log_dir), interval=log_interval), self._m)
        self._refresher: threading.Thread | None = None
        self._stop = threading.Event()
        self.inputs = list(self.contract.fields)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """First refresh (loads the models), then the background threads."""
        self.refresh()
        self.predictions.start()
        self.rejections.start()
        self._refresher = threading.Thread(target=self._refresh_loop, name="firebreak-refresh", daemon=True)
        self._refresher.start()
        self.shadow.start()

    def close(self) -> None:
        self._stop.set()
        self.shadow.close()
        if self._refresher is not None:
            self._refresher.join(timeout=10)
        self.predictions.close()
        self.rejections.close()
        if self.upstream is not None:
            self.upstream.close()

    def _upstream_champion(self, version: str) -> Scorer:
        assert self.upstream is not None
        return upstream_scorer(self.upstream, self.policy, version=version)

    @property
    def blocking(self) -> bool:
        """Whether answering waits on the network (an upstream): then the app scores off its event loop."""
        return self.upstream is not None

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # the loop must outlive any single failure (an MLflow hiccup)
                log.exception("gateway refresh failed; serving on the last known state")

    def refresh(self) -> None:
        """Re-read routing, breaker and (when the ledger moved) aliases; obey them."""
        self.follower.refresh()

    # -- what the request path reads -------------------------------------------------------

    @property
    def aliases(self) -> Aliases:
        return self.follower.aliases

    @property
    def champion(self) -> Scorer | None:
        return self.follower.aliases.champion

    @champion.setter
    def champion(self, scorer: Scorer | None) -> None:
        with self._lock:
            self.follower.aliases = Aliases(scorer, self.aliases.challenger, self.aliases.fallback)

    @property
    def challenger(self) -> Scorer | None:
        return self.follower.aliases.challenger

    @challenger.setter
    def challenger(self, scorer: Scorer | None) -> None:
        with self._lock:
            self.follower.aliases = Aliases(self.aliases.champion, scorer, self.aliases.fallback)

    @property
    def store_up(self) -> bool:
        return self.follower.store_up

    @property
    def last_refresh(self) -> float | None:
        return self.follower.last_refresh

    def current(self) -> tuple[Scorer | None, str]:
        """Who answers now, and why (for the response headers and ``/serving``)."""
        return self.routes.current(self.follower.state, self.aliases, self.breaker)

    # -- answering -------------------------------------------------------------------

    def serve(self, batch: list[Request]) -> list[Answer]:
        """Answer a batch of checked requests (one model call for all their rows)."""
        with self._lock:
            if transition := self.breaker.poll():
                self._publish(transition)
            aliases = self.aliases
            scorer, why = self.current()
            if scorer is None:
                return [self._disabled(r, why) for r in batch]
            rows = [rec for r in batch for rec in r.records]
            frame = pd.DataFrame({c: [r.get(c) for r in rows] for c in self.inputs})
            fallback = self.routes.containment(aliases)
            probing = self.breaker.state == BreakerState.HALF_OPEN and scorer is not aliases.champion
            outputs, routes = self.predictor.predict(scorer, frame, champion=aliases.champion, fallback=fallback)
            if probing and aliases.champion is not None:
                self.predictor.probe(aliases.champion, frame.iloc[: self.breaker.probes_wanted])
        if aliases.challenger is not None and scorer is aliases.champion:
            self.shadow.offer(aliases.challenger, frame, records.row_ids(batch))
        versions = {scorer.name: scorer.version, GUARDRAIL: scorer.version}
        if fallback is not None:
            versions.setdefault(fallback.name, fallback.version)
        return self._answer(batch, outputs, routes, versions)

    def _publish(self, transition: Transition) -> None:
        """Share a local transition (first writer wins), record it, and raise the alert on a trip."""
        version = self.aliases.champion_version
        published = self.sync.publish(transition, version=version)
        if published is Published.ALONE:  # nobody to share with: this worker's breaker decides alone, and alerts
            self.follower.unreachable()
        self.alerts.transition(transition, version=version, decided=published is not Published.LOST)

    def _answer(
        self, batch: list[Request], outputs: pd.DataFrame, routes: list[str], versions: dict[str, str]
    ) -> list[Answer]:
        """One answer per request (the guardrail rule is logged, not sent), and the prediction log rows."""
        columns = list(outputs.columns)
        predictions = [
            dict(zip(columns, values, strict=True))
            for values in zip(*(outputs[c].tolist() for c in columns), strict=True)
        ]
        now = datetime.now(UTC)
        done = time.perf_counter()
        answers, start = [], 0
        for request in batch:
            n = len(request.records)
            answered = [{k: v for k, v in p.items() if k != GUARDRAIL} for p in predictions[start : start + n]]
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

    # -- what serves now -----------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        scorer, why = self.current()
        return {
            "model": self.model,
            "route": scorer.name if scorer else Route.DISABLED.value,
            "version": scorer.version if scorer else None,
            "why": why,
            "routing": self.follower.state.route,
            "champion": self.aliases.champion_version,
            "upstream": None
            if self.upstream is None
            else {"url": self.upstream.spec.url, "protocol": self.upstream.spec.protocol, "answers_as": "champion"},
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
