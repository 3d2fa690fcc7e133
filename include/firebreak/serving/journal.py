"""The gateway's journal: what a worker answered is on disk before the answer leaves.

Each gateway worker appends to its own segment files under ``<home>/journal/<model>/``,
one line per scored batch (or refused request), written with one ``write`` call before
the answers are sent. A worker killed with ``kill -9`` loses nothing it answered: the
bytes are in the kernel's page cache and reach the disk without it (a power cut can
still lose the last seconds the kernel had not flushed; fsync per batch would cost a
disk flush per answer). The background drainer (:mod:`firebreak.serving.background`)
turns the lines into the Parquet prediction, rejection and shadow logs.

Segments and who may touch them:

* A worker creates a segment under a dot-name, takes an exclusive ``flock`` on it and
  only then renames it into place, so the drainer never sees an unlocked live segment.
  Rotating (or exiting, or dying) releases the lock: a segment the drainer can lock is
  *sealed* — nobody will append to it again.
* The drainer reads from the offset it committed last (``<segment>.off``), writes the
  complete lines as Parquet parts named after the segment and that offset (so replaying
  after a crash replaces a part instead of adding a copy), then commits the new offset.
  A sealed, fully drained segment is deleted. A torn last line (a write cut short) in a
  sealed segment, or a line that does not decode, is moved to ``quarantine/``: kept for
  a human, never fatal.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from firebreak.model_names import model_stem

log = logging.getLogger(__name__)

PREDICTION = "p"  # a scored batch: one row per answered row
REJECTION = "r"  # a refused request

SEGMENT_BYTES = 8 << 20  # a worker starts a new segment past this size
_SUFFIX = ".jnl"


def _plain(value: Any) -> Any:
    """numpy scalars (and anything else msgspec cannot encode) as plain values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


_encoder = msgspec.json.Encoder(enc_hook=_plain)


class Entry(msgspec.Struct, frozen=True):
    """One journal line: a batch of log rows of one kind; ``shadow`` names the challenger to shadow them with."""

    k: str
    rows: list[dict[str, Any]]
    shadow: str | None = None


_line_decoder = msgspec.json.Decoder(Entry)


def journal_dir(home: Path, model: str) -> Path:
    """``<home>/journal/<stem>`` (:func:`firebreak.model_names.model_stem`): a safe folder for any model name."""
    return home / "journal" / model_stem(model)


class JournalWriter:
    """One worker's appends to its own segments (the request path: one ``write`` per batch).

    Args:
        folder: The model's journal folder.
        segment_bytes: Start a new segment past this size (the drainer deletes sealed ones).
    """

    def __init__(self, folder: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40]
        self.writer = f"{host}-{os.getpid()}-{time.time_ns()}"
        self._fd: int | None = None
        self._seq = 0
        self._size = 0
        self._lock = threading.Lock()
        self._unwritten: list[bytes] = []  # lines a failed write kept (a full disk), retried on the next write
        self.failures = 0

    def write(self, kind: str, rows: list[dict[str, Any]], *, shadow: str | None = None) -> bool:
        """Append one line; True once it is in the kernel. False: kept in memory, retried on the next write."""
        line = _encoder.encode(Entry(kind, rows, shadow)) + b"\n"
        with self._lock:
            self._unwritten.append(line)
            try:
                if self._fd is None or self._size >= self.segment_bytes:
                    self._rotate()
                data = b"".join(self._unwritten)
                assert self._fd is not None
                view = memoryview(data)
                while view:  # a regular file takes it whole; loop in case it does not
                    view = view[os.write(self._fd, view) :]
            except OSError:
                self.failures += 1
                log.exception("journal write failed; %d lines kept in memory", len(self._unwritten))
                return False
            self._size += len(data)
            self._unwritten.clear()
            return True

    def _rotate(self) -> None:
        """Open the next segment (locked before anyone can see it), then seal the current one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"{self.writer}.{self._seq:06d}{_SUFFIX}"
        tmp = self.folder / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(tmp, self.folder / name)
        old, self._fd, self._size = self._fd, fd, 0
        if old is not None:
            os.close(old)  # sealed: the drainer may now finish and delete it

    def close(self) -> None:
        """Seal the current segment (a clean stop; a crash seals it too)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            self.close()


@dataclass
class Batch:
    """The complete lines of one segment read from one offset on."""

    segment: Path
    start: int  # the offset these lines begin at (names the parts written from them)
    end: int  # the offset after the last complete line
    entries: list[Entry] = field(default_factory=list)
    sealed: bool = False  # no writer holds the segment: once drained it can go

    @property
    def name(self) -> str:
        """A deterministic part name: the same lines always land in the same files."""
        return f"{self.segment.stem}-{self.start:012d}"


def _offset(segment: Path) -> int:
    try:
        return int(segment.with_suffix(".off").read_text())
    except (FileNotFoundError, ValueError):
        return 0


def commit(batch: Batch) -> None:
    """Record that ``batch`` is in the logs; a sealed segment read to its end is deleted."""
    off = batch.segment.with_suffix(".off")
    if batch.sealed:
        batch.segment.unlink(missing_ok=True)
        off.unlink(missing_ok=True)
        return
    if batch.end == batch.start:
        return
    tmp = off.with_name(f".{off.name}.tmp")
    tmp.write_text(str(batch.end))
    os.replace(tmp, off)


@contextlib.contextmanager
def draining(folder: Path) -> Iterator[list[Batch]]:
    """The unread lines of every segment in ``folder``, under the folder's drain lock.

    One drainer at a time per folder (the lock), so two never write the same lines twice.
    Lines that cannot be decoded, and the torn tail of a sealed segment, are moved to
    ``quarantine/`` and skipped. The caller writes the batches, then :func:`commit`\\ s each.
    """
    if not folder.is_dir():
        yield []
        return
    with open(folder / ".drain.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        handles = []
        try:
            batches = []
            for segment in sorted(folder.glob(f"*{_SUFFIX}")):
                handle = open(segment, "rb")  # noqa: SIM115 — held until the batch is committed
                handles.append(handle)
                batches.append(_read(segment, handle))
            yield batches
        finally:
            for handle in handles:
                handle.close()  # releases a sealed segment's lock


def _read(segment: Path, handle: Any) -> Batch:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        sealed = True
    except BlockingIOError:
        sealed = False  # its worker is alive and may append
    start = _offset(segment)
    handle.seek(start)
    data = handle.read()
    cut = data.rfind(b"\n") + 1
    batch = Batch(segment, start, start + cut, sealed=sealed)
    for number, line in enumerate(data[:cut].splitlines()):
        try:
            batch.entries.append(_line_decoder.decode(line))
        except msgspec.DecodeError:
            quarantine(segment, f"line {number} after offset {start}", line)
    if sealed and data[cut:]:
        quarantine(segment, f"torn tail at offset {start + cut}", data[cut:])
    return batch


def quarantine(segment: Path, what: str, data: bytes) -> None:
    """Keep ``data`` from ``segment`` (a journal segment or an outbox) for a human, under ``quarantine/``."""
    folder = segment.parent / "quarantine"
    folder.mkdir(exist_ok=True)
    path = folder / f"{segment.stem}-{time.time_ns()}.bad"
    path.write_bytes(data)
    log.error("journal %s: %s (%d bytes) quarantined as %s", segment.name, what, len(data), path.name)


def decode_rows(entries: list[Entry], kind: str) -> list[dict[str, Any]]:
    return [row for e in entries if e.k == kind for row in e.rows]
