"""The prediction log and the label store: Parquet files partitioned by model and hour.

Each row is one answered request: request id, time, model, version served, route,
the inputs, the outputs, confidence, latency, contract violations and lineage fields
(upstream source, feature-pipeline version). Labels arrive later, keyed by request id.

Where it lives: any fsspec location (``FIREBREAK_PREDICTION_LOG_URL``: ``s3://bucket/log``,
``gs://...``; local files by default, ``$FIREBREAK_HOME/predictions``)::

    <root>/model=<m>/date=<YYYY-MM-DD>/hour=<HH>/part-<writer>-<time>-<uuid>.parquet

How it scales out:

* **Many writers, no collisions.** Every gateway replica writes its own part files, named
  by its writer id (host and process) and a random suffix; nobody appends to a file. The
  gateway's journal drainer names its parts after the journal segment and offset they came
  from (``part-<host>-<pid>-<start-ns>.<segment-no>-<offset>.parquet``, see
  :mod:`firebreak.serving.journal`): still one name per writer, and a replay after a crash
  replaces the part it wrote before instead of adding a copy.
* **Nothing half-published.** A part is written whole under a temporary name and renamed
  into place (local files), or put in one request (object stores publish a PUT whole), so a
  reader never sees a partial part from a live writer.
* **A torn part is quarantined, never fatal.** A file a reader cannot open (a writer killed
  mid-write before this layout, a truncated copy) is moved to ``<root>/_quarantine/`` with
  its partition path, logged, and skipped; every other row is read.
* **Small files compacted.** :meth:`PredictionLog.compact` merges a settled hour's parts into
  one file whose footer lists the parts it replaces, then deletes them. Readers skip parts a
  compacted file lists, so a crash between the two steps never doubles a row.
* **Retention.** :meth:`PredictionLog.expire` deletes hours older than the policy's
  ``prediction_log.retention_days``.
* **Bounded reads.** :meth:`PredictionLog.read` loads a window into pandas (small windows,
  the callers that always did); :meth:`PredictionLog.window` gives a :class:`LogWindow` whose
  :meth:`~LogWindow.batches` stream it in bounded chunks (the audits' and incident evidence's
  path for big windows).

Its size (about 600 lines) is earned: the layout, the part names, compaction, retention,
quarantine and the bounded readers must agree on one format, so they live together.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from firebreak.errors import PredictionLogError
from firebreak.model_names import ModelNameError, model_stem

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from fsspec import AbstractFileSystem

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("request_id", "ts", "model", "model_version", "route")
QUARANTINE = "_quarantine"
# The footer key of a compacted part: the names of the parts it replaces (readers skip them).
REPLACES_KEY = b"firebreak.replaces"
_COMPACTED_PREFIX = "part-compacted-"
_WRITER = re.compile(r"[^A-Za-z0-9_.-]+")
DEFAULT_BATCH_ROWS = 500_000


def writer_id() -> str:
    """This process's name in part files: host and pid (two replicas never share one)."""
    return _WRITER.sub("_", f"{socket.gethostname()}-{os.getpid()}")[:80]


def _part_name(name: str) -> str:
    """A caller's deterministic part name, made safe for a file name; never truncated (that could collide)."""
    safe = _WRITER.sub("_", name)
    if not safe or len(safe) > 200 or safe.startswith(".") or safe.startswith(_COMPACTED_PREFIX.removeprefix("part-")):
        raise PredictionLogError(f"part name {name[:80]!r} cannot name a prediction-log part")
    return safe


def _filesystem(root: str | Path) -> tuple[AbstractFileSystem, str]:
    from fsspec.core import url_to_fs

    text = str(root)
    if "://" not in text:
        text = str(Path(text).resolve())
    fs, path = url_to_fs(text)
    return fs, str(path).rstrip("/")


def _is_local(fs: AbstractFileSystem) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _hour_of(partition: str) -> datetime:
    """The hour a ``.../date=<d>/hour=<h>`` partition holds."""
    hour_dir = partition.rstrip("/").rsplit("/", 1)[-1]
    date_dir = partition.rstrip("/").rsplit("/", 2)[-2]
    day = date_dir.removeprefix("date=")
    return datetime.fromisoformat(day).replace(hour=int(hour_dir.removeprefix("hour=")), tzinfo=UTC)


