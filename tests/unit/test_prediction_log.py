"""The prediction log partitions by model and hour and reads windows back exactly."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from firebreak.errors import PredictionLogError
from firebreak.prediction_log import LabelStore, PredictionLog


def rows(start: datetime, n: int, model: str = "pricing") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "ts": [start + timedelta(minutes=30 * i) for i in range(n)],
            "model": model,
            "model_version": "1",
            "route": "champion",
            "confidence": 0.9,
        }
    )


def test_window_reads_exactly_the_rows_after_the_cutoff(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    start = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    files = log.append(pd.concat([rows(start, 10), rows(start, 3, model="other")]))
    assert len({f.rsplit("/", 1)[0] for f in files}) == 5 + 2  # hour partitions per model
    window = log.read_window("pricing", 2, now=start + timedelta(hours=4, minutes=10))
    assert list(window["request_id"]) == ["r5", "r6", "r7", "r8"]  # 02:30 .. 04:00 in [02:10, 04:10)
    assert set(log.read("other")["model"]) == {"other"}
    # A window that ended in the past holds nothing logged after its end.
    earlier = log.read_window("pricing", 1, now=start + timedelta(hours=2))
    assert list(earlier["request_id"]) == ["r2", "r3"]


def test_missing_required_columns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PredictionLogError, match=r"lack required columns \['route'\]"):
        PredictionLog(tmp_path).append(rows(datetime.now(UTC), 2).drop(columns=["route"]))


def test_labels_join_on_request_id_and_last_label_wins(tmp_path: Path) -> None:
    labels = LabelStore(tmp_path)
    labels.append("pricing", pd.DataFrame({"request_id": ["r1", "r2"], "price": [1.0, 2.0]}))
    labels.append("pricing", pd.DataFrame({"request_id": ["r2"], "price": [3.0]}))
    joined = labels.join("pricing", rows(datetime.now(UTC), 4), "price")
    assert dict(zip(joined["request_id"], joined["price"], strict=True)) == {"r1": 1.0, "r2": 3.0}


def hour_of_rows(start: datetime, n: int, prefix: str) -> pd.DataFrame:
    frame = rows(start, n)
    frame["ts"] = [start + timedelta(seconds=i) for i in range(n)]
    frame["request_id"] = [f"{prefix}{i}" for i in range(n)]
    return frame


@pytest.mark.parametrize("location", ["local", "memory"])
def test_replicas_write_one_hour_without_collisions_and_compaction_keeps_every_row_once(
    tmp_path: Path, location: str
) -> None:
    # memory:// stands in for an object store (S3/GCS cannot be reached here): same fsspec calls.
    root = str(tmp_path / "log") if location == "local" else f"memory://log-{uuid.uuid4().hex}"
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    replicas = [PredictionLog(root, writer=f"gw-{i}") for i in range(4)]
    for flush in range(3):  # every replica flushes three times into the same hour
        for i, replica in enumerate(replicas):
            replica.append(hour_of_rows(start + timedelta(minutes=10 * flush), 5, f"w{i}f{flush}-"))
    reader = PredictionLog(root)
    partition = reader.partitions("pricing")[0]
    assert len(reader.parts(partition)) == 12
    before = reader.read("pricing")
    assert len(before) == 60 and before["request_id"].is_unique

    replaced = reader.compact("pricing", now=start + timedelta(hours=2))
    assert replaced == 12
    assert len(reader.parts(partition)) == 1
    after = reader.read("pricing")
    assert sorted(after["request_id"]) == sorted(before["request_id"])


def test_a_crash_between_publishing_the_compacted_part_and_deleting_the_inputs_never_doubles_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = PredictionLog(tmp_path, writer="gw")
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    for flush in range(3):
        log.append(hour_of_rows(start + timedelta(minutes=flush), 4, f"f{flush}-"))
    real_rm = log.fs.rm

    def crash(path: str, *args: object, **kwargs: object) -> None:
        raise OSError("killed")

    monkeypatch.setattr(log.fs, "rm", crash)
    with pytest.raises(OSError, match="killed"):
        log.compact("pricing", now=start + timedelta(hours=2))
    files = list((tmp_path / "model=pricing").rglob("*.parquet"))
    assert len(files) == 4  # the compacted part and the three it replaces, all still there
    assert len(log.read("pricing")) == 12  # read once each
    monkeypatch.setattr(log.fs, "rm", real_rm)
    log.compact("pricing", now=start + timedelta(hours=2))  # the next run finishes the job
    assert len(list((tmp_path / "model=pricing").rglob("*.parquet"))) == 1
    assert len(log.read("pricing")) == 12


def test_a_compaction_killed_mid_write_leaves_a_temporary_file_the_next_run_removes(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, writer="gw")
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    for flush in range(2):
        log.append(hour_of_rows(start + timedelta(minutes=flush), 4, f"f{flush}-"))
    [partition] = {p.parent for p in (tmp_path / "model=pricing").rglob("*.parquet")}
    abandoned = partition / ".compacted-killed.parquet.tmp"
    abandoned.write_bytes(b"PAR1 half a footer")  # the compaction that wrote it was killed
    live = partition / ".part-writing-now.parquet.tmp"
    live.write_bytes(b"PAR1")
    now = start + timedelta(hours=2)
    os.utime(abandoned, (now.timestamp() - 3600,) * 2)
    os.utime(live, (now.timestamp(),) * 2)  # touched a moment ago: its writer may be alive
    log.compact("pricing", now=now)
    assert not abandoned.exists() and live.exists()
    assert len(log.read("pricing")) == 8


def test_a_torn_part_is_quarantined_and_every_other_row_is_read(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    [good] = log.append(hour_of_rows(start, 6, "ok-"))
    torn = Path(good).with_name("part-killed-writer.parquet")
    torn.write_bytes(Path(good).read_bytes()[:100])  # a writer killed mid-write (the layout before atomic parts)
    frame = log.read("pricing")
    assert list(frame["request_id"]) == [f"ok-{i}" for i in range(6)]
    assert not torn.exists()
    assert (tmp_path / "_quarantine" / "model=pricing" / "date=2026-11-27" / "hour=09" / torn.name).exists()
    assert len(log.read("pricing")) == 6  # and later reads never see it again


def test_retention_deletes_the_hours_past_it_and_keeps_the_rest(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    start = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    log.append(rows(start, 48 * 6))  # six days, one row every 30 min
    deleted = log.expire("pricing", keep=timedelta(days=2), now=start + timedelta(days=6))
    kept = log.read("pricing")
    assert deleted == 4 * 24
    assert kept["ts"].min() == pd.Timestamp(start + timedelta(days=4))
    assert len(kept) == 2 * 48


def test_a_window_streams_in_bounded_batches_with_text_as_categories(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    start = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    frame = hour_of_rows(start, 3000, "r")
    frame["channel"] = ["web", "store", "phone"] * 1000
    log.append(frame)
    window = log.window("pricing", since=start + timedelta(seconds=500), until=start + timedelta(seconds=2500))
    batches = list(window.batches(["confidence", "channel"], batch_rows=256))
    assert max(len(b) for b in batches) <= 256
    assert sum(len(b) for b in batches) == 2000
    assert isinstance(batches[0]["channel"].dtype, pd.CategoricalDtype)
    assert list(batches[0].columns) == ["confidence", "channel", "ts"]
    assert window.stored_rows() == 3000  # the footers: the whole hour partition


def test_a_model_name_that_is_not_a_partition_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PredictionLogError, match="cannot name a prediction-log partition"):
        PredictionLog(tmp_path).append(rows(datetime.now(UTC), 1, model="../escape"))


def test_nanosecond_timestamps_are_read_not_mistaken_for_a_torn_part(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    start = pd.Timestamp("2026-11-27 09:00:00.000000001", tz="UTC")
    frame = rows(datetime(2026, 11, 27, 9, tzinfo=UTC), 4)
    frame["ts"] = [start + pd.Timedelta(nanoseconds=7 * i) for i in range(4)]
    log.append(frame)
    window = log.window(
        "pricing", since=datetime(2026, 11, 27, 9, tzinfo=UTC), until=datetime(2026, 11, 27, 10, tzinfo=UTC)
    )
    assert sum(len(b) for b in window.batches(["confidence"])) == 4
    assert not (tmp_path / "_quarantine").exists()


def test_a_window_for_one_version_holds_only_its_answers_read_whole_or_in_batches(tmp_path: Path) -> None:
    """After a promotion the window still holds the old champion's answers: they are no evidence about the new one."""
    log = PredictionLog(tmp_path)
    start = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    old, new = rows(start, 6), rows(start + timedelta(hours=3), 4)
    new["model_version"] = "2"
    new["request_id"] = [f"n{i}" for i in range(4)]
    log.append(pd.concat([old, new]))
    window = log.window("pricing", since=start, until=start + timedelta(hours=6), version="2")
    assert list(window.frame()["request_id"]) == ["n0", "n1", "n2", "n3"]
    assert list(window.frame(columns=["request_id"])["request_id"]) == ["n0", "n1", "n2", "n3"]
    streamed = pd.concat(list(window.batches(columns=["request_id"], batch_rows=2)))
    assert sorted(streamed["request_id"]) == ["n0", "n1", "n2", "n3"]
    assert len(log.window("pricing", since=start, until=start + timedelta(hours=6)).frame()) == 10


