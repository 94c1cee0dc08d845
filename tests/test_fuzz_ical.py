"""Fuzzing the calendar side: iCalendar objects as CalDAV servers hand them to syncd.

Calendars hold what other people's clients wrote (invitations, shared calendars, the busy
sources), so anything may come. Hypothesis builds calendar objects property by property,
each right or wrong (unknown zones, impossible dates, durations of millions of days, rules
of every second or with ``INTERVAL=0``, a series begun a century ago, huge texts, control
characters), and damages some whole (nesting thousands deep, cut off, Latin-1 or raw bytes,
NUL, no VEVENT, lines of bare CR, four megabytes of tiny lines). Whatever comes:

* ``parse_event`` returns an event or raises ``BadItem`` naming the href (DESIGN.md 6.4);
* ``calendar_view`` reads a batch holding such an object beside sound ones: the sound ones
  are read, the bad one is named, nothing raises;
* ``busy_blocks`` (busy sources, recurrences expanded) returns blocks or raises ``BadItem``
  naming the href, and never expands without bound.

The budget is fixed by ``max_examples``; tests/fuzz_report.py prints how many cases ran.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.busy.expand import MAX_OCCURRENCES, busy_blocks
from syncd.busy.options import BusyOptions
from syncd.calendars.base import CalendarChanges
from syncd.errors import BadItem
from syncd.ical import parse_event
from syncd.model import CalendarItem
from syncd.providers.base import Window
from syncd.reconcile.views import BadItems, calendar_view
from tests.fuzz_report import ran

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WINDOW = Window(datetime(2026, 11, 20, tzinfo=UTC), datetime(2027, 11, 20, tzinfo=UTC))
OPTIONS = BusyOptions(owners=frozenset({"anna@example.org"}), zone=AMSTERDAM)
FUZZ = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

# -- strategies --------------------------------------------------------------------------------

stamps = st.builds(
    lambda d, s: f"{d:%Y%m%d}T{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}",
    st.dates(min_value=datetime(1900, 1, 1).date(), max_value=datetime(2100, 1, 1).date()),
    st.integers(0, 86399),
)
soon = st.builds(
    lambda m: f"{datetime(2026, 11, 23, 9) + timedelta(minutes=m):%Y%m%dT%H%M%S}",
    st.integers(0, 60 * 24 * 60),
)
moments = st.one_of(
    soon.map(lambda s: f":{s}Z"),
    soon.map(lambda s: f";TZID=Europe/Amsterdam:{s}"),
    soon.map(lambda s: f":{s}"),  # floating
    soon.map(lambda s: f";VALUE=DATE:{s[:8]}"),
    stamps.map(lambda s: f":{s}Z"),
    st.sampled_from(
        [
            ":20261330T250000Z",
            ":abc",
            ":",
            ";TZID=Nowhere/Land:20261123T100000",
            ";TZID=:20261123T100000",
            ";VALUE=DATE:20260230",
            ":99999999T999999Z",
            ":00000101T000000Z",
            ";VALUE=PERIOD:20261123T100000Z/PT1H",
        ]
    ),
)
durations = st.one_of(
    st.integers(0, 10**6).map(lambda s: f":PT{s}S"),
    st.sampled_from([":P1D", ":-PT1H", ":PT", ":P99999999999999D", ":x", ":P1W2D", ":PT0S"]),
)
freqs = st.sampled_from(
    ["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY", "BOGUS"]
)


@st.composite
def rules(draw: st.DrawFn) -> str:
    parts = [f"FREQ={draw(freqs)}"]
    extras = {
        "INTERVAL": st.sampled_from(["0", "1", "2", "7", "999999999", "-1", "x"]),
        "COUNT": st.sampled_from(["1", "3", "100000000", "0", "-5"]),
        "UNTIL": st.one_of(stamps.map(lambda s: s + "Z"), st.sampled_from(["20200101", "never"])),
        "BYDAY": st.sampled_from(["MO", "MO,WE,FR", "-1SU", "53MO", "XX"]),
        "BYMONTHDAY": st.sampled_from(["1", "30", "31", "-1", "0", "99"]),
        "BYMONTH": st.sampled_from(["2", "2,3", "13", "0"]),
        "BYSETPOS": st.sampled_from(["1", "-1", "-6", "400"]),
        "BYWEEKNO": st.sampled_from(["1", "53", "-53", "60"]),
        "WKST": st.sampled_from(["MO", "SU", "ZZ"]),
    }
    for name, values in extras.items():
        if draw(st.booleans()) and draw(st.booleans()):
            parts.append(f"{name}={draw(values)}")
    return ";".join(parts)


HUGE = "\u2063HUGE\u2063"  # 300,000 characters when built: a failing case's repr stays short
texts = st.one_of(
    st.text(max_size=30),
    st.just(HUGE),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Zs"]), max_size=20),
)


@st.composite
def event_lines(draw: st.DrawFn, uid: str) -> list[str]:
    lines = ["BEGIN:VEVENT"]
    if draw(st.integers(0, 9)):
        lines.append(f"UID:{uid}")
    if draw(st.integers(0, 9)):
        lines.append("DTSTART" + draw(moments))
    end = draw(st.sampled_from(["DTEND", "DTEND", "DURATION", "none"]))
    if end == "DTEND":
        lines.append("DTEND" + draw(moments))
    elif end == "DURATION":
        lines.append("DURATION" + draw(durations))
    if draw(st.booleans()):
        lines.append("SUMMARY:" + draw(texts).replace("\r", " ").replace("\n", " "))
    if draw(st.integers(0, 3)) == 0:
        lines.append("RRULE:" + draw(rules()))
    if draw(st.integers(0, 5)) == 0:
        lines.append("EXDATE" + draw(moments))
    if draw(st.integers(0, 5)) == 0:
        lines.append("RDATE" + draw(moments))
    if draw(st.integers(0, 5)) == 0:
        lines.append("RECURRENCE-ID" + draw(moments))
    if draw(st.integers(0, 4)) == 0:
        status = draw(st.sampled_from(["CANCELLED", "CONFIRMED", "", "WHATEVER"]))
        lines.append(f"STATUS:{status}")
    if draw(st.integers(0, 4)) == 0:
        lines.append("TRANSP:" + draw(st.sampled_from(["OPAQUE", "TRANSPARENT", "MAYBE"])))
    if draw(st.integers(0, 4)) == 0:
        partstat = draw(st.sampled_from(["DECLINED", "ACCEPTED", "?"]))
        lines.append(f"ATTENDEE;PARTSTAT={partstat}:mailto:anna@example.org")
    if draw(st.integers(0, 6)) == 0:
        lines += ["X-SYNCD-SYNC:salon", "X-SYNCD-ACCOUNT:salon", "X-SYNCD-ID:" + draw(texts)]
    if draw(st.integers(0, 6)) == 0:
        lines += ["BEGIN:VALARM", "TRIGGER:-PT15M", "ACTION:DISPLAY", "END:VALARM"]
    lines.append("END:VEVENT")
    return lines


@dataclass(frozen=True)
class Recipe:
    """One calendar object, before its huge parts are made (see ``build``)."""

    text: str
    damage: str
    share: float = 1.0  # "cut": the share kept; "bytes": where the noise goes
    depth: int = 9  # "nest": how deep
    noise: bytes = b""
    empty: str = ""


@st.composite
def calendar_object(draw: st.DrawFn) -> Recipe:
    """One calendar object's recipe: its events and the damage done to it as a whole."""
    events = draw(st.lists(event_lines("uid-1"), min_size=0, max_size=3))
    body = [line for event in events for line in event]
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//fuzz//EN", *body, "END:VCALENDAR"]
    damage = draw(
        st.sampled_from(
            ["none"] * 6
            + ["nest", "cut", "latin-1", "bytes", "nul", "cr", "lines", "twice", "todo", "empty"]
        )
    )
    return Recipe(
        "\r\n".join(lines) + "\r\n",
        damage,
        share=draw(st.floats(0, 1)),
        depth=draw(st.integers(9, 20_000)),
        noise=draw(st.binary(min_size=1, max_size=6)),
        empty=draw(st.sampled_from(["", "   ", "\ufeff", "BEGIN:VCALENDAR"])),
    )


def build(recipe: Recipe) -> str | bytes:
    """The object's text (or bytes: not every object is text)."""
    text, damage = recipe.text.replace(HUGE, "x" * 300_000), recipe.damage
    value: str | bytes = text
    if damage == "nest":
        value = text.replace("BEGIN:VEVENT", "BEGIN:VEVENT\r\n" * recipe.depth, 1)
        value += "END:VEVENT\r\n" * recipe.depth
    elif damage == "cut":
        value = text[: int(len(text) * recipe.share)]
    elif damage == "latin-1":
        value = text.replace("PRODID:", "PRODID:caf\u00e9 ").encode("latin-1", "replace")
    elif damage == "bytes":
        raw = text.encode()
        at = int(len(raw) * recipe.share)
        value = raw[:at] + recipe.noise + raw[at:]
    elif damage == "nul":
        value = text.replace("VERSION:2.0", "VERSION:2.0\x00")
    elif damage == "cr":
        value = text.replace("\r\n", "\r")
    elif damage == "lines":
        value = text.replace("VERSION:2.0", "VERSION:2.0" + "\r\nX-A:b" * 120_000)
    elif damage == "twice":
        value = text + text
    elif damage == "todo":
        value = text.replace("VEVENT", "VTODO")
    elif damage == "empty":
        value = recipe.empty
    return value