class PredictionLog:
    """Append-only Parquet log under ``root/model=<m>/date=<d>/hour=<h>/`` (``<m>``: the model's stem,
    :func:`firebreak.model_names.model_stem`).

    Args:
        root: A local folder or an fsspec URL.
        writer: This writer's id in part names (default: host and pid).
    """

    def __init__(self, root: str | Path, *, writer: str | None = None) -> None:
        self.root = root
        self.fs, self.base = _filesystem(root)
        self.local = _is_local(self.fs)
        self.writer = _WRITER.sub("_", writer)[:80] if writer else writer_id()

    # -- writing ----------------------------------------------------------------------

    def append(self, rows: pd.DataFrame, *, name: str | None = None) -> list[str]:
        """Write rows into their hour partitions, one new part per partition; returns the parts written.

        ``name`` makes the part names deterministic (``part-<name>.parquet`` in each hour
        partition) instead of this writer's id, the time and a random suffix: writing the
        same rows again replaces the part instead of adding a copy (the gateway's journal
        replays what a crash left uncommitted; its names carry the journal writer's host,
        process and segment offset, so replicas never collide).

        Raises:
            PredictionLogError: required columns missing, a model name that cannot be a
                partition (``/``, ``..``, ``=``), or a ``name`` too long for a file name.
        """
        missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
        if missing:
            raise PredictionLogError(f"prediction log rows lack required columns {missing}")
        if rows.empty:
            return []
        import pyarrow as pa

        ts = pd.to_datetime(rows["ts"], utc=True)
        # Every part converted before any is written: rows no Parquet column can hold fail the
        # whole call with nothing written, so a caller may split the rows and write them again.
        planned = []
        for (model, day, hour), part in rows.groupby([rows["model"], ts.dt.strftime("%Y-%m-%d"), ts.dt.hour]):
            folder = self._partition(str(model), day, int(hour))
            if name is not None:
                file_name = f"part-{_part_name(name)}.parquet"
            else:
                stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
                file_name = f"part-{self.writer}-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
            planned.append(
                (f"{folder}/{file_name}", pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False))
            )
        for path, table in planned:
            self._publish(table, path)
        return [path for path, _ in planned]

    def publish_whole(self, rows: pd.DataFrame, *, name: str) -> tuple[list[str], int]:
        """Publish rows as parts named ``part-<name>-<n>``, all or nothing; returns (parts written, parts there).

        Every part is written under a temporary name first; only when all are written are they
        renamed into place. A part already in place (an earlier run of the same import that
        stopped mid-way) is kept, so running the import again finishes it and never doubles a row.
        """
        missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
        if missing:
            raise PredictionLogError(f"prediction log rows lack required columns {missing}")
        ts = pd.to_datetime(rows["ts"], utc=True)
        plans = []
        for n, ((model, day, hour), part) in enumerate(
            rows.groupby([rows["model"], ts.dt.strftime("%Y-%m-%d"), ts.dt.hour], sort=True)
        ):
            path = f"{self._partition(str(model), day, int(hour))}/part-{_WRITER.sub('_', name)[:80]}-{n:05d}.parquet"
            plans.append((path, part.reset_index(drop=True)))
        todo = [(path, part) for path, part in plans if not self.fs.exists(path)]
        if not self.local:  # one PUT per part, each whole; a re-run puts the missing ones
            for path, part in todo:
                self._publish(part, path)
            return [p for p, _ in todo], len(plans) - len(todo)
        import pyarrow as pa
        import pyarrow.parquet as pq

        staged: list[tuple[str, str]] = []
        try:
            for path, part in todo:
                folder, file_name = path.rsplit("/", 1)
                os.makedirs(folder, exist_ok=True)
                tmp = f"{folder}/.{file_name}.{uuid.uuid4().hex[:8]}.tmp"
                staged.append((tmp, path))
                pq.write_table(pa.Table.from_pandas(part, preserve_index=False), tmp)
        except BaseException:
            for tmp, _ in staged:  # nothing was published: leave nothing behind either
                with contextlib.suppress(FileNotFoundError):
                    os.remove(tmp)
            raise
        for tmp, path in staged:
            os.replace(tmp, path)
        return [path for _, path in staged], len(plans) - len(todo)

    def _partition(self, model: str, day: str, hour: int) -> str:
        return f"{self._model_dir(model)}/date={day}/hour={hour:02d}"

    def _model_dir(self, model: str) -> str:
        """``<base>/model=<stem>``: any name MLflow accepts gets a safe folder of its own."""
        try:
            return f"{self.base}/model={model_stem(model)}"
        except ModelNameError as exc:
            raise PredictionLogError(f"{exc}: it cannot name a prediction-log partition") from exc

    def _publish(self, table: pa.Table | pd.DataFrame, path: str) -> None:
        """Write one part whole: a temporary name renamed into place, or one PUT on an object store."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if isinstance(table, pd.DataFrame):
            table = pa.Table.from_pandas(table, preserve_index=False)
        if self.local:
            folder, name = path.rsplit("/", 1)
            os.makedirs(folder, exist_ok=True)
            tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
            pq.write_table(table, tmp)
            os.replace(tmp, path)  # atomic on one filesystem: readers see the whole part or none
            return
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self.fs.pipe_file(path, sink.getvalue().to_pybytes())

    # -- finding parts ------------------------------------------------------------------

    def partitions(self, model: str, *, since: datetime | None = None, until: datetime | None = None) -> list[str]:
        """The hour partitions of ``model`` that may hold rows in ``[since, until)``, oldest first."""
        base = self._model_dir(model)
        if not self.fs.isdir(base):
            return []
        low = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0) if since else None
        found = []
        for day_dir in sorted(self.fs.ls(base, detail=False)):
            day = str(day_dir).rstrip("/").rsplit("/", 1)[-1]
            if not day.startswith("date="):
                continue
            for hour_dir in sorted(self.fs.ls(day_dir, detail=False)):
                if not str(hour_dir).rstrip("/").rsplit("/", 1)[-1].startswith("hour="):
                    continue
                try:
                    hour = _hour_of(str(hour_dir))
                except ValueError:
                    continue  # a folder someone else put there: not a partition
                if (low is None or hour >= low) and (until is None or hour < until):
                    found.append(str(hour_dir).rstrip("/"))
        return found

    def parts(self, partition: str) -> list[str]:
        """The readable parts of one partition: temporary files and parts a compaction replaced left out."""
        names = sorted(
            str(p)
            for p in self.fs.ls(partition, detail=False)
            if str(p).endswith(".parquet") and not str(p).rsplit("/", 1)[-1].startswith((".", "_"))
        )
        replaced: set[str] = set()
        for path in names:
            if path.rsplit("/", 1)[-1].startswith(_COMPACTED_PREFIX):
                footer = self._open(path)
                if footer is not None:
                    meta = footer.schema_arrow.metadata or {}
                    replaced.update(json.loads(meta.get(REPLACES_KEY, b"[]")))
        return [p for p in names if p.rsplit("/", 1)[-1] not in replaced]

    def files(self, model: str, *, since: datetime | None = None, until: datetime | None = None) -> list[str]:
        return [p for partition in self.partitions(model, since=since, until=until) for p in self.parts(partition)]

    def _open(self, path: str) -> pq.ParquetFile | None:
        """Open a part's footer; a torn or unreadable part is quarantined and None returned."""
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(self.fs.open(path, "rb"))
        except FileNotFoundError:
            return None  # compacted or expired by someone else meanwhile
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError: not a Parquet file
            self._quarantine(path, exc)
            return None

    def _quarantine(self, path: str, exc: BaseException) -> None:
        relative = path[len(self.base) + 1 :] if path.startswith(self.base + "/") else path.rsplit("/", 1)[-1]
        target = f"{self.base}/{QUARANTINE}/{relative}"
        log.warning("prediction log part %s is unreadable (%s): quarantined to %s", path, exc, target)
        try:
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.mv(path, target)
        except FileNotFoundError:
            pass  # another reader quarantined it first

    # -- reading ------------------------------------------------------------------------

    def read(
        self,
        model: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of ``model`` logged in ``[since, until)`` (either bound optional), oldest first, as one frame.

        For windows that fit in memory; :meth:`window` streams big ones.
        """
        window = self.window(model, since=since, until=until)
        frames = list(window.batches(columns, batch_rows=None, text_as_category=False))
        if not frames:
            return pd.DataFrame(columns=list(columns or REQUIRED_COLUMNS))
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return frame.sort_values("ts", kind="stable").reset_index(drop=True) if "ts" in frame.columns else frame

    def read_window(self, model: str, hours: float, *, now: datetime | None = None) -> pd.DataFrame:
        now = now or datetime.now(UTC)
        return self.read(model, since=now - timedelta(hours=hours), until=now)

    def window(
        self, model: str, *, since: datetime | None = None, until: datetime | None = None, version: str | None = None
    ) -> LogWindow:
        """A window of the log, not read yet: stream it, size it, sample it, or load it.

        ``version``: only the rows that model version answered (see :func:`answered_by`).
        """
        return LogWindow(self, model, since, until, version)

    # -- upkeep -------------------------------------------------------------------------

    def compact(self, model: str, *, now: datetime | None = None, settle: timedelta = timedelta(minutes=10)) -> int:
        """Merge each settled hour's parts into one; returns the parts replaced.

        An hour is settled ``settle`` after it ended (late flushes of buffered rows land
        before). The merged part is published first, its footer naming the parts it
        replaces; they are deleted after. A crash in between leaves a partition that reads
        the same (readers skip the listed parts) and that the next run finishes.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        now = now or datetime.now(UTC)
        replaced_total = 0
        for partition in self.partitions(model, until=_ended_by(now - settle)):
            parts = self.parts(partition)
            leftovers = self._replaced_leftovers(partition)
            for path in leftovers:  # a crash after publishing the compacted part: finish it
                self.fs.rm(path)
            for path in self._abandoned(partition, before=now - settle):  # a writer killed mid-write
                self.fs.rm(path)
            if len(parts) < 2:
                continue
            opened, schema = _mergeable([(p, f) for p in parts if (f := self._open(p)) is not None])
            if len(opened) < 2:
                continue
            names = [p.rsplit("/", 1)[-1] for p, _ in opened]
            schema = schema.with_metadata({REPLACES_KEY: json.dumps(names).encode()})
            final = f"{partition}/{_COMPACTED_PREFIX}{uuid.uuid4().hex[:12]}.parquet"
            target = f"{partition}/.{final.rsplit('/', 1)[-1]}.tmp" if self.local else final
            with self.fs.open(target, "wb") as sink, pq.ParquetWriter(sink, schema) as writer:
                # Parts are read one at a time and written in row groups of DEFAULT_BATCH_ROWS: memory is
                # one row group, not the hour, and a reader gets big batches, not one per flushed part.
                pending: list[pa.Table] = []
                gathered = 0
                for _, footer in opened:
                    pending.append(_conform(footer.read(), schema))
                    gathered += pending[-1].num_rows
                    if gathered >= DEFAULT_BATCH_ROWS:
                        writer.write_table(pa.concat_tables(pending), row_group_size=DEFAULT_BATCH_ROWS)
                        pending, gathered = [], 0
                if pending:
                    writer.write_table(pa.concat_tables(pending), row_group_size=DEFAULT_BATCH_ROWS)
            if self.local:
                os.replace(target, final)
            for path, _ in opened:
                self.fs.rm(path)
            replaced_total += len(opened)
        return replaced_total

    def _abandoned(self, partition: str, *, before: datetime) -> list[str]:
        """Temporary files in a settled partition not touched since ``before``: their writer is gone."""
        if not self.local:
            return []  # object stores are written in place: no temporary files
        found = []
        for entry in Path(partition).iterdir():
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                with contextlib.suppress(FileNotFoundError):  # published or removed meanwhile
                    if entry.stat().st_mtime < before.timestamp():
                        found.append(str(entry))
        return found

    def _replaced_leftovers(self, partition: str) -> list[str]:
        names = {str(p).rsplit("/", 1)[-1]: str(p) for p in self.fs.ls(partition, detail=False)}
        readable = {p.rsplit("/", 1)[-1] for p in self.parts(partition)}
        return [path for name, path in names.items() if name.startswith("part-") and name not in readable]

    def expire(self, model: str, *, keep: timedelta, now: datetime | None = None) -> int:
        """Delete the hours of ``model`` that ended more than ``keep`` ago; returns the partitions deleted."""
        now = now or datetime.now(UTC)
        old = self.partitions(model, until=_ended_by(now - keep))
        for partition in old:
            self.fs.rm(partition, recursive=True)
        base = self._model_dir(model)
        if self.fs.isdir(base):
            for day_dir in self.fs.ls(base, detail=False):
                if not self.fs.ls(day_dir, detail=False):
                    self.fs.rmdir(day_dir)
        return len(old)


def _ended_by(moment: datetime) -> datetime:
    """The ``until`` that selects the hour partitions that ended at or before ``moment``."""
    return moment - timedelta(hours=1) + timedelta(microseconds=1)


def _mergeable(opened: list[tuple[str, pq.ParquetFile]]) -> tuple[list[tuple[str, pq.ParquetFile]], pa.Schema]:
    """The parts whose columns' types merge (grown from the biggest part) and their merged schema.

    A part holding a column as another type than the others (text where they hold booleans:
    an import whose values broke the contract) stays as it is: a cast would change what its
    rows, or the others', say. Readers read it beside the merged part as before.
    """
    import pyarrow as pa

    kept: list[tuple[str, pq.ParquetFile]] = []
    schema: pa.Schema | None = None
    for path, footer in sorted(opened, key=lambda part: -part[1].metadata.num_rows):
        own = footer.schema_arrow.remove_metadata()
        try:
            merged = own if schema is None else pa.unify_schemas([schema, own], promote_options="permissive")
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            continue
        kept.append((path, footer))
        schema = merged
    chosen = {path for path, _ in kept}
    in_order = [(path, footer) for path, footer in opened if path in chosen]  # rows keep their order
    return in_order, schema if schema is not None else pa.schema([])


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A part's table on the merged schema: missing columns as nulls, types promoted."""
    import pyarrow as pa

    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema.remove_metadata())


