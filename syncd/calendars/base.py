"""The contract every calendar backend implements.

Terms (as in vdirsyncer's storages)
    ITEM    one calendar object: iCalendar text holding one VEVENT (plus VTIMEZONEs).
    HREF    where the item lives in the collection; opaque, given by the backend.
    ETAG    the version of the item at ``href``; changes whenever its content changes.
    TOKEN   a sync token (RFC 6578) naming a state of the collection; opaque.

Writes are conditional, which is what makes replaying them after a crash safe:
    create   ``If-None-Match: *`` at an href derived from the UID. An item already there raises
             ``AlreadyExists`` carrying its href: the caller adopts it, never duplicates.
    update   ``If-Match: etag``. ``PreconditionFailed`` when someone else changed the item.
    delete   ``If-Match: etag``. An item already gone counts as deleted (no error).

Errors (from ``syncd.errors``): ``AuthError`` (401/403, names the calendar), ``NotFound``
(the collection, or the item on update), ``TransientError`` (timeouts, 5xx, 507),
``TokenExpired`` (the server rejected the token: call ``changes(None)``). A malformed item is
returned as it is; parsing is the engine's job, which skips it with a warning naming its href.

The engine never reads SEQUENCE back: syncd owns it and writes it itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from syncd.model import CalendarItem, ItemRef
from syncd.providers.base import Window


class CalendarCapability(StrEnum):
    SYNC_TOKEN = "sync-token"  # changes(token) reports only what changed since the token
    SEARCH = "search"  # items_between(window) for busy-time sources


@dataclass(frozen=True, slots=True)
class CalendarChanges:
    """What changed in the collection since a token.

    With ``complete`` true (no token was given, or the backend had to list everything),
    ``changed`` is every item and an href that is not listed no longer exists.
    ``token`` is stored by the engine only after the changes are committed.
    """

    changed: Sequence[CalendarItem]
    deleted: Sequence[str]
    token: str | None
    complete: bool = False
    requests: int = field(default=0, compare=False)


class Calendar(ABC):
    """One calendar collection. ``name`` is the configured name used in every message."""

    # What this backend can do; an instance may narrow it once it knows its server.
    capabilities: frozenset[CalendarCapability] = frozenset()

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    async def changes(
        self, token: str | None, known: Mapping[str, str] | None = None
    ) -> CalendarChanges:
        """Items changed or deleted since ``token`` (everything when ``token`` is None).

        ``known`` (href -> etag of the items syncd tracks) is passed only to backends without
        ``SYNC_TOKEN``, which then diff a listing of etags against it instead.
        """

    @abstractmethod
    async def get(self, hrefs: Sequence[str]) -> list[CalendarItem]:
        """The items at ``hrefs`` (one multiget); hrefs that do not exist are left out."""

    @abstractmethod
    async def create(self, uid: str, ics: str) -> ItemRef:
        """Store a new item for ``uid``; ``AlreadyExists`` if one is there already."""

    @abstractmethod
    async def update(self, href: str, ics: str, etag: str) -> ItemRef:
        """Replace the item if it is still at ``etag``; ``PreconditionFailed`` otherwise."""

    @abstractmethod
    async def delete(self, href: str, etag: str) -> None:
        """Remove the item if it is still at ``etag``; gone already counts as done."""

    async def items_between(self, window: Window) -> list[CalendarItem]:
        """Items with an occurrence in ``window`` (recurring items unexpanded)."""
        raise NotImplementedError(f"{type(self).__name__} cannot search")

    async def check(self) -> None:
        """Prove the collection is reachable with these credentials."""

    async def aclose(self) -> None:
        """Release connections."""
