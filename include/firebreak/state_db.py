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

metadata = sa.MetaData()

_created: set[tuple[str, str]] = set()
_created_lock = threading.Lock()


def utcnow() -> datetime:
    return datetime.now(UTC)


def jsonable(data: Any) -> Any:
    """Round-trip through JSON so numpy scalars and datetimes never reach the DB driver."""
    return json.loads(json.dumps(data, default=str))


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL per process."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    return engine


def add_missing_columns(engine: Engine, tables: tuple[sa.Table, ...]) -> None:
    """Add nullable columns a newer release declares to tables an older one created.

    ``create_all`` creates missing tables only; a state DB from before a column existed
    (the alias ledger before ``approved_by``) would otherwise fail every insert. Only
    nullable columns are added, so no existing row needs a value.
    """
    inspector = sa.inspect(engine)
    for table in tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not column.nullable:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as conn:
                conn.execute(sa.text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))


class Store:
    """Base of the state DB's stores: an engine shared per URL, the owner's tables created on first use.

    Cheap to construct: the engine is shared per URL and the tables are created once per process.
    """

    tables: ClassVar[tuple[sa.Table, ...]] = ()

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = get_engine(url)
        key = (url, type(self).__qualname__)
        if key not in _created:
            with _created_lock:
                if key not in _created:
                    metadata.create_all(self.engine, tables=list(self.tables))
                    add_missing_columns(self.engine, self.tables)
                    _created.add(key)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn
