"""The incremental-pull cursor of OnlineAfspraken: a watermark in the server's wall time.

What a pull asks for. An incremental pull is ONE ``getAppointments`` per agenda with
``UpdatedAfter`` (plus ``IncludeCancelled=1``), so an idle cycle costs one request. New
appointments arrive through the same filter because the server stamps ``UpdateTime`` when it
creates an appointment (the sandbox does; an account where it does not would show new
bookings only at the next full scan). ``CreatedAfter`` with the same watermark is an opt-in
second request per cycle (``watch_created``) for such an account: it doubles the idle cost,
which is why it is not the default.

The watermark. ``UpdatedAfter`` compares second-resolution wall times, the server's clock
stamps them, and a change committed while we read may carry a time we already passed. So the
next watermark is the newest ``UpdateTime`` seen, but never later than the server's ``Date``
(of the first reply) minus an ``overlap``, and never earlier than the previous watermark.
While changes are recent that is "newest minus the overlap"; once the server's clock is an
overlap past the newest change, the watermark steps up to that change itself, so what the
overlap re-delivers shrinks to nothing on an idle account instead of coming back for ever.
With nothing new seen, the watermark stays: the server's ``Date`` alone never moves it, in
case that clock and the one stamping ``UpdateTime`` disagree. A full pull starts at the
newest change of its listing, capped the same way (the server's ``Date`` minus the overlap
when the listing is empty). What the overlap re-delivers is not re-reported: the cursor keeps,
for each item stamped after the watermark, a fingerprint of the version already reported.

The repeated autumn hour. Wall times from 02:00 to 03:00 occur twice; a change in the second
run is stamped earlier than one in the first. While the server's clock has not left that
hour, the watermark is held at its start (minus the overlap): the hour is re-read until it is
over, and the fingerprints keep it from being re-reported.

A cursor that cannot be read, or that lies after the server's clock (the server's time went
back), raises ``TokenExpired``: the engine then pulls the window afresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from syncd.errors import TokenExpired
from syncd.providers.base import Cursor
from syncd.providers.oa_mapping import (
    change_stamp,
    fingerprint,
    localize,
    parse_wall,
    repeated_hour,
    text,
)

WALL_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_SEEN = 5000  # past this many re-delivered items, re-reporting them is cheaper than a cursor


@dataclass(frozen=True, slots=True)
class Watermark:
    """``after`` is the naive server wall time for ``UpdatedAfter``; ``seen`` maps the native
    id of each item stamped after it to the fingerprint of the version already reported."""

    after: datetime
    seen: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, cursor: Cursor, backend: str) -> Watermark:
        try:
            after = datetime.strptime(cursor["updated_after"], WALL_FORMAT)
            seen: dict[str, str] = {}
            for pair in filter(None, cursor.get("seen", "").split(",")):
                native_id, fp = pair.split(":")
                seen[native_id] = fp
        except (KeyError, ValueError) as err:
            raise TokenExpired(backend, f"unreadable cursor ({err})") from None
        return cls(after, seen)

    def to_cursor(self) -> dict[str, str]:
        seen = ",".join(f"{native_id}:{fp}" for native_id, fp in sorted(self.seen.items()))
        return {"updated_after": self.param(), "seen": seen}

    def param(self) -> str:
        return self.after.strftime(WALL_FORMAT)

    def already_reported(self, native_id: str, element: Element) -> bool:
        """Whether this very version of the item was reported by an earlier pull."""
        reported = self.seen.get(native_id)
        return reported is not None and reported == fingerprint(element)


@dataclass(frozen=True, slots=True)
class ServerTime:
    """The server's clock at its first reply: its wall time and, when sent, unix time."""

    wall: datetime
    timestamp: float


def server_time(date: str, timestamp: int | None, fallback: float, zone: ZoneInfo) -> ServerTime:
    """The server's clock from a reply's ``Date`` (wall time) and ``Timestamp`` (unix time);
    whichever is missing or unreadable is derived from the other, or from ``fallback``."""
    stamp = float(timestamp) if timestamp is not None else fallback
    try:
        wall = parse_wall(date)
    except ValueError:
        wall = datetime.fromtimestamp(stamp, zone).replace(tzinfo=None)
    return ServerTime(wall, stamp)


Stamped = tuple[str, datetime | None, Element]


def stamps(elements: Iterable[tuple[int, Element]]) -> list[Stamped]:
    """(native id, change time, element) of listed elements, for ``next_watermark``."""
    return [(text(e, "Id"), change_stamp(e), e) for _, e in elements]


def next_watermark(
    previous: Watermark | None,
    stamped: Iterable[Stamped],
    server: ServerTime,
    overlap: timedelta,
    zone: ZoneInfo,
) -> Watermark:
    """The watermark after a pull that saw ``stamped`` (native id, change time, element);
    ``previous`` is ``None`` after a full pull. The rules are in the module text. Only the
    items stamped after the new watermark are fingerprinted: usually none or a few."""
    items = list(stamped)
    newest = max((stamp for _, stamp, _ in items if stamp is not None), default=None)
    ceiling = server.wall - overlap
    if newest is None:
        after = previous.after if previous else ceiling
    else:
        after = min(newest, ceiling)
        if previous is not None:
            after = max(after, previous.after)
    after = _hold_before_repeat(after, server.timestamp, overlap, zone)
    fresh = [(nid, e) for nid, stamp, e in items if stamp is not None and stamp > after]
    if len(fresh) > MAX_SEEN:
        return Watermark(after)
    return Watermark(after, {nid: fingerprint(e) for nid, e in fresh})


def check_not_ahead(previous: Watermark, server: ServerTime, backend: str) -> None:
    """A watermark after the server's clock means the clock went back: start over."""
    if previous.after > server.wall:
        raise TokenExpired(
            backend, f"cursor {previous.param()} is after the server's time {server.wall}"
        )


def _hold_before_repeat(
    after: datetime, server_timestamp: float, overlap: timedelta, zone: ZoneInfo
) -> datetime:
    span = repeated_hour((after + overlap).date(), zone) or repeated_hour(after.date(), zone)
    if span is None:
        return after
    start, end = span
    if server_timestamp >= localize(end, zone).timestamp():
        return after  # the hour is over: every stamp from now on is later than all of it
    return min(after, start - overlap)
