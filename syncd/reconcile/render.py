"""How one sync renders appointments: its ``RenderOptions`` bound to its account.

``hash()`` is what ``plan()`` compares a calendar event against to recognise an echo of our
own write; it is cached because a full scan asks for it once per changed event.
"""

from __future__ import annotations

from functools import lru_cache

from syncd.ical import RenderedEvent, RenderOptions, content_hash, event_uid, render
from syncd.model import Appointment


class SyncRenderer:
    """Renders for one sync. Every target calendar gets the same content."""

    def __init__(self, account: str, options: RenderOptions) -> None:
        self.account = account
        self.options = options
        self._hash = lru_cache(maxsize=4096)(self._uncached_hash)

    def uid(self, native_id: str) -> str:
        return event_uid(self.account, native_id)

    def render(self, appointment: Appointment, calendar: str, sequence: int) -> RenderedEvent:
        return render(appointment, self.options, sequence)

    def hash(self, appointment: Appointment, calendar: str) -> str:
        return self._hash(appointment)

    def hash_text(self, ics: str) -> str:
        return content_hash(ics)

    def _uncached_hash(self, appointment: Appointment) -> str:
        return render(appointment, self.options, 0).hash
