"""Buffered appends to the prediction log: the request path never waits for Parquet.

Rows are buffered in memory and written by a background thread every ``interval``
seconds (and on shutdown). A crash loses at most the last interval's rows; a clean stop
loses none.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pandas as pd

from firebreak.prediction_log import PredictionLog

log = logging.getLogger(__name__)


class LogWriter:
    def __init__(self, log_: PredictionLog, *, interval: float = 1.0) -> None:
        self.log = log_
        self.interval = interval
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failures = 0

    def add(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._rows.extend(rows)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="firebreak-log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> int:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        try:
            self.log.append(pd.DataFrame.from_records(rows))
        except Exception:  # a full disk must not take serving down: keep the rows, retry next flush
            log.exception("prediction log write failed; %d rows kept for the next flush", len(rows))
            self.failures += 1
            with self._lock:
                self._rows[:0] = rows
            return 0
        self.written += len(rows)
        return len(rows)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
