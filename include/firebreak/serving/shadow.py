"""The challenger in shadow: it scores the champion's live input off the request path, never answering.

The request path only names the challenger in the journal line of a batch the champion
answered; the background drainer (:mod:`firebreak.serving.background`) scores those rows
with that challenger version after they are in the prediction log, so shadow never slows
an answer, never holds the log back, and a failing challenger never fails a request. Its
answers go to the shadow log under the same row ids as the champion's, for the comparison.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from firebreak.prediction_log import PredictionLog
from firebreak.serving.metrics import ModelMetrics
from firebreak.serving.records import shadow_rows
from firebreak.serving.scorer import Scorer

log = logging.getLogger(__name__)

# Rows scored in shadow per drain pass at most; the rest are dropped and counted, so a slow
# challenger (an LLM) cannot make the drainer fall behind the journal.
MAX_ROWS_PER_PASS = 20_000


class Shadow:
    """One model's shadow scoring, called by the drainer with the rows the champion answered.

    Args:
        model: The served model.
        log_: The shadow log.
        inputs: The columns the model is called with (the contract's fields).
        load: Loads a challenger version as a :class:`Scorer` (cached here by version).
        metrics: The model's metrics (shadow outcomes).
    """

    def __init__(
        self,
        model: str,
        log_: PredictionLog,
        inputs: list[str],
        load: Callable[[str], Scorer],
        metrics: ModelMetrics,
    ) -> None:
        self.model = model
        self.log = log_
        self.inputs = inputs
        self.load = load
        self._m = metrics
        self.scorers: dict[str, Scorer] = {}  # the challenger versions loaded, by version

    def prepare(self, version: str) -> Scorer:
        """Challenger ``version``'s scorer, loaded once (a failure raises, and is retried next time)."""
        challenger = self.scorers.get(version)
        if challenger is None:
            if len(self.scorers) >= 2:  # the alias moved on: keep the newest only
                self.scorers.pop(next(iter(self.scorers)))
            challenger = self.scorers[version] = self.load(version)
        return challenger

    def score(self, version: str, rows: list[dict[str, Any]], *, name: str) -> None:
        """Score ``rows`` (the champion's answered rows) with challenger ``version``; write them as part ``name``."""
        if len(rows) > MAX_ROWS_PER_PASS:
            self._m.shadowed("dropped", len(rows) - MAX_ROWS_PER_PASS)
            rows = rows[:MAX_ROWS_PER_PASS]
        ids = [r["request_id"] for r in rows]
        try:
            challenger = self.prepare(version)
            frame = pd.DataFrame({c: [r.get(c) for r in rows] for c in self.inputs})
            outputs = challenger.predict(frame).reset_index(drop=True)
        except Exception:  # noqa: BLE001 — a failing challenger never fails a request, nor the log
            log.exception("challenger v%s failed in shadow", version)
            self._m.shadowed("error", len(ids))
            return
        frame = pd.DataFrame.from_records(shadow_rows(self.model, ids, version, outputs, ts=datetime.now(UTC)))
        self.log.append(frame, name=name)
        self._m.shadowed("ok", len(ids))
