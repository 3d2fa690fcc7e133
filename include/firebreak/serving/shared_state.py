"""Following the shared state: routing, the breaker row and the aliases, re-read off the request path.

Shared state and what each worker does with it:

* **Routing** (state DB, moved by the incident DAG's contain/restore steps) and the
  **breaker** row (compare-and-set by whichever worker trips first, or an operator) are
  re-read every ``refresh_seconds`` by a background thread: a change is obeyed by every
  worker within that interval, with no restart.
* **Aliases** (MLflow registry): every alias move Firebreak makes writes the alias
  ledger first, so the refresh re-reads MLflow when the ledger changes (and every
  ``alias_poll_seconds`` for moves made outside Firebreak); a new champion is loaded
  off the request path and swapped in whole. Activating a guardrail version writes the
  ledger too, so the answer guard is reloaded with the aliases.
* **State DB unreachable** (fail-safe): the gateway keeps serving on the last state it
  read, its own breaker keeps counting and tripping locally, every request is answered
  and logged, and ``firebreak_state_store_up`` drops to 0 for the alert. A gateway that
  has never read the routing state serves the policy's containment route, not the
  champion: it cannot know whether an incident contained the model
  (:meth:`firebreak.serving.routes.Routes.current`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from firebreak.containment.state import RoutingStore
from firebreak.incidents.enums import Alias, Route
from firebreak.policy.schema import Policy
from firebreak.registry.ledger import AliasLedger
from firebreak.registry.verification import UnverifiedModel
from firebreak.serving.breaker_sync import BreakerSync
from firebreak.serving.metrics import ModelMetrics
from firebreak.serving.scorer import Scorer, model_scorer
from firebreak.settings import Settings

if TYPE_CHECKING:
    from firebreak.kinds import AnswerGuard
    from firebreak.registry.mlflow_registry import Registry, Version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SharedState:
    """What the last refresh read; replaced whole, so readers never see half an update."""

    route: str | None = None  # None: the routing state was never read
    route_reason: str = ""
    ledger_mark: str | None = None


@dataclass(frozen=True)
class Aliases:
    """The loaded versions behind the registry's aliases; replaced whole when one moves."""

    champion: Scorer | None = None
    challenger: Scorer | None = None
    fallback: Scorer | None = None

    @property
    def champion_version(self) -> str | None:
        return self.champion.version if self.champion else None


# The route label each alias answers under (the prediction log's and the metrics' ``route``).
_ROUTE_NAMES = {Alias.CHAMPION: "champion", Alias.CHALLENGER: "challenger", Alias.FALLBACK: "fallback_model"}