# -- the tests ----------------------------------------------------------------------------------


@settings(FUZZ, max_examples=200)
@given(calendar_object())
def test_an_object_is_an_event_or_a_bad_item_naming_its_href(recipe: Recipe) -> None:
    ics = build(recipe)
    ran("iCalendar objects (parse_event)")
    try:
        event = parse_event(ics, "/cal/fuzz.ics")
    except BadItem as err:
        refused = err
    else:
        refused = None
    if refused is not None:
        assert refused.item == "/cal/fuzz.ics"
        assert refused.field
        return
    assert event.href == "/cal/fuzz.ics"
    assert event.start.tzinfo is not None
    assert event.end >= event.start


SOUND = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:ok-{n}\r\n"
    "DTSTART:20261124T1{n}0000Z\r\nDTEND:20261124T1{n}3000Z\r\nX-SYNCD-SYNC:salon\r\n"
    "X-SYNCD-ACCOUNT:salon\r\nX-SYNCD-ID:{n}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


@settings(FUZZ, max_examples=80)
@given(calendar_object())
def test_a_bad_object_among_sound_ones_costs_only_itself(recipe: Recipe) -> None:
    ics = build(recipe)
    ran("iCalendar objects among sound ones (calendar_view)")
    items = [
        CalendarItem("/cal/1.ics", '"1"', SOUND.format(n=1)),
        CalendarItem("/cal/fuzz.ics", '"f"', ics),  # type: ignore[arg-type]  # bytes on purpose
        CalendarItem("/cal/2.ics", '"2"', SOUND.format(n=2)),
    ]
    problems = BadItems()
    view = calendar_view(
        "salon",
        "team",
        CalendarChanges(items, [], "token"),
        lambda hrefs: {},
        problems,
    )
    assert {"1", "2"} <= set(view.events)
    assert all(label == "team:/cal/fuzz.ics" for label, _field, _message in problems.bad)


@settings(FUZZ, max_examples=60)
@given(calendar_object())
def test_a_busy_source_object_is_blocks_or_a_bad_item(recipe: Recipe) -> None:
    ics = build(recipe)
    ran("busy-source objects (busy_blocks)")
    item = CalendarItem("/private/fuzz.ics", '"b"', ics)  # type: ignore[arg-type]
    try:
        blocks = busy_blocks(item, "private", WINDOW, OPTIONS)
    except BadItem as err:
        refused = err
    else:
        refused = None
    if refused is not None:
        assert refused.item == "/private/fuzz.ics"
        assert refused.field
        return
    assert len(blocks) <= MAX_OCCURRENCES
    for block in blocks:
        assert block.start < block.end
        assert block.end > WINDOW.start
        assert block.start < WINDOW.end


def series(since: str, rule: str) -> CalendarItem:
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:standup\r\n"
        f"DTSTART:{since}T090000Z\r\nDTEND:{since}T091500Z\r\nRRULE:{rule}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    return CalendarItem("/private/standup.ics", '"s"', ics)


def test_a_daily_series_begun_long_ago_expands_in_reasonable_time() -> None:
    """Found by probing what the fuzzer generates: expanding through the library's ``after``
    cost time growing with the series' age times the occurrences in the window (a daily
    event since 1950: minutes, on the event loop). The bound here is loose on purpose."""
    started = time.process_time()
    blocks = busy_blocks(series("19500102", "FREQ=DAILY"), "private", WINDOW, OPTIONS)
    assert len(blocks) == 365
    assert time.process_time() - started < 20


@pytest.mark.parametrize(
    ("since", "rule"),
    [
        ("20261201", "FREQ=SECONDLY"),  # 87 s of CPU before the step bound, inside the window
        ("19000101", "FREQ=SECONDLY;COUNT=100000000"),  # never ended: a walk from 1900
        ("20261201", "FREQ=HOURLY;BYMINUTE=0,1,2,3,4,5,6,7,8,9"),
    ],
)
def test_a_rule_that_floods_is_a_bad_item_at_once(since: str, rule: str) -> None:
    started = time.process_time()
    with pytest.raises(BadItem) as raised:
        busy_blocks(series(since, rule), "private", WINDOW, OPTIONS)
    assert raised.value.field == "RRULE"
    assert raised.value.item == "/private/standup.ics"
    assert time.process_time() - started < 5


def test_a_short_rule_of_every_minute_is_expanded() -> None:
    until = "FREQ=MINUTELY;INTERVAL=15;UNTIL=20261201T120000Z"
    assert len(busy_blocks(series("20261201", until), "private", WINDOW, OPTIONS)) == 13