@dataclass(frozen=True)
class LogWindow:
    """Rows of one model in ``[since, until)``, read on demand and in bounded chunks.

    SOP stage: investigate (and the scheduled audits). Memory is one batch at a time,
    whatever the window's size.
    """

    log: PredictionLog
    model: str
    since: datetime | None
    until: datetime | None
    version: str | None = None  # only the rows this version answered, when set

    def files(self) -> list[str]:
        return self.log.files(self.model, since=self.since, until=self.until)

    def stored_rows(self) -> int:
        """Rows in the window's hour partitions, from the footers only (the edge hours may hold a few more)."""
        total = 0
        for path in self.files():
            footer = self.log._open(path)
            total += footer.metadata.num_rows if footer is not None else 0
        return total

    def batches(
        self,
        columns: Sequence[str] | None = None,
        *,
        batch_rows: int | None = DEFAULT_BATCH_ROWS,
        text_as_category: bool = True,
    ) -> Iterator[pd.DataFrame]:
        """The window's rows as frames of at most ``batch_rows`` (None: one frame per part), in part order.

        Consecutive row groups and parts with the same columns share a frame up to ``batch_rows``.
        ``columns`` projects (``ts`` is always read for the window's bounds); a column a part
        lacks is absent from its frames, as it would be from a whole read. Text columns arrive as pandas categoricals unless
        told otherwise: decoding each of a hundred million strings into a Python object is
        most of the cost of a read, and categoricals hold each distinct value once.
        """
        import pyarrow as pa

        wanted = list(dict.fromkeys(columns)) if columns is not None else None
        if wanted is not None and self.version is not None:
            wanted.append("model_version")
        # Row groups (and parts) smaller than ``batch_rows`` are gathered, while their columns
        # match, into one frame: a gateway flushes a small part every second, and each frame
        # costs its consumer a fixed price (a Great Expectations run is most of a second).
        pending: list[pa.RecordBatch] = []
        gathered = 0  # rows in pending
        for path in self.files():
            footer = self.log._open(path)
            if footer is None:
                continue
            schema = footer.schema_arrow
            present = (
                schema.names if wanted is None else [c for c in dict.fromkeys([*wanted, "ts"]) if c in schema.names]
            )
            text = [
                c
                for c in present
                if text_as_category
                and (pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type))
            ]
            bounds = _bounds(schema, self.since, self.until)
            try:
                reader = _reopen(self.log, path, text)
                chunks: Iterator[Any] = (
                    reader.iter_batches(batch_size=batch_rows, columns=present)
                    if batch_rows
                    else iter([reader.read(columns=present)])
                )
            except (OSError, pa.ArrowInvalid) as exc:
                self.log._quarantine(path, exc)
                continue
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except (OSError, pa.ArrowInvalid) as exc:  # torn in the body, past a readable footer
                    self.log._quarantine(path, exc)
                    break
                if bounds is not None:
                    chunk = chunk.filter(bounds(chunk.column("ts")))
                if chunk.num_rows == 0:
                    continue
                if not batch_rows:
                    yield from self._frames([chunk])
                    continue
                if pending and (gathered + chunk.num_rows > batch_rows or not pending[0].schema.equals(chunk.schema)):
                    yield from self._frames(pending)
                    pending, gathered = [], 0
                pending.append(chunk)
                gathered += chunk.num_rows
        if pending:
            yield from self._frames(pending)

    def _frames(self, chunks: list[Any]) -> Iterator[pd.DataFrame]:
        """Record batches or tables of one schema as one frame (none when the version answered none of it)."""
        import pyarrow as pa

        table = chunks[0] if len(chunks) == 1 else pa.Table.from_batches(chunks)
        if isinstance(table, pa.Table):
            table = table.unify_dictionaries()  # each row group has its own dictionary: one categorical
        frame = table.to_pandas()
        if "ts" in frame.columns:
            frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        if self.version is not None:
            frame = answered_by(frame, self.version)
            if frame.empty:
                return
        yield frame

    def frame(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The whole window as one frame (small windows)."""
        if columns is not None and self.version is not None:
            columns = [*columns, "model_version"]
        frame = self.log.read(self.model, since=self.since, until=self.until, columns=columns)
        return frame if self.version is None else answered_by(frame, self.version)


def answered_by(frame: pd.DataFrame, version: str) -> pd.DataFrame:
    """The rows ``version`` answered: the only traffic that is evidence about that version.

    A window spans hours; after a promotion it still holds the previous champion's answers
    (and the fallback's, while contained). Read whole, a repeated alert about a fixed
    failure found the old version's breaches and contained the healthy new champion. A log
    that does not record versions is returned whole.
    """
    if frame.empty or "model_version" not in frame.columns:
        return frame
    return frame[frame["model_version"].astype(str) == str(version)].reset_index(drop=True)


def _bounds(schema: pa.Schema, since: datetime | None, until: datetime | None) -> Any:
    """A mask function for ``since <= ts < until``, compared in the stored column's own unit and zone."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if "ts" not in schema.names or (since is None and until is None):
        return None
    kind = schema.field("ts").type
    if not pa.types.is_timestamp(kind):
        return None  # ts stored as text by some writer: left to the reader's own filter

    def scalar(moment: datetime) -> Any:
        stamp = pd.Timestamp(moment).tz_convert("UTC")
        return pa.scalar(stamp if kind.tz else stamp.tz_localize(None), type=kind)

    low = scalar(since) if since is not None else None
    high = scalar(until) if until is not None else None

    def mask(ts: Any) -> Any:
        keep = None
        if low is not None:
            keep = pc.greater_equal(ts, low)
        if high is not None:
            below = pc.less(ts, high)
            keep = below if keep is None else pc.and_(keep, below)
        return keep

    return mask


def _reopen(log_: PredictionLog, path: str, text: list[str]) -> pq.ParquetFile:
    import pyarrow.parquet as pq

    return pq.ParquetFile(log_.fs.open(path, "rb"), read_dictionary=text or None)


class LabelStore:
    """Ground truth that arrived after the prediction, keyed by request id.

    Each import is one part, published whole (a temporary name renamed into place), so a
    reader never sees half an import.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def append(self, model: str, labels: pd.DataFrame) -> Path:
        folder = self.root / f"model={model_stem(model)}"
        folder.mkdir(parents=True, exist_ok=True)
        # Time-ordered names: when a request is labelled twice, the later label wins on read.
        path = folder / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = folder / f".{path.name}.tmp"
        labels.to_parquet(tmp, index=False)
        os.replace(tmp, path)
        return path

    def read(self, model: str) -> pd.DataFrame:
        files = sorted((self.root / f"model={model_stem(model)}").glob("part-*.parquet"))
        if not files:
            return pd.DataFrame(columns=["request_id"])
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).drop_duplicates(
            "request_id", keep="last"
        )

    def join_batches(self, model: str, batches: Iterable[pd.DataFrame], label: str) -> pd.DataFrame:
        """The labelled rows of a streamed window (memory: the labels and the labelled rows, not the window)."""
        labels = self.read(model)
        if label not in labels.columns:
            return pd.DataFrame(columns=["request_id", label])
        known = labels[["request_id", label]]
        parts = [batch.merge(known, on="request_id", how="inner") for batch in batches]
        parts = [p for p in parts if not p.empty]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["request_id", label])

    def join(self, model: str, predictions: pd.DataFrame, label: str) -> pd.DataFrame:
        """Predictions whose label has arrived, with the label column added."""
        labels = self.read(model)
        if label not in labels.columns:
            return predictions.iloc[0:0].assign(**{label: pd.Series(dtype=float)})
        return predictions.merge(labels[["request_id", label]], on="request_id", how="inner")
