"""Opening the database: engine settings per dialect, schema creation and migrations.

SQLite gets WAL (readers never block the writer), ``synchronous=NORMAL`` (durable at each
checkpoint and safe against corruption; the journal makes a lost last transaction harmless,
because its actions are replayed) and a busy timeout, so a ``syncd status`` reading while the
daemon writes waits instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import SQLModel

from syncd.errors import StoreError
from syncd.state.tables import SCHEMA_VERSION, Meta

Migration = Callable[[Connection], None]

# Schema version N -> the step that brings a version N-1 database to N. Each step must be
# safe on a database whose new tables were just made by ``create_all``.
MIGRATIONS: dict[int, Migration] = {}


def make_engine(url: str, busy_timeout: float = 5.0) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": busy_timeout})
            _sqlite_pragmas(engine, busy_timeout)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ModuleNotFoundError) as err:
        raise StoreError(f"cannot use store url {url!r}: {err}") from err
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _sqlite_pragmas(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, say where transactions begin: pysqlite sends no
        # BEGIN before DDL, which would leave half a migration behind when a step fails.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


def migrate(
    engine: Engine, migrations: Mapping[int, Migration] | None = None, target: int = SCHEMA_VERSION
) -> int:
    """Create missing tables and step an older schema forward; refuse a newer one."""
    steps = MIGRATIONS if migrations is None else migrations
    meta = Meta.__table__  # type: ignore[attr-defined]
    try:
        with engine.begin() as conn:
            SQLModel.metadata.create_all(conn)
            row = conn.execute(
                select(meta.c.value).where(meta.c.key == "schema_version")
            ).scalar_one_or_none()
            if row is None:
                conn.execute(meta.insert(), {"key": "schema_version", "value": str(target)})
                return target
            found = int(row)
            if found > target:
                raise StoreError(
                    f"state database {engine.url!r} has schema version {found}, made by a newer "
                    f"syncd; this version reads up to {target}. Upgrade syncd."
                )
            for version in range(found + 1, target + 1):
                steps[version](conn)
            if found != target:
                conn.execute(
                    meta.update().where(meta.c.key == "schema_version"), {"value": str(target)}
                )
            return target
    except OperationalError as err:
        raise StoreError(f"cannot open state database {engine.url!r}: {err.orig}") from err