def test_small_parts_stream_as_few_frames_and_compaction_writes_them_as_one_row_group(tmp_path: Path) -> None:
    """Gateways flush a small part every second: a window streams them gathered into frames of up
    to ``batch_rows`` (each frame costs its consumer a fixed price), and compaction merges them into
    big row groups, not one per flushed part."""
    import pyarrow.parquet as pq

    log = PredictionLog(tmp_path)
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    for flush in range(12):
        part = hour_of_rows(start + timedelta(minutes=4 * flush), 50, f"f{flush}-")
        part["channel"] = ["web", "app"][flush % 2]  # each part's dictionary holds one value
        PredictionLog(tmp_path, writer=f"gw-{flush % 3}").append(part)
    window = log.window("pricing", since=start, until=start + timedelta(hours=1))
    frames = list(window.batches(["confidence", "channel"], batch_rows=250))
    assert [len(f) for f in frames] == [250, 250, 100]  # 12 parts of 50 rows, gathered
    assert all(isinstance(f["channel"].dtype, pd.CategoricalDtype) for f in frames)
    assert pd.concat(frames)["channel"].astype(str).value_counts().to_dict() == {"web": 300, "app": 300}

    old = hour_of_rows(start + timedelta(minutes=50), 30, "old-").drop(columns=["confidence"])
    PredictionLog(tmp_path, writer="gw-9").append(old)  # a part written before the column existed
    frames = list(window.batches(["confidence", "channel"], batch_rows=250))
    assert sum(len(f) for f in frames) == 630
    assert [len(f) for f in frames if "confidence" not in f.columns] == [30]  # never gathered with the others

    assert log.compact("pricing", now=start + timedelta(hours=2)) == 13
    [merged] = log.parts(log.partitions("pricing")[0])
    assert pq.ParquetFile(merged).metadata.num_row_groups == 1
    assert len(log.read("pricing")) == 630


def test_a_part_holding_a_column_as_another_type_is_left_beside_the_compacted_one(tmp_path: Path) -> None:
    """An import whose booleans arrived as text ("yes"): compaction merges the rest and never casts a value."""
    log = PredictionLog(tmp_path, writer="gw")
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    for flush in range(3):
        log.append(hour_of_rows(start + timedelta(minutes=flush), 4, f"f{flush}-").assign(has_kids=True))
    log.append(hour_of_rows(start + timedelta(minutes=5), 2, "text-").assign(has_kids="yes"))
    before = log.read("pricing").set_index("request_id")["has_kids"].to_dict()

    assert log.compact("pricing", now=start + timedelta(hours=2)) == 3
    assert len(log.parts(log.partitions("pricing")[0])) == 2  # the merged part and the text one
    after = log.read("pricing").set_index("request_id")["has_kids"].to_dict()
    assert after == before and after["text-0"] == "yes" and after["f0-0"] is True
    assert log.compact("pricing", now=start + timedelta(hours=2)) == 0  # nothing more to merge: stable
