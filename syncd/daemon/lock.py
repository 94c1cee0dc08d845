"""One daemon per state database: a second ``syncd run`` on the same database stops at once.

SQLite: an exclusive ``flock`` on ``<database>.lock`` beside the database file, held for the
daemon's life and released by the kernel when the process ends however it ends (kill -9
included), so a crash never leaves a stale lock behind. The holder's pid is written into
the file, for the message the second daemon prints.

PostgreSQL: a session advisory lock on a connection held open for the daemon's life, with
the same guarantee (the server drops it with the session). One lock for the whole database:
spreading syncs over several daemons, each holding per-sync locks (DESIGN section 7), is a
later step.

One-shot commands (``syncd sync``, ``status``) do not take the lock: SQLite's WAL and the
journal make them safe beside a running daemon.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from syncd.errors import StoreError, UserError

#: The advisory lock key: the first eight bytes of "syncd" + "run" as a signed bigint.
_PG_KEY = int.from_bytes(b"syncdrun", "big", signed=True)


class AlreadyRunning(UserError):
    """Another daemon holds the state database."""


class StateLock:
    def __init__(self, file: IO[str] | None = None, conn: Connection | None = None) -> None:
        self._file = file
        self._conn = conn

    @classmethod
    def acquire(cls, url: str) -> StateLock:
        if url.startswith("sqlite"):
            path = sqlite_path(url)
            return cls(file=_flock(path)) if path is not None else cls()
        return cls(conn=_advisory(url))

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None
        if self._conn is not None:
            engine = self._conn.engine
            self._conn.close()
            engine.dispose()
            self._conn = None


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    rest = rest.split("?", 1)[0]
    return None if rest in ("", ":memory:") else Path(rest)


def _flock(database: Path) -> IO[str]:
    path = database.with_name(database.name + ".lock")
    try:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 -- held for the daemon's life
    except OSError as err:
        raise StoreError(f"cannot create lock file {path}: {err.strerror or err}") from err
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise AlreadyRunning(
            f"another syncd{who} is already running on the state database {database}; "
            f"stop it first, or give this one its own [store] url"
        ) from None
    os.chmod(path, 0o600)
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _advisory(url: str) -> Connection:
    try:
        engine = create_engine(url, pool_pre_ping=True)
        conn = engine.connect()
        taken = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_KEY}).scalar()
        conn.commit()
    except (SQLAlchemyError, ModuleNotFoundError) as err:
        # Only the error's class is shown: the driver's text may quote the URL's password.
        raise StoreError(f"cannot lock the state database: {type(err).__name__}") from err
    if not taken:
        conn.close()
        engine.dispose()
        raise AlreadyRunning(
            "another syncd is already running on this PostgreSQL state database; stop it first"
        )
    return conn
