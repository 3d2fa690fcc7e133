"""The gateway's request path, with no web framework: route, predict, guard, answer, log.

:class:`Gateway` serves one registered model. The web app (:mod:`firebreak.serving.app`)
parses and checks requests and hands them here in small batches; everything a request
changes (breaker, prediction log, metrics, shadow) happens here, so the tests drive it
directly with an injected clock.

A batch goes: poll the breaker (open turns half-open) → pick who answers
(:mod:`~firebreak.serving.routes`) → predict, guarding the answers and counting each
request once, with its caller, on the breaker (:mod:`~firebreak.serving.predictor`) →
write the log rows to this worker's journal (:mod:`~firebreak.serving.journal`) → answer.
Nothing else happens on the request path, and nothing on it waits for the state DB:

* the journal is drained into the Parquet logs, and the challenger shadows the champion's
  rows, by the background drainer (:mod:`~firebreak.serving.background`, its own process
  under ``firebreak serve``);
* what the request path obeys is re-read off it by :mod:`~firebreak.serving.shared_state`;
* a breaker transition is queued for :mod:`~firebreak.serving.breaker_sync`'s writer
  thread, which shares it and raises the alert through :mod:`~firebreak.serving.inbox`.
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
from firebreak.contracts.online import Violation
from firebreak.incidents.enums import BreakerState, Route
from firebreak.kinds import kind_for
from firebreak.policy.schema import load_policy
from firebreak.registry.ledger import AliasLedger
from firebreak.serving import records
from firebreak.serving.background import Background, Drainer, load_contract
from firebreak.serving.breaker_sync import STATE_DB_TIMEOUT, BreakerSync, Published
from firebreak.serving.inbox import BreakerAlerts
from firebreak.serving.journal import PREDICTION, REJECTION, JournalWriter, journal_dir
from firebreak.serving.metrics import ModelMetrics
from firebreak.serving.predictor import GUARDRAIL, Predictor
from firebreak.serving.routes import Routes
from firebreak.serving.scorer import Scorer
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
    caller: str = ""  # who sent it (the peer address, or the trusted caller header): the breaker counts by it


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
        log_interval: How often the journal is drained into the logs (by the embedded drainer).
        inbox_alerts: Report a trip (and the recovery) as a generic alert in the alert inbox.
        upstream: The team's own model server, when the gateway fronts it: then it is the champion
            (:mod:`~firebreak.serving.upstream`).
        drain: Run the drainer on a thread of this process when started; off when a
            separate drainer process serves the journal (``firebreak serve``).
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
        drain: bool = True,
    ) -> None:
        self.model = model
        self.settings = settings
        self.policy = load_policy(model, settings.policies_dir)
        self.contract = load_contract(self.policy, settings)
        self.guard = kind_for(self.policy).answer_guard(settings)
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self._m = ModelMetrics(model, self.contract.fields)
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
        # Statements of the gateway wait a short while for a lock, never the tasks' 30 s.
        self.store = RoutingStore(settings.state_db_url, timeout=STATE_DB_TIMEOUT)
        self.ledger = AliasLedger(settings.state_db_url, timeout=STATE_DB_TIMEOUT)
        self.breaker = Breaker(model, self.policy.serving.breaker, clock=clock)
        self.journal = JournalWriter(journal_dir(settings.home, model))
        self.sync = BreakerSync(
            self.breaker,
            self.store,
            clock=clock,
            metrics=self._m,
            outbox=self.journal.folder,
            on_outcome=self._published,
            worker=self.journal.writer,
        )
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
        self.drainer = Drainer(model, settings, policy=self.policy, metrics=self._m)
        self.background = Background(self.drainer, interval=log_interval) if drain else None
        self._refresher: threading.Thread | None = None
        self._stop = threading.Event()
        self.inputs = list(self.contract.fields)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """First refresh (loads the models), then the refresh thread (and the embedded drainer)."""
        self.refresh()
        self._refresher = threading.Thread(target=self._refresh_loop, name="firebreak-refresh", daemon=True)
        self._refresher.start()
        if self.background is not None:
            self.background.start()

    def close(self) -> None:
        """Stop: pending breaker writes get their first attempt, the journal is sealed (and drained, if embedded)."""
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(timeout=10)
        self.sync.close()
        self.journal.close()
        if self.background is not None:
            self.background.close()
        if self.upstream is not None:
            self.upstream.close()

    def drain(self) -> int:
        """Drain the journal into the logs now (what the drainer does every ``log_interval``)."""
        return self.drainer.drain()

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
        """Answer a batch of checked requests (one model call for all their rows); journaled before returned."""
        with self._lock:
            if transition := self.breaker.poll():
                self._publish(transition)
            aliases = self.aliases
            scorer, why = self.current()
            if scorer is None:
                return [self._disabled(r, why) for r in batch]
            rows = [rec for r in batch for rec in r.records]
            frame = pd.DataFrame({c: [r.get(c) for r in rows] for c in self.inputs})
            sizes = [len(r.records) for r in batch]
            callers = [r.caller for r in batch]
            fallback = self.routes.containment(aliases)
            probing = self.breaker.state == BreakerState.HALF_OPEN and scorer is not aliases.champion
            outputs, routes = self.predictor.predict(
                scorer, frame, sizes=sizes, callers=callers, champion=aliases.champion, fallback=fallback
            )
            if probing and aliases.champion is not None:
                self._probe(aliases.champion, frame, sizes, callers)
        shadow = aliases.challenger.version if aliases.challenger is not None and scorer is aliases.champion else None
        versions = {scorer.name: scorer.version, GUARDRAIL: scorer.version}
        if fallback is not None:
            versions.setdefault(fallback.name, fallback.version)
        return self._answer(batch, outputs, routes, versions, shadow)

    def _probe(self, champion: Scorer, frame: pd.DataFrame, sizes: list[int], callers: list[str]) -> None:
        """Half-open: probe the champion on the requests the breaker picks (each caller its share)."""
        chosen = self.breaker.probes_from(callers)
        if not chosen:
            return
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        rows = [j for i in chosen for j in range(starts[i], starts[i] + sizes[i])]
        self.predictor.probe(
            champion,
            frame.iloc[rows].reset_index(drop=True),
            sizes=[sizes[i] for i in chosen],
            callers=[callers[i] for i in chosen],
        )

    def _publish(self, transition: Transition) -> None:
        """Hand a local transition to the writer thread (it never waits on the state DB here)."""
        self.sync.publish(transition, version=self.aliases.champion_version)

    def _published(self, transition: Transition, version: str | None, published: Published) -> None:
        """On the writer thread: the alert on a trip, from the worker whose transition decided (or that is alone)."""
        if published is Published.ALONE:  # nobody to share with: this worker's breaker decides alone, and alerts
            self.follower.unreachable()
        self.alerts.transition(transition, version=version, decided=published is not Published.LOST)

    def _answer(
        self,
        batch: list[Request],
        outputs: pd.DataFrame,
        routes: list[str],
        versions: dict[str, str],
        shadow: str | None,
    ) -> list[Answer]:
        """One answer per request (the guardrail rule is logged, not sent); the log rows journaled first."""
        columns = list(outputs.columns)
        predictions = [
            dict(zip(columns, values, strict=True))
            for values in zip(*(outputs[c].tolist() for c in columns), strict=True)
        ]
        now = datetime.now(UTC)
        done = time.perf_counter()
        rows = records.prediction_rows(self.model, batch, predictions, routes, versions, ts=now, done=done)
        self.journal.write(PREDICTION, rows, shadow=shadow)  # durable before any answer leaves
        answers, start = [], 0
        for request in batch:
            n = len(request.records)
            answered = [{k: v for k, v in p.items() if k != GUARDRAIL} for p in predictions[start : start + n]]
            route = routes[start]
            self._m.answered(route, "ok", done - request.received, n)
            answers.append(Answer(200, {"predictions": answered}, route, versions.get(route, route)))
            start += n
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
        self.journal.write(REJECTION, [row])

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
