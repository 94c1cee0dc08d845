"""Entries -> one VCALENDAR: the bytes a feed serves, their ETag and their gzip form.

Pure apart from caches. Each event is rendered by ``syncd.ical.render`` (the same UID, text
and privacy rules as the events written to calendars) and its VEVENT cut out of the
single-event calendar it returns; the feed then carries one VTIMEZONE per zone, covering
every year its events touch, because a VTIMEZONE per event would repeat a TZID, which
RFC 5545 forbids.

The body is byte-stable: DTSTAMP is the entry's ``changed_at`` and events are ordered by
start and id, so an unchanged feed has an unchanged strong ETag across refreshes and
restarts, and a client's conditional GET keeps getting 304.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Timezone

from syncd.feeds.ledger import Entry
from syncd.ical import SYNCD_PRODID, RenderOptions, render
from syncd.ical.text import escape_text, fold

_BEGIN, _END = "BEGIN:VEVENT\r\n", "END:VEVENT\r\n"
_TZID = re.compile(r"^DTSTART;TZID=([^:;]+):", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class RenderedFeed:
    """What ``GET /feeds/{token}.ics`` serves, computed once per change of the feed."""

    name: str
    body: bytes
    gzipped: bytes
    etag: str  # a strong, quoted entity tag of ``body``
    modified: datetime
    events: int

    @property
    def gzip_etag(self) -> str:
        """The gzip representation is other bytes, so it has its own strong tag."""
        return self.etag[:-1] + '.gz"'


@dataclass(frozen=True, slots=True)
class _Block:
    version: str
    sequence: int
    text: str
    tzid: str


class EventBlocks:
    """VEVENT texts by native id, rendered again only when an entry's version or SEQUENCE
    moves: a refresh after one change renders one event, not ten thousand."""

    def __init__(self, options: RenderOptions) -> None:
        self.options = options
        self._blocks: dict[str, _Block] = {}

    def get(self, entry: Entry) -> _Block:
        key = entry.appointment.native_id
        cached = self._blocks.get(key)
        if cached is not None and (cached.version, cached.sequence) == (
            entry.version,
            entry.sequence,
        ):
            return cached
        ics = render(entry.appointment, self.options, entry.sequence, stamp=entry.changed_at).ics
        text = ics[ics.index(_BEGIN) : ics.rindex(_END) + len(_END)]
        found = _TZID.search(text)
        block = _Block(entry.version, entry.sequence, text, found[1] if found else "")
        self._blocks[key] = block
        return block

    def forget(self, native_ids: set[str]) -> None:
        for native_id in native_ids:
            self._blocks.pop(native_id, None)


def ics_duration(value: timedelta) -> str:
    """``value`` as an RFC 5545 DURATION: ``PT5M``, ``PT1H30M``, ``P1D``."""
    seconds = max(int(value.total_seconds()), 1)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = "P" + (f"{days}D" if days else "")
    clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return text + ("T" + clock if clock else "")


def render_feed(
    name: str,
    entries: Sequence[Entry],
    blocks: EventBlocks,
    refresh: timedelta,
    modified: datetime,
) -> RenderedFeed:
    """The whole feed. ``entries`` are the ones to show; their order here does not matter."""
    ordered = sorted(entries, key=lambda e: (e.appointment.start, e.appointment.native_id))
    events = [blocks.get(entry) for entry in ordered]
    years: dict[str, tuple[int, int]] = {}
    for entry, block in zip(ordered, events, strict=True):
        if block.tzid:
            zone = ZoneInfo(block.tzid)
            first = entry.appointment.start.astimezone(zone).year
            last = entry.appointment.end.astimezone(zone).year
            low, high = years.get(block.tzid, (first, last))
            years[block.tzid] = (min(low, first), max(high, last))
    every = ics_duration(refresh)
    head = [
        "BEGIN:VCALENDAR\r\n",
        "VERSION:2.0\r\n",
        f"PRODID:{SYNCD_PRODID}\r\n",
        "CALSCALE:GREGORIAN\r\n",
        fold(f"NAME:{escape_text(name)}"),
        fold(f"X-WR-CALNAME:{escape_text(name)}"),
        f"REFRESH-INTERVAL;VALUE=DURATION:{every}\r\n",
        f"X-PUBLISHED-TTL:{every}\r\n",
    ]
    zones = [vtimezone(tzid, *years[tzid]) for tzid in sorted(years)]
    text = "".join([*head, *zones, *(b.text for b in events), "END:VCALENDAR\r\n"])
    body = text.encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:40] + '"'
    gzipped = gzip.compress(body, compresslevel=6, mtime=0)
    return RenderedFeed(name, body, gzipped, etag, modified, len(events))


@lru_cache(maxsize=256)
def vtimezone(tzid: str, first_year: int, last_year: int) -> str:
    """A VTIMEZONE for ``tzid`` from 1 January ``first_year`` to the end of ``last_year``.

    Empty when icalendar cannot build one (years at the edge of what ``date`` holds): the
    events keep their IANA TZID, which every common client resolves on its own.
    """
    try:
        component = Timezone.from_tzid(
            tzid, first_date=date(first_year, 1, 1), last_date=date(last_year + 1, 1, 1)
        )
        text: str = component.to_ical().decode()
    except Exception:  # icalendar raises several types for zones and years it cannot do
        return ""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")
