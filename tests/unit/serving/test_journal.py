"""The gateway's journal: durable before the answer, drained into the logs once, torn lines quarantined.

A worker's breaker outbox lives in the same folder and is drained by the same drainer."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from firebreak.containment.breaker import Breaker, Transition
from firebreak.containment.state import RoutingStore
from firebreak.incidents.enums import BreakerState
from firebreak.policy.schema import load_policy
from firebreak.prediction_log import PredictionLog
from firebreak.serving import journal
from firebreak.serving.background import Drainer
from firebreak.serving.breaker_sync import STATE_DB_TIMEOUT, BreakerSync
from firebreak.serving.journal import PREDICTION, REJECTION, JournalWriter, journal_dir
from firebreak.serving.metrics import ModelMetrics
from firebreak.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FIREBREAK_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return Settings.from_env()


def rows(prefix: str, n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {"request_id": f"{prefix}-{i}", "ts": now, "model": "pricing", "model_version": "1", "route": "champion"}
        | {"unit_cost": 10.0 + i, "recommended_price": 12.5, "confidence": 0.9, "latency_ms": 1.0}
        for i in range(n)
    ]


def logged(settings: Settings) -> list[str]:
    return sorted(PredictionLog(settings.prediction_log_dir).read("pricing")["request_id"])


def test_a_sealed_segment_is_drained_whole_then_deleted(settings: Settings) -> None:
    writer = JournalWriter(journal_dir(settings.home, "pricing"))
    assert writer.write(PREDICTION, rows("a", 3))
    assert writer.write(REJECTION, [rows("r", 1)[0] | {"route": "rejected", "status": 422, "reason": "contract"}])
    writer.close()
    assert Drainer("pricing", settings).drain() == 4
    assert logged(settings) == ["a-0", "a-1", "a-2"]
    rejected = PredictionLog(settings.rejected_log_dir).read("pricing")
    assert rejected["request_id"].tolist() == ["r-0"] and rejected["status"].tolist() == [422]
    assert list(writer.folder.glob("*.jnl")) == []  # sealed and drained: gone


def test_a_live_segment_is_drained_as_it_grows_and_kept(settings: Settings) -> None:
    writer = JournalWriter(journal_dir(settings.home, "pricing"))
    drainer = Drainer("pricing", settings)
    writer.write(PREDICTION, rows("a", 2))
    assert drainer.drain() == 2
    writer.write(PREDICTION, rows("b", 2))
    assert drainer.drain() == 2 and drainer.drain() == 0
    assert logged(settings) == ["a-0", "a-1", "b-0", "b-1"]
    assert len(list(writer.folder.glob("*.jnl"))) == 1  # its worker may still append


def test_a_replay_after_a_crash_replaces_parts_never_adds_copies(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = JournalWriter(journal_dir(settings.home, "pricing"))
    writer.write(PREDICTION, rows("a", 3))

    def crash(batch: journal.Batch) -> None:
        raise OSError("killed between the Parquet part and the offset")

    monkeypatch.setattr("firebreak.serving.background.commit", crash)
    with pytest.raises(OSError, match="killed between"):
        Drainer("pricing", settings).drain()
    monkeypatch.undo()
    writer.write(PREDICTION, rows("b", 1))  # more lines arrived before the drainer came back
    Drainer("pricing", settings).drain()
    assert logged(settings) == ["a-0", "a-1", "a-2", "b-0"]


def test_a_torn_or_undecodable_line_is_quarantined_never_fatal(settings: Settings) -> None:
    writer = JournalWriter(journal_dir(settings.home, "pricing"))
    writer.write(PREDICTION, rows("a", 2))
    [segment] = writer.folder.glob("*.jnl")
    with open(segment, "ab") as raw:
        raw.write(b'{"k": "p", "rows": [{"request_id": \n')  # a line that does not decode
    writer.write(PREDICTION, rows("b", 1))
    writer.close()
    with open(segment, "ab") as raw:
        raw.write(b'{"k": "p", "rows": [{"request_id": "torn')  # the write a crash cut short
    assert Drainer("pricing", settings).drain() == 3
    assert logged(settings) == ["a-0", "a-1", "b-0"]
    quarantined = sorted(p.read_bytes() for p in (writer.folder / "quarantine").iterdir())
    assert quarantined == [b'{"k": "p", "rows": [{"request_id": ', b'{"k": "p", "rows": [{"request_id": "torn']
    assert not segment.exists()


def test_a_row_the_log_cannot_hold_is_quarantined_and_every_other_answer_reaches_the_log(settings: Settings) -> None:
    """An answer of 10**30 (no Parquet integer holds it) must not keep every later answer in the journal."""
    writer = JournalWriter(journal_dir(settings.home, "pricing"))
    writer.write(PREDICTION, rows("a", 3))
    writer.write(PREDICTION, [rows("huge", 1)[0] | {"recommended_price": 10**30}])
    writer.write(PREDICTION, rows("b", 2))
    drainer = Drainer("pricing", settings)
    assert drainer.drain() == 6  # every line read and committed ...
    assert logged(settings) == ["a-0", "a-1", "a-2", "b-0", "b-1"]  # ... every writable answer logged once
    [kept] = (writer.folder / "quarantine").iterdir()
    assert b'"request_id": "huge-0"' in kept.read_bytes() and b"1000000000000000000000000000000" in kept.read_bytes()
    writer.write(PREDICTION, rows("c", 1))
    assert drainer.drain() == 1 and logged(settings)[-1] == "c-0"  # the journal flows on
    writer.close()


def test_a_log_store_that_is_down_fails_the_pass_and_quarantines_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal of the data splits and quarantines; a store outage is not the rows' fault: the next pass retries."""
    writer = JournalWriter(journal_dir(settings.home, "pricing"))
    writer.write(PREDICTION, rows("a", 2))

    def down(*_: object, **__: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(PredictionLog, "_publish", down)
    with pytest.raises(OSError, match="no space left"):
        Drainer("pricing", settings).drain()
    assert not (writer.folder / "quarantine").exists()
    monkeypatch.undo()
    assert Drainer("pricing", settings).drain() == 2 and logged(settings) == ["a-0", "a-1"]
    writer.close()


def test_segments_rotate_and_the_sealed_ones_go_while_the_worker_writes_on(settings: Settings) -> None:
    writer = JournalWriter(journal_dir(settings.home, "pricing"), segment_bytes=600)
    for i in range(6):
        writer.write(PREDICTION, rows(f"s{i}", 2))
    assert len(list(writer.folder.glob("*.jnl"))) > 1
    Drainer("pricing", settings).drain()
    assert len(list(writer.folder.glob("*.jnl"))) == 1  # only the live one is left
    assert len(logged(settings)) == 12


def test_a_stopped_workers_outbox_reaches_breaker_events_when_the_db_is_back(settings: Settings) -> None:
    """A trip the locked DB did not take outlives its worker: the drainer records it, torn lines quarantined."""
    url = settings.state_db_url
    store = RoutingStore(url, timeout=STATE_DB_TIMEOUT)
    breaker = Breaker("pricing", load_policy("pricing", settings.policies_dir).serving.breaker)
    folder = journal_dir(settings.home, "pricing")
    sync = BreakerSync(breaker, store, clock=time.time, metrics=ModelMetrics("pricing"), outbox=folder, worker="w1")
    lock = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    trip = Transition(
        "pricing", BreakerState.CLOSED, BreakerState.OPEN, time.time(), "low-confidence rate 40%", {"low": 0.4}
    )
    sync.publish(trip, version="1")
    assert sync.settle()  # decided alone: kept in the outbox, the DB never answered
    [outbox] = folder.glob("*.breaker-outbox")
    assert Drainer("pricing", settings).drain() == 0 and outbox.exists()  # its worker lives: not the drainer's
    sync.close()  # the worker stops with the DB still locked
    with open(outbox, "ab") as raw:
        raw.write(b'\n{"model": "pricing", "source": "open", "tar')  # a blank line, then a second write cut short
    Drainer("pricing", settings).drain()
    assert outbox.exists() and not store.breaker_events("pricing")  # still locked: kept for the next pass
    lock.execute("ROLLBACK")
    Drainer("pricing", settings).drain()
    [event] = store.breaker_events("pricing")
    assert (event["source"], event["target"], event["version"]) == ("closed", "open", "1")
    assert event["data"]["shared"] is False and event["data"]["orphaned"] == outbox.name
    assert event["data"]["low"] == 0.4  # the rates it tripped on
    assert event["data"]["at"] == pytest.approx(trip.at)
    assert not outbox.exists()
    [kept] = (folder / "quarantine").iterdir()
    assert kept.read_bytes() == b'{"model": "pricing", "source": "open", "tar'