class SharedStateFollower:
    """Re-reads the shared state of one model and obeys it.

    Args:
        model: The served model.
        policy: Its policy.
        settings: Where MLflow is.
        store: Routing and breaker rows.
        ledger: The alias ledger (its mark moves whenever an alias does).
        sync: The breaker's link to the shared row.
        guard: The model kind's answer guard, reloaded with the aliases (or None).
        lock: The gateway's lock: swaps happen under it, never mid-request.
        metrics: The model's metrics (state store up, serving version).
        alias_poll_seconds: How often MLflow aliases are re-read even without a ledger change.
        upstream: When the gateway fronts the team's own server: the champion's scorer for a
            registry version (the upstream answers; the version labels it).
    """

    def __init__(
        self,
        model: str,
        policy: Policy,
        settings: Settings,
        *,
        store: RoutingStore,
        ledger: AliasLedger,
        sync: BreakerSync,
        guard: AnswerGuard | None,
        lock: threading.RLock,
        metrics: ModelMetrics,
        alias_poll_seconds: float,
        upstream: Callable[[str], Scorer] | None = None,
    ) -> None:
        self.model = model
        self.policy = policy
        self.settings = settings
        self.store = store
        self.ledger = ledger
        self.sync = sync
        self.guard = guard
        self.lock = lock
        self.alias_poll_seconds = alias_poll_seconds
        self.upstream = upstream
        self.state = SharedState()
        self.aliases = Aliases()
        self.store_up = False
        self.last_refresh: float | None = None
        self._aliases_read_at = -math.inf
        self._registry: Registry | None = None
        self._m = metrics

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from firebreak.registry.mlflow_registry import Registry

            self._registry = Registry(self.settings, self.ledger)
        return self._registry

    def refresh(self) -> None:
        """Re-read routing, breaker and (when the ledger moved) aliases; obey them."""
        try:
            routing = self.store.get_routing(self.model)
            row = self.store.get_breaker(self.model)
            mark = self.ledger.mark(self.model)
        except sa.exc.SQLAlchemyError as exc:
            if self.store_up or self.last_refresh is None:
                log.error("state DB unreachable (%s): serving on the last known state", exc.__class__.__name__)
            self.unreachable()
            return
        self.store_up = True
        self._m.store_up.set(1)
        now = time.monotonic()
        if (
            mark != self.state.ledger_mark
            or self.aliases.champion is None
            or now - self._aliases_read_at > self.alias_poll_seconds
        ):
            self._load_aliases()
            self._aliases_read_at = now
            if self.guard is not None:  # activating a guardrail version writes the ledger too
                self.guard.reload()
        with self.lock:
            self.state = SharedState(
                route=routing.route if routing else Route.CHAMPION,
                route_reason=routing.reason if routing else "no routing recorded: champion",
                ledger_mark=mark,
            )
            self.sync.follow(row, serving=self.aliases.champion_version)
        self.last_refresh = time.time()

    def unreachable(self) -> None:
        """The state DB did not answer: keep the last state read, and say so on the gauge."""
        self.store_up = False
        self._m.store_up.set(0)

    def _verified_version(self, reg: Registry, alias: str) -> Version | None:
        """The ledger's version of ``alias``; a move made outside Firebreak is not followed but alerted."""
        from firebreak.registry.verification import reconcile, unverified_promotion_alert
        from firebreak.serving.inbox import write_alert

        served, drift = reconcile(reg, self.model, alias)
        alerted = self.__dict__.setdefault("_unverified_alerted", set())  # one alert per drift, not per poll
        if drift is not None and drift not in alerted:
            alerted.add(drift)
            write_alert(
                self.settings.alert_inbox_dir, f"generic-unverified-{self.model}", unverified_promotion_alert(drift)
            )
        return reg.get_version(self.model, served) if served is not None else None

    def _load_aliases(self) -> None:
        """Load the versions behind the aliases that moved, then swap them in whole."""
        reg = self.registry
        current = self.aliases
        loaded: dict[str, Scorer | None] = {}
        for alias, scorer in (
            (Alias.CHAMPION, current.champion),
            (Alias.CHALLENGER, current.challenger),
            (Alias.FALLBACK, current.fallback),
        ):
            version = self._verified_version(reg, alias)
            if alias == Alias.CHAMPION and self.upstream is not None:
                # The upstream is the champion; the registry's version is what the ledger and the gate name.
                label = version.version if version is not None else "upstream"
                loaded[alias] = scorer if scorer is not None and scorer.version == label else self.upstream(label)
            elif version is None:
                loaded[alias] = None
            elif scorer is not None and scorer.version == version.version:
                loaded[alias] = scorer
            else:
                try:
                    loaded[alias] = model_scorer(reg, version, self.policy, name=_ROUTE_NAMES[alias])
                except UnverifiedModel as exc:  # never run what the gate did not verify: serve without it
                    log.error("not serving %s: %s", alias, exc)
                    loaded[alias] = None
                    continue
                log.info("loaded %s v%s as %s", self.model, version.version, alias)
        with self.lock:
            previous = self.aliases.champion_version
            self.aliases = Aliases(loaded[Alias.CHAMPION], loaded[Alias.CHALLENGER], loaded[Alias.FALLBACK])
            self.sync.champion_loaded(previous, self.aliases.champion_version)
            serving = self.aliases.champion_version
            self._m.version.set(float(serving) if serving else 0)
