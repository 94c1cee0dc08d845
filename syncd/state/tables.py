"""The state database's tables (SQLModel), portable between SQLite and PostgreSQL.

Nothing here uses SQLite-only SQL: upserts go through SQLAlchemy's ``on_conflict_do_update``,
which both dialects implement, and JSON is stored as text. ``SCHEMA_VERSION`` is written to
``meta``; ``syncd.state.migrate`` brings an older database forward and refuses a newer one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 1


class Meta(SQLModel, table=True):
    __tablename__ = "meta"

    key: str = Field(primary_key=True)
    value: str


class CursorRow(SQLModel, table=True):
    """Where a pull got to: a provider scope's watermark/token, or a calendar's sync token."""

    __tablename__ = "cursors"

    scope: str = Field(primary_key=True)  # "provider:<sync>" or "calendar:<sync>:<calendar>"
    sync: str = Field(index=True)
    value: str  # JSON object of strings
    updated_at: datetime


class AppointmentRow(SQLModel, table=True):
    """The last agreed version of an appointment (the base of the three-way merge)."""

    __tablename__ = "appointments"

    sync: str = Field(primary_key=True)
    native_id: str = Field(primary_key=True)
    data: str  # Appointment.to_json()
    hash: str
    start: datetime  # UTC, for window queries
    updated_at: datetime


class LinkRow(SQLModel, table=True):
    """One appointment's event in one calendar. An empty ``href`` means detached: the person
    deleted the event and the sync's policy leaves it deleted until the appointment changes."""

    __tablename__ = "links"
    __table_args__ = (Index("ix_links_href", "sync", "calendar", "href"),)

    sync: str = Field(primary_key=True)
    native_id: str = Field(primary_key=True)
    calendar: str = Field(primary_key=True)
    uid: str
    href: str
    etag: str
    event_hash: str
    sequence: int = 0
    updated_at: datetime


class JournalRow(SQLModel, table=True):
    """One planned action. Written before it is applied; marked done in the same transaction
    as its state change, so a crash leaves exactly the unfinished ones ``pending``."""

    __tablename__ = "journal"
    __table_args__ = (
        Index("ix_journal_pending", "sync", "state"),
        Index("ix_journal_run", "sync", "run_id"),  # pruning old runs must not scan the table
    )

    id: int | None = Field(default=None, primary_key=True)
    sync: str
    run_id: int
    kind: str
    payload: str
    state: str = "pending"  # pending | done | failed
    error: str = ""
    created_at: datetime
    updated_at: datetime


class ConflictRow(SQLModel, table=True):
    __tablename__ = "conflicts"

    id: int | None = Field(default=None, primary_key=True)
    sync: str = Field(index=True)
    native_id: str
    calendar: str
    detail: str
    resolution: str
    created_at: datetime


class ItemErrorRow(SQLModel, table=True):
    """An item a backend handed us that could not be read; kept until it reads cleanly."""

    __tablename__ = "item_errors"

    sync: str = Field(primary_key=True)
    item: str = Field(primary_key=True)
    field: str
    message: str
    seen_at: datetime


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_sync_started", "sync", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    sync: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"  # running | ok | failed | refused | dry-run
    counts: str = "{}"
    error: str = ""


class BusyLinkRow(SQLModel, table=True):
    """One busy block syncd placed at the provider, and the source event occurrence it stands
    for. ``key`` is ``BusyBlock.key`` (calendar/uid/recurrence-id); ``href`` is where the source
    event lives, so a deleted event finds its blocks; ``end`` (UTC) lets a block that slid out
    of the past end of the window be forgotten instead of removed."""

    __tablename__ = "busy_links"
    __table_args__ = (Index("ix_busy_links_href", "sync", "calendar", "href"),)

    sync: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    calendar: str
    href: str
    native_id: str  # the provider's id, as add_busy returned it
    block_hash: str
    end: datetime
    updated_at: datetime


class IntakeRow(SQLModel, table=True):
    """An intake event syncd could not book (``syncd.intake``): the reason, and the etag and
    content hash of the version syncd marked ``[not booked: ...]``. Reading that version back
    plans nothing; a person's edit changes both, and the event is tried again."""

    __tablename__ = "intake"

    sync: str = Field(primary_key=True)
    calendar: str = Field(primary_key=True)
    href: str = Field(primary_key=True)
    uid: str
    reason: str
    etag: str
    event_hash: str
    updated_at: datetime
