"""The challenger in shadow: it scores the champion's live input off the request path, never answering.

The request path only enqueues; a full queue drops the batch (and counts it), so shadow
never slows an answer, and a failing challenger never fails a request. Its answers go
to the shadow log under the same row ids as the champion's, for the comparison.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime

import pandas as pd

from firebreak.serving.logwriter import LogWriter
from firebreak.serving.metrics import ModelMetrics
from firebreak.serving.records import shadow_rows
from firebreak.serving.scorer import Scorer

log = logging.getLogger(__name__)


class Shadow:
    """One model's shadow scoring: a bounded queue, a thread, the shadow log."""

    def __init__(self, model: str, writer: LogWriter, metrics: ModelMetrics, *, maxsize: int = 256) -> None:
        self.model = model
        self.writer = writer
        self._m = metrics
        self._queue: queue.Queue[tuple[Scorer, pd.DataFrame, list[str]] | None] = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.writer.start()
        self._thread = threading.Thread(target=self._run, name="firebreak-shadow", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Score what is queued, stop, and write the shadow log."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
        self.writer.close()

    def offer(self, challenger: Scorer, frame: pd.DataFrame, ids: list[str]) -> None:
        """Queue the rows the champion answered (``ids``: their log row ids) for the challenger."""
        try:
            self._queue.put_nowait((challenger, frame, ids))
        except queue.Full:  # shadow never slows the answer: drop, and count it
            self._m.shadowed("dropped")

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            challenger, frame, ids = item
            try:
                outputs = challenger.predict(frame).reset_index(drop=True)
            except Exception:  # noqa: BLE001 — a failing challenger never fails a request
                log.exception("challenger v%s failed in shadow", challenger.version)
                self._m.shadowed("error", len(ids))
                continue
            self.writer.add(shadow_rows(self.model, ids, challenger.version, outputs, ts=datetime.now(UTC)))
            self._m.shadowed("ok", len(ids))
