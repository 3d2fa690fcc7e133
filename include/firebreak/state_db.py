"""The Firebreak state DB: one SQLAlchemy engine per URL, tables owned by four stores.

SQLAlchemy Core on any URL: a SQLite file by default, PostgreSQL in production. The
tables share one ``MetaData`` but each belongs to the store of the concept that owns it:

* :class:`firebreak.incidents.store.IncidentStore` — incidents, timeline, evidence;
* :class:`firebreak.containment.state.RoutingStore` — routing, breakers, breaker events;
* :class:`firebreak.registry.ledger.AliasLedger` — the append-only alias ledger;
* :class:`firebreak.alerts.store.DeliveryStore` — alert deliveries and episodes.

Every state change is a single statement or a compare-and-set, so a task that runs
twice (Airflow may retry after a heartbeat timeout) changes nothing the second time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from firebreak.errors import ConfigurationError

metadata = sa.MetaData()

_created: set[tuple[str, str]] = set()
_created_lock = threading.Lock()


def utcnow() -> datetime:
    return datetime.now(UTC)


def jsonable(data: Any) -> Any:
    """Round-trip through JSON so numpy scalars and datetimes never reach the DB driver."""
    return json.loads(json.dumps(data, default=str))


@lru_cache(maxsize=8)
def get_engine(url: str, timeout: float = 30.0) -> Engine:
    """One engine per URL (and lock wait) per process.

    ``timeout`` bounds how long a statement waits for a lock (or a connection): 30 s
    for the DAG's tasks, well under a second for the serving gateway, which must never
    wait on the state DB (it keeps serving and retries instead).
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": timeout}, pool_timeout=timeout)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            cursor.close()
    elif timeout < 30 and url.startswith("postgresql"):
        ms = max(1, int(timeout * 1000))
        engine = sa.create_engine(
            url,
            pool_pre_ping=True,
            pool_timeout=timeout,
            connect_args={
                "connect_timeout": max(1, round(timeout)),
                "options": f"-c lock_timeout={ms} -c statement_timeout={ms}",
            },
        )
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    return engine


def add_missing_columns(engine: Engine, tables: tuple[sa.Table, ...]) -> list[str]:
    """Add the nullable columns a newer Firebreak declares to tables an older one created.

    ``create_all`` creates missing tables but never changes existing ones, so a state DB
    file from an earlier release would lack a column added since (the alias ledger's
    ``digest``, say) and every insert would fail. Only nullable columns are added: they
    need no backfill, and older rows read as "not recorded". Returns ``table.column`` added.
    """
    inspector = sa.inspect(engine)
    added = []
    for table in tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise ConfigurationError(f"state DB table {table.name} lacks NOT NULL column {column.name}: migrate it")
            kind = column.type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as conn:
                    conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
            except sa.exc.DBAPIError:
                # Another process added it first ("duplicate column"): fine if it is there now.
                if column.name not in {c["name"] for c in sa.inspect(engine).get_columns(table.name)}:
                    raise
                continue
            added.append(f"{table.name}.{column.name}")
    return added


class Store:
    """Base of the state DB's stores: an engine shared per URL, the owner's tables created on first use.

    Cheap to construct: the engine is shared per URL and the tables are created once per process.
    """

    tables: ClassVar[tuple[sa.Table, ...]] = ()

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.engine = get_engine(url, timeout)
        key = (url, type(self).__qualname__)
        if key not in _created:
            with _created_lock:
                if key not in _created:
                    try:
                        metadata.create_all(self.engine, tables=list(self.tables))
                        add_missing_columns(self.engine, self.tables)
                    except sa.exc.OperationalError:
                        if timeout >= 30:
                            raise
                        # A gateway starting while the DB is locked serves on its fail-safe
                        # state; the tables (and columns) are made by the next store constructed.
                        return
                    _created.add(key)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn
