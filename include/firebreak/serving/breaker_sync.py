"""One worker's breaker shared with the other workers through the state DB, never on the request path.

Each worker runs its own :class:`~firebreak.containment.breaker.Breaker` on its own
traffic. A local transition is published by compare-and-set on the breaker row's
generation: the first worker to move from a generation wins and records the
``breaker_events`` row in the same transaction; the others adopt the winner's row at their
next refresh, as they adopt an operator's forced open or release. A breaker guards one
champion version: a row written for another version does not apply, and a new champion
starts closed.

Serving never waits on the state DB (issue 17). The request path only queues the
transition; a writer thread publishes it with a short lock timeout. A write that fails
(the DB locked or down) leaves this worker deciding alone — it raises the alert itself,
as if it had won — and the transition is kept, on disk too (an *outbox* file the worker
holds locked), and retried until the DB answers: then it reaches ``breaker_events``
(marked ``late``), and moves the shared row if nobody moved it meanwhile. A worker that
dies with transitions in its outbox leaves them to the background drainer, which records
them (:func:`deliver_orphans`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from firebreak.containment.breaker import Breaker, Transition
from firebreak.containment.state import BreakerRow, RoutingStore
from firebreak.incidents.enums import BreakerState
from firebreak.serving.journal import quarantine
from firebreak.serving.metrics import ModelMetrics

log = logging.getLogger(__name__)

# How long a state-DB statement of the gateway may wait for a lock; and how often a
# failed breaker write is retried.
STATE_DB_TIMEOUT = 0.5
RETRY_SECONDS = 1.0
_OUTBOX = ".breaker-outbox"
_OUTBOX_FIELDS = ("model", "source", "target", "version", "reason", "at")  # and "rates"


class Published(Enum):
    """What became of a local transition."""

    WON = "won"  # it is the shared state now, recorded as a breaker event
    LOST = "lost"  # another worker moved the row first: its row is adopted at the next refresh
    ALONE = "alone"  # the state DB did not answer: this worker decides alone; the write is retried


@dataclass
class _Pending:
    transition: Transition
    version: str | None
    forced: bool
    reported: bool = False  # its first outcome is out (a failed write: reported ALONE, written late)


Outcome = Callable[[Transition, str | None, Published], None]


class BreakerSync:
    """Publishes the local breaker's transitions (off the request path) and adopts the shared row.

    Args:
        breaker: This worker's breaker.
        store: The routing store (breaker rows and events), with a short lock timeout.
        clock: The breaker's clock (``since`` of a breaker closed for a new champion).
        metrics: The model's metrics (breaker state gauge, transitions counter).
        outbox: Where transitions not yet written are kept (the model's journal folder), or None.
        on_outcome: Called on the writer thread with each transition's first outcome
            (the alert is raised from there).
        worker: Names this worker in the events it records late.
    """

    def __init__(
        self,
        breaker: Breaker,
        store: RoutingStore,
        *,
        clock: Callable[[], float],
        metrics: ModelMetrics,
        outbox: Path | None = None,
        on_outcome: Outcome | None = None,
        worker: str = "",
    ) -> None:
        self.breaker = breaker
        self.store = store
        self.clock = clock
        self.generation: int | None = None  # of the shared row this worker last adopted or wrote
        self.on_outcome = on_outcome
        self.worker = worker or str(os.getpid())
        self._outbox_path = outbox / f"{self.worker}{_OUTBOX}" if outbox else None
        self._outbox: Any = None
        self._m = metrics
        self._lock = threading.Lock()  # the generation: written here and by the refresh thread
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._pending: list[_Pending] = []  # the writer thread's own
        self._unreported = 0  # queued transitions whose first outcome is not out yet
        self._reported = threading.Condition()
        self._thread: threading.Thread | None = None

    # -- the request path --------------------------------------------------------------

    def publish(self, transition: Transition, *, version: str | None) -> None:
        """Queue a local transition on champion ``version`` for the writer thread; returns at once."""
        self._m.transition(transition)
        self._m.breaker.set(transition.target.gauge)
        log.warning(
            "breaker %s: %s -> %s (%s)", self.breaker.model, transition.source, transition.target, transition.reason
        )
        with self._reported:
            self._unreported += 1
        self._queue.put(_Pending(transition, version, self.breaker.forced))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="firebreak-breaker-writer", daemon=True)
            self._thread.start()

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                items = [self._queue.get(timeout=RETRY_SECONDS if self._pending else None)]
                while not self._queue.empty():  # take everything queued: they are written in order
                    items.append(self._queue.get_nowait())
            except queue.Empty:
                items = []
            if None in items:  # closed
                return
            self._pending.extend(i for i in items if i is not None)
            self._deliver()

    def _deliver(self) -> None:
        """Write the pending transitions in order; stop at the first the DB does not take."""
        while self._pending:
            item = self._pending[0]
            try:
                published = self._write(item)
            except sa.exc.SQLAlchemyError as exc:
                fresh = [p for p in self._pending if not p.reported]
                if fresh:
                    log.error(
                        "state DB did not take %d breaker transition(s) (%s); deciding alone, retrying",
                        len(fresh),
                        exc.__class__.__name__,
                    )
                for waiting in fresh:  # they cannot be written before this one: each decides alone now
                    self._keep(waiting)
                    self._report(waiting, Published.ALONE)
                return
            self._pending.pop(0)
            if not item.reported:
                self._report(item, published)
        self._clear_outbox()

    def _write(self, item: _Pending) -> Published:
        t = item.transition
        late = item.reported  # this worker decided alone and alerted: the DB learns of it now
        with self._lock:
            expected = self.generation
        data: dict[str, Any] = dict(t.rates)
        if late:
            data |= {"late": True, "worker": self.worker, "at": t.at}
        won = self.store.compare_and_set_breaker(
            self.breaker.model,
            expected_generation=expected,
            state=t.target,
            since=t.at,
            version=item.version,
            forced=item.forced,
            reason=t.reason,
            event={"source": t.source, "data": data},
        )
        if won:
            with self._lock:
                if self.generation == expected:
                    self.generation = (expected or 0) + 1
            return Published.WON
        if late:  # the shared row moved while this worker was cut off: its history is still recorded
            self.store.add_breaker_event(
                self.breaker.model,
                source=t.source,
                target=t.target,
                version=item.version,
                reason=t.reason,
                data=data | {"shared": False},
            )
        return Published.LOST

    def _report(self, item: _Pending, published: Published) -> None:
        item.reported = True
        try:
            if self.on_outcome is not None:
                self.on_outcome(item.transition, item.version, published)
        except Exception:  # the writer must outlive a failing alert write
            log.exception("breaker outcome handler failed")
        finally:
            with self._reported:
                self._unreported -= 1
                self._reported.notify_all()

    def _keep(self, item: _Pending) -> None:
        """Record a transition the DB did not take in this worker's outbox file (locked while it lives)."""
        if self._outbox_path is None:
            return
        try:
            if self._outbox is None:
                self._outbox_path.parent.mkdir(parents=True, exist_ok=True)
                self._outbox = open(self._outbox_path, "a")  # noqa: SIM115 — held (and locked) while pending
                fcntl.flock(self._outbox.fileno(), fcntl.LOCK_EX)
            row = {**asdict(item.transition), "version": item.version, "model": self.breaker.model}
            self._outbox.write(json.dumps(row, default=str) + "\n")
            self._outbox.flush()
        except OSError:
            log.exception("could not record the breaker transition in %s", self._outbox_path)

    def _clear_outbox(self) -> None:
        if self._outbox is not None:
            assert self._outbox_path is not None
            self._outbox_path.unlink(missing_ok=True)
            self._outbox.close()
            self._outbox = None

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until every queued transition had its first outcome (its alert is out); True if so."""
        with self._reported:
            return self._reported.wait_for(lambda: self._unreported == 0, timeout)

    def close(self) -> None:
        """Stop retrying; what is still pending stays in the outbox for the drainer."""
        self.settle()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None
        if self._outbox is not None:
            self._outbox.close()  # releases the lock: the drainer records what is left
            self._outbox = None

    # -- the refresh thread ----------------------------------------------------------------

    def follow(self, row: BreakerRow | None, *, serving: str | None) -> None:
        """Adopt the shared row if it moved since this worker last saw it; ``serving`` is the champion version."""
        with self._lock:
            if row is None or row.generation == self.generation:
                return
            self.generation = row.generation
        # A row written for another (older) champion version does not apply, unless an
        # operator forced it (or released a force, or wrote it for no version in particular).
        if row.forced or self.breaker.forced or row.version in (serving, None):
            self.breaker.adopt(BreakerState(row.state), since=row.since, forced=row.forced, reason=row.reason)
        elif self.breaker.state != BreakerState.CLOSED and not self.breaker.forced:
            self.breaker.adopt(BreakerState.CLOSED, since=self.clock(), forced=False, reason="new champion")
        self._m.breaker.set(self.breaker.state.gauge)

    def champion_loaded(self, previous: str | None, current: str | None) -> None:
        """A breaker guards one version: a new champion starts closed, unless an operator forced it."""
        if current and previous and current != previous and not self.breaker.forced:
            self.breaker.adopt(BreakerState.CLOSED, since=self.clock(), forced=False, reason="new champion")
        self._m.breaker.set(self.breaker.state.gauge)


def deliver_orphans(folder: Path, url: str) -> int:
    """Record the transitions dead workers left in their outboxes as breaker events; returns how many.

    A worker holds its outbox locked while it lives: one the drainer can lock belongs to
    a worker that stopped or died. Its transitions never moved the shared row (the DB did
    not answer that worker), so they are history, recorded with ``shared: false``.
    """
    recorded = 0
    for path in sorted(folder.glob(f"*{_OUTBOX}")) if folder.is_dir() else []:
        with open(path, "rb") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its worker is alive and retrying
            rows, torn = [], []
            for number, line in enumerate(handle):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    rows.append({**{key: row[key] for key in _OUTBOX_FIELDS}, "rates": dict(row.get("rates") or {})})
                except (ValueError, TypeError, KeyError):  # cut short by the kill, or not a transition
                    torn.append((number, line))
            try:
                store = RoutingStore(url, timeout=STATE_DB_TIMEOUT)
                for row in rows:
                    store.add_breaker_event(
                        row["model"],
                        source=row["source"],
                        target=row["target"],
                        version=row["version"],
                        reason=row["reason"],
                        data={**row["rates"], "late": True, "shared": False, "at": row["at"], "orphaned": path.name},
                    )
            except sa.exc.SQLAlchemyError:
                continue  # still unreachable: next pass
            for number, line in torn:  # kept for a human, never fatal
                quarantine(path, f"line {number}", line)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            recorded += len(rows)
    return recorded
