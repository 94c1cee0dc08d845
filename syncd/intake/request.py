"""What a provider is asked to book for an intake event, and the reference that finds it again.

Pure values with no I/O, imported by ``syncd.providers.base``: a provider reads an
``IntakeRequest`` and never parses calendar text itself.

The ``reference`` is what makes booking crash-safe. It is derived from the sync, the calendar
and the event's UID only, so the same event always carries the same reference; a provider
stores it with the booking (in a remark, a contact-form field, a customer identifier) and
``find_booking`` looks for it after a crash. It is ``syncd`` plus 32 lower-case hex digits
(37 characters of ``[a-z0-9]``), which fits the strictest identifier field we know of
(Qmatic's ``personalIdentifier``: 10-48 letters and digits).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from syncd.model import require_aware

#: The title prefix of an event that could not be booked: ``[not booked: <reason>] ``.
NOT_BOOKED = "[not booked: {reason}] "
#: Reasons are cut to this many characters in the title; the conflict entry keeps them whole.
REASON_IN_TITLE = 120


def intake_reference(sync: str, calendar: str, uid: str) -> str:
    """The stable booking reference of event ``uid`` in ``calendar`` of ``sync``.

    MUST NEVER CHANGE: a booking made before an upgrade is found after a crash only by it.
    """
    key = f"{sync}\0{calendar}\0{uid}".encode("utf-8", "surrogatepass")
    return "syncd" + hashlib.sha256(key).hexdigest()[:32]


def not_booked_prefix(reason: str) -> str:
    """The title prefix for ``reason``, on one line and cut to ``REASON_IN_TITLE``."""
    text = " ".join(reason.split())
    if len(text) > REASON_IN_TITLE:
        text = text[: REASON_IN_TITLE - 1] + "…"
    return NOT_BOOKED.format(reason=text or "refused")


@dataclass(frozen=True, slots=True)
class Person:
    """Someone named on the event: its ORGANIZER or an ATTENDEE (e-mail lower case)."""

    name: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class IntakeRequest:
    """One event to book, as the person wrote it.

    ``summary`` has any earlier ``[not booked: ...]`` prefix removed. ``fields`` are the
    ``key: value`` lines of the description (keys lower case, first one wins), for contact
    forms and codes; ``description`` is the whole text. ``start``/``end`` are aware instants.
    ``calendar``/``href`` say where the event lives, for messages only.
    """

    reference: str
    calendar: str
    href: str
    uid: str
    start: datetime
    end: datetime
    summary: str = ""
    description: str = ""
    location: str = ""
    organizer: Person | None = None
    attendees: tuple[Person, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_aware("start", self.start)
        require_aware("end", self.end)

    @property
    def contact(self) -> Person:
        """Whom the booking is for: the first attendee with an address, else the organizer."""
        for person in self.attendees:
            if person.email:
                return person
        return self.organizer or (self.attendees[0] if self.attendees else Person())

    def answer(self, key: str) -> str:
        """The description line ``key: value`` (any case), or ``""``."""
        return self.fields.get(key.lower(), "")
