"""The feed store's own tables: what each feed last published, so SEQUENCE only ever grows.

A feed is not a calendar the sync writes to, so it has no links of its own in the state
store; these rows are its memory. They survive restarts because a subscriber's client keeps
the events it saw: after a restart a changed event must still come with a higher SEQUENCE,
and a vanished one must still be published as cancelled for a while.

The tables sit in the same database as the state store (``SQLModel.metadata``), so they are
created with it and share its transactions' durability.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class FeedEventRow(SQLModel, table=True):
    """One event as feed ``feed`` last published it."""

    __tablename__ = "feed_events"

    feed: str = Field(primary_key=True)
    native_id: str = Field(primary_key=True)
    version: str  # the appointment's content hash bound to the feed's render options
    sequence: int = 0
    data: str  # Appointment.to_json(), as published (a vanished one is stored cancelled)
    changed_at: datetime  # DTSTAMP of the published event
    cancelled_at: datetime | None = None  # when the feed first published it as cancelled


class FeedMetaRow(SQLModel, table=True):
    """A feed's current ETag and when its body last changed (its Last-Modified)."""

    __tablename__ = "feed_meta"

    feed: str = Field(primary_key=True)
    etag: str
    modified_at: datetime
