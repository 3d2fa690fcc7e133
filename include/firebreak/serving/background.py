"""The gateway's background work, off the request path: the logs, shadow scoring, per-row metrics.

The request path writes one journal line per batch (:mod:`~firebreak.serving.journal`)
and answers. Everything else a batch causes happens in the :class:`Drainer`:

* the journal's lines become the Parquet prediction and rejection logs, in parts named
  after their journal offset, so a replay after a crash replaces a part, never adds a copy;
* the challenger scores the rows the champion answered (:mod:`~firebreak.serving.shadow`);
* the champion's confidence histogram is filled, row by row;
* breaker transitions a dead worker could not write to the state DB are recorded
  (:func:`firebreak.serving.breaker_sync.deliver_orphans`).

``firebreak serve`` runs one drainer per gateway as its own process
(``python -m firebreak.serving.background --model M``): none of this work shares an
interpreter, or the GIL, with the workers answering requests (issue 16), and it finishes
the segments of a worker that died and of earlier runs. A gateway embedded in another
program (the tests, a notebook) runs the same drainer on a thread.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from firebreak.contracts.online import OnlineContract
from firebreak.errors import PredictionLogError
from firebreak.incidents.enums import Alias
from firebreak.kinds import kind_for
from firebreak.policy.schema import Policy, load_policy
from firebreak.prediction_log import PredictionLog
from firebreak.serving.breaker_sync import deliver_orphans
from firebreak.serving.journal import (
    PREDICTION,
    REJECTION,
    Entry,
    commit,
    decode_rows,
    draining,
    journal_dir,
    quarantine,
)
from firebreak.serving.metrics import ModelMetrics
from firebreak.serving.scorer import Scorer, model_scorer
from firebreak.serving.shadow import Shadow
from firebreak.settings import Settings

if TYPE_CHECKING:
    from firebreak.registry.mlflow_registry import Registry

log = logging.getLogger(__name__)


def load_contract(policy: Policy, settings: Settings) -> OnlineContract:
    """The model's online contract as the gateway checks it (the kind adds what it must carry)."""
    contract = OnlineContract.load(settings.resolve(policy.contract))
    kind_for(policy).prepare_contract(contract)
    return contract


class Drainer:
    """Moves one model's journal into its logs; see the module docstring.

    Args:
        model: The served model.
        settings: Where the journal, the logs and MLflow are.
        policy: Its policy (loaded when not given).
        metrics: The model's metrics (created when not given).
    """

    def __init__(
        self, model: str, settings: Settings, *, policy: Policy | None = None, metrics: ModelMetrics | None = None
    ) -> None:
        self.model = model
        self.settings = settings
        self.policy = policy or load_policy(model, settings.policies_dir)
        self.folder = journal_dir(settings.home, model)
        self.predictions = PredictionLog(settings.prediction_log_url)
        self.rejections = PredictionLog(settings.rejected_log_dir)
        self._m = metrics or ModelMetrics(model)
        inputs = list(load_contract(self.policy, settings).fields)
        self.shadow = Shadow(model, PredictionLog(settings.shadow_log_dir), inputs, self._load, self._m)
        self.confidence = self.policy.features.confidence
        self._registry: Registry | None = None
        self._lock = threading.Lock()

    @property
    def registry(self) -> Registry:
        if self._registry is None:  # MLflow is imported when a challenger is first needed
            from firebreak.registry.mlflow_registry import Registry

            self._registry = Registry(self.settings)
        return self._registry

    def _load(self, version: str) -> Scorer:
        found = self.registry.get_version(self.model, version)
        return model_scorer(self.registry, found, self.policy, name="challenger")

    def prepare(self) -> str | None:
        """Load the challenger now, before traffic: returns its version (None: no challenger, or it failed).

        Loading a model imports scikit-learn, MLflow and skops: seconds of CPU that, done at the
        first shadowed batch, would land on a gateway just put under load, beside its workers.
        A failure is logged and left to the first batch that names the challenger.
        """
        try:
            version = self.registry.aliases(self.model).get(Alias.CHALLENGER)
            if version is not None:
                self.shadow.prepare(version)
            return version
        except Exception:  # noqa: BLE001 — a registry down at start must not stop the drainer
            log.exception("could not load the challenger of %s before traffic", self.model)
            return None

    def drain(self) -> int:
        """One pass: every complete journal line into the logs (then shadow); returns the rows logged."""
        logged = 0
        with self._lock, draining(self.folder) as batches:
            for batch in batches:
                predictions = decode_rows(batch.entries, PREDICTION)
                rejections = decode_rows(batch.entries, REJECTION)
                if predictions:
                    _append(self.predictions, predictions, batch.name, batch.segment)
                if rejections:
                    _append(self.rejections, rejections, batch.name, batch.segment)
                commit(batch)
                logged += len(predictions) + len(rejections)
                self._observe(predictions)
                for version, rows in _shadowed(batch.entries).items():
                    self.shadow.score(version, rows, name=f"{batch.name}-v{version}")
        deliver_orphans(self.folder, self.settings.state_db_url)
        return logged

    def _observe(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            value = row.get(self.confidence)
            if row.get("route") == "champion" and isinstance(value, int | float):
                self._m.confidence.observe(float(value))


def _append(log: PredictionLog, rows: list[dict[str, Any]], name: str, segment: Path) -> None:
    """Write ``rows`` as part ``name``; rows the log refuses are quarantined, never the others with them.

    One row that cannot be written (a value no Parquet column holds) would otherwise fail the
    pass again and again, and every answer logged after it would wait in the journal for good.
    Halves are written under names derived from ``name``, so a replay writes the same parts.
    Only a refusal of the data splits: a store that is down (``OSError``) fails the pass, and the
    next pass tries the same lines again.
    """
    try:
        log.append(_frame(rows), name=name)
    except (ValueError, TypeError, OverflowError, PredictionLogError) as exc:  # pyarrow's errors are these too
        if len(rows) == 1:
            quarantine(segment, f"a row the log refused ({type(exc).__name__}: {str(exc)[:200]})", _jsonl(rows))
            return
        half = len(rows) // 2
        _append(log, rows[:half], f"{name}a", segment)
        _append(log, rows[half:], f"{name}b", segment)


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row, default=str).encode() + b"\n" for row in rows)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    return frame


