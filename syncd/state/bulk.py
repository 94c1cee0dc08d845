"""Writing many rows at once: one executemany per statement, in the connection's dialect.

A first sync writes three rows per appointment (its journal entry, its record, its link), so
how rows reach the database decides much of a sync's speed. SQLAlchemy's executemany runs
every value of every row through its type processors and builds a parameter dict per row;
at 10,000 appointments that took longer than SQLite took to store them.

On SQLite the rows therefore go to the driver directly: the statement is compiled once per
(table, columns) by SQLAlchemy itself, values that are the same for every row (``constants``,
such as the time of the write) are converted once, and only columns whose type has a
processor are converted per row -- by the very processors SQLAlchemy would have used, so the
stored bytes are identical (``tests/test_bulk.py`` compares them). Other databases take
SQLAlchemy's ordinary path; PostgreSQL's driver is not where the time goes there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Table
from sqlalchemy.dialects import postgresql, sqlite

from syncd.errors import StoreError

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # The driver's parameters, in its order, picked from a row's values followed by the
    # constants; None when that order is already the row's.
    pick: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None
    processors: tuple[Processor, ...]  # per row value, in the row's order


_CACHE: dict[
    tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...] | None], _Compiled
] = {}


def insert_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
) -> None:
    """INSERT each row (values in ``columns`` order), plus ``constants`` in every row."""
    _write(conn, table, columns, rows, constants or {}, None)


def upsert_rows(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
) -> None:
    """INSERT ... ON CONFLICT (``keys``) DO UPDATE every other column, for each row."""
    _write(conn, table, columns, rows, constants or {}, tuple(keys))


def upsert(
    conn: Connection, table: Table, keys: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """``upsert_rows`` for rows given as dicts that all have the same keys."""
    if not rows:
        return
    columns = list(rows[0])
    upsert_rows(conn, table, keys, columns, ([row[c] for c in columns] for row in rows))


def _write(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    constants: Mapping[str, Any],
    keys: tuple[str, ...] | None,
) -> None:
    batch = rows if isinstance(rows, list) else list(rows)
    if not batch:
        return
    names = (*columns, *constants)
    if conn.dialect.name != "sqlite":
        stmt = _statement(conn.dialect, table, names, keys)
        const = list(constants.items())
        conn.execute(stmt, [dict(zip(columns, row, strict=True)) | dict(const) for row in batch])
        return
    compiled = _compile(conn.dialect, table, tuple(columns), tuple(constants), keys)
    fixed = [_converted(table, name, conn.dialect, value) for name, value in constants.items()]
    conn.exec_driver_sql(compiled.sql, _params(compiled, batch, fixed))


def _params(
    compiled: _Compiled, rows: list[Sequence[Any]], fixed: list[Any]
) -> list[tuple[Any, ...]]:
    converting = [(i, p) for i, p in enumerate(compiled.processors) if p is not None]
    tail = tuple(fixed)
    if converting:
        converted: list[tuple[Any, ...]] = []
        for row in rows:
            values = list(row)
            for i, processor in converting:
                values[i] = processor(values[i])
            converted.append((*values, *tail))
    else:
        converted = [(*row, *tail) for row in rows]
    pick = compiled.pick
    return converted if pick is None else [pick(values) for values in converted]


def _statement(
    dialect: Dialect, table: Table, names: Sequence[str], keys: tuple[str, ...] | None
) -> Any:
    if keys is None:
        return table.insert()
    insert: Any
    if dialect.name == "postgresql":
        insert = postgresql.insert(table)
    elif dialect.name == "sqlite":
        insert = sqlite.insert(table)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise StoreError(f"unsupported database dialect {dialect.name}")
    updates = {name: insert.excluded[name] for name in names if name not in keys}
    return insert.on_conflict_do_update(index_elements=list(keys), set_=updates)


def _compile(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    constants: tuple[str, ...],
    keys: tuple[str, ...] | None,
) -> _Compiled:
    cache_key = (dialect.name, table.name, columns, constants, keys)
    found = _CACHE.get(cache_key)
    if found is not None:
        return found
    names = (*columns, *constants)
    compiled = _statement(dialect, table, names, keys).compile(
        dialect=dialect, column_keys=list(names)
    )
    order = list(compiled.positiontup or [])
    if not compiled.positional or sorted(order) != sorted(names):
        raise StoreError(f"cannot bulk-write {table.name}: unexpected parameters {order}")
    given = list(names)
    sources = [given.index(name) for name in order]
    pick = None if sources == list(range(len(names))) else _picker(sources)
    processors = tuple(_processor(table, name, dialect) for name in columns)
    result = _Compiled(str(compiled), pick, processors)
    _CACHE[cache_key] = result
    return result


def _picker(sources: list[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    get = itemgetter(*sources)
    if len(sources) == 1:
        return lambda values: (get(values),)
    return get


def _processor(table: Table, name: str, dialect: Dialect) -> Processor:
    """The converter SQLAlchemy itself applies to ``name``'s values in ``dialect``, if any."""
    processor: Processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _converted(table: Table, name: str, dialect: Dialect, value: Any) -> Any:
    processor = _processor(table, name, dialect)
    return value if processor is None else processor(value)