def _shadowed(entries: list[Entry]) -> dict[str, list[dict[str, Any]]]:
    """The answered rows to shadow, by challenger version."""
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry.k == PREDICTION and entry.shadow:
            found.setdefault(entry.shadow, []).extend(entry.rows)
    return found


class Background:
    """Runs a drainer every ``interval`` seconds on a thread (an embedded gateway)."""

    def __init__(self, drainer: Drainer, *, interval: float = 1.0) -> None:
        self.drainer = drainer
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="firebreak-drainer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        run(self.drainer, self._stop, interval=self.interval)

    def close(self) -> None:
        """Stop, then drain what is left (the gateway closed its journal first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        drain_once(self.drainer)


def drain_once(drainer: Drainer) -> int:
    try:
        return drainer.drain()
    except Exception:  # the loop must outlive a failed pass (a full disk): the journal keeps the rows
        log.exception("draining the journal of %s failed; retrying next pass", drainer.model)
        return 0


def run(drainer: Drainer, stop: threading.Event, *, interval: float, alive: Callable[[], bool] = lambda: True) -> None:
    """Drain every ``interval`` seconds until ``stop`` is set or ``alive()`` turns false."""
    while not stop.wait(interval) and alive():
        drain_once(drainer)
        _forget_dead_workers()


def _forget_dead_workers() -> None:
    """Drop the live gauges of worker processes that died (kill -9) from the multi-process metrics.

    prometheus_client keeps a dead process's ``live*`` gauge files until told: a killed
    worker's ``firebreak_state_store_up`` 0 would otherwise pin the gauge for the gateway.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder or not os.path.isdir(folder):
        return
    from prometheus_client import multiprocess

    for name in os.listdir(folder):
        found = re.fullmatch(r"gauge_live\w+_(\d+)\.db", name)
        if not found:
            continue
        pid = int(found.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, folder)
        except PermissionError:  # alive, another user's
            pass


def main(argv: list[str] | None = None) -> int:
    """``python -m firebreak.serving.background --model M``: the drainer process ``firebreak serve`` starts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--parent", type=int, help="exit (after a last pass) when this process is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    drainer = Drainer(args.model, Settings.from_env())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    parent = args.parent

    def alive() -> bool:
        return parent is None or os.getppid() == parent

    drain_once(drainer)  # what earlier runs and dead workers left
    drainer.prepare()
    run(drainer, stop, interval=args.interval, alive=alive)
    drain_once(drainer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
