"""Appointment <-> VEVENT: round trips across DST, the content hash, privacy, bad input.

Rendering writes text by hand and hashes it without parsing it back, so most tests here hold
it to account with icalendar (and vobject, when installed) as independent readers.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from syncd.errors import BadItem
from syncd.ical import (
    IGNORED_PROPERTIES,
    MAX_ICS_CHARS,
    SYNCD_PRODID,
    RenderedEvent,
    RenderOptions,
    check_title_template,
    content_hash,
    event_uid,
    parse_event,
    render,
    with_summary_prefix,
)
from syncd.ical.hashing import local_stamp
from syncd.ical.text import clean_text, fold, unescape_text
from syncd.model import Appointment, Status
from syncd.reconcile.policy import Privacy

try:
    import vobject  # not a dependency of syncd: a second reader when installed
except ImportError:  # pragma: no cover
    vobject = None

AMS = ZoneInfo("Europe/Amsterdam")
NYC = ZoneInfo("America/New_York")
OPTIONS = RenderOptions(sync="salon")
STAMP = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def appointment(start: datetime, end: datetime, **fields: Any) -> Appointment:
    fields.setdefault("title", "Knippen")
    return Appointment(account="oa-main", native_id="1001", start=start, end=end, **fields)


def utc(value: datetime) -> datetime:
    # Compare instants explicitly: Python never finds a datetime inside a DST fold equal to
    # one in another zone, even for the same instant (PEP 495).
    return value.astimezone(UTC)


def unfolded(ics: str) -> list[str]:
    return re.sub(r"\r\n[ \t]", "", ics).split("\r\n")


def vevent(ics: str) -> icalendar.Event:
    calendar = icalendar.Calendar.from_ical(ics)
    (event,) = calendar.walk("VEVENT")
    return event


def lines_of(ics: str, name: str) -> list[str]:
    """The unfolded ``name`` lines of the VEVENT (or, for TZID, of the VTIMEZONE)."""
    lines = unfolded(ics)
    if name != "TZID":
        lines = lines[lines.index("BEGIN:VEVENT") :]
    return [line for line in lines if line.split(":")[0].split(";")[0] == name]


# -- round trips across DST ------------------------------------------------------------------

DST_CASES = {
    # Amsterdam, 29 March 2026: 02:00 CET -> 03:00 CEST
    "ams-spring-crossing": (datetime(2026, 3, 29, 1, 30, tzinfo=AMS), timedelta(hours=1)),
    "ams-spring-after": (datetime(2026, 3, 29, 3, 0, tzinfo=AMS), timedelta(minutes=45)),
    "ams-spring-before-ends-at-gap": (datetime(2026, 3, 29, 1, 0, tzinfo=AMS), timedelta(hours=1)),
    # Amsterdam, 25 October 2026: 03:00 CEST -> 02:00 CET; 02:00-03:00 happens twice
    "ams-autumn-crossing": (datetime(2026, 10, 25, 1, 30, tzinfo=AMS), timedelta(hours=2)),
    "ams-autumn-first-pass": (datetime(2026, 10, 25, 2, 30, tzinfo=AMS), timedelta(minutes=20)),
    "ams-autumn-second-pass": (
        datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=AMS),
        timedelta(minutes=20),
    ),
    "ams-autumn-first-to-second": (datetime(2026, 10, 25, 2, 50, tzinfo=AMS), timedelta(hours=1)),
    "ams-midnight": (datetime(2026, 6, 30, 23, 15, tzinfo=AMS), timedelta(hours=2)),
    "ams-multi-day-over-change": (datetime(2026, 3, 27, 9, 0, tzinfo=AMS), timedelta(days=4)),
    "ams-new-year": (datetime(2026, 12, 31, 23, 0, tzinfo=AMS), timedelta(hours=2)),
    "ams-zero-length": (datetime(2026, 5, 1, 9, 0, tzinfo=AMS), timedelta(0)),
    # New York, 8 March 2026 (02:00 -> 03:00) and 1 November 2026 (02:00 -> 01:00)
    "nyc-spring": (datetime(2026, 3, 8, 1, 30, tzinfo=NYC), timedelta(hours=1)),
    "nyc-autumn-second-pass": (datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NYC), timedelta(0)),
    "nyc-autumn-crossing": (datetime(2026, 11, 1, 0, 45, tzinfo=NYC), timedelta(hours=2)),
    "utc": (datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("UTC")), timedelta(hours=1)),
    "fixed-offset": (
        datetime(2026, 3, 29, 7, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        timedelta(hours=1),
    ),
    "kolkata": (datetime(2026, 3, 29, 7, 0, tzinfo=ZoneInfo("Asia/Kolkata")), timedelta(hours=1)),
}


@pytest.mark.parametrize(("start", "length"), DST_CASES.values(), ids=DST_CASES.keys())
def test_round_trip_keeps_utc_start_and_end(start: datetime, length: timedelta) -> None:
    end = (utc(start) + length).astimezone(start.tzinfo)
    rendered = render(appointment(start, end), OPTIONS)
    parsed = parse_event(rendered.ics, "item.ics")
    assert parsed.start == utc(start)
    assert parsed.end == utc(start) + length
    assert not parsed.all_day
    assert parsed.hash == rendered.hash


def test_local_times_are_written_with_tzid_and_a_vtimezone() -> None:
    start = datetime(2026, 3, 29, 1, 30, tzinfo=AMS)
    rendered = render(appointment(start, start + timedelta(hours=3)), OPTIONS)
    assert lines_of(rendered.ics, "DTSTART") == ["DTSTART;TZID=Europe/Amsterdam:20260329T013000"]
    # 01:30 CET + 3 hours of wall clock = 04:30 CEST: two hours of real time later
    assert lines_of(rendered.ics, "DTEND") == ["DTEND;TZID=Europe/Amsterdam:20260329T043000"]
    assert lines_of(rendered.ics, "TZID") == ["TZID:Europe/Amsterdam"]


@pytest.mark.parametrize("zone", [ZoneInfo("UTC"), timezone(timedelta(hours=2)), UTC])
def test_utc_and_fixed_offsets_are_written_with_z_and_no_vtimezone(zone: Any) -> None:
    start = datetime(2026, 7, 1, 10, 0, tzinfo=zone)
    rendered = render(appointment(start, start + timedelta(hours=1)), OPTIONS)
    assert lines_of(rendered.ics, "DTSTART") == [f"DTSTART:{utc(start):%Y%m%dT%H%M%S}Z"]
    assert "VTIMEZONE" not in rendered.ics


def test_second_pass_through_repeated_hour_is_written_in_utc() -> None:
    # TZID=Europe/Amsterdam:20261025T023000 means the first 02:30 (RFC 5545 3.3.5).
    start = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=AMS)
    rendered = render(appointment(start, utc(start) + timedelta(minutes=10)), OPTIONS)
    assert lines_of(rendered.ics, "DTSTART") == ["DTSTART:20261025T013000Z"]
    first = render(appointment(start.replace(fold=0), start.replace(fold=0)), OPTIONS)
    assert lines_of(first.ics, "DTSTART") == ["DTSTART;TZID=Europe/Amsterdam:20261025T023000"]


def test_time_in_spring_gap_is_written_as_the_instant_it_denotes() -> None:
    # 02:30 does not exist on 29 March; Python reads it with the offset before the gap.
    imaginary = datetime(2026, 3, 29, 2, 30, tzinfo=AMS)
    rendered = render(appointment(imaginary, imaginary + timedelta(hours=1)), OPTIONS)
    assert lines_of(rendered.ics, "DTSTART") == ["DTSTART;TZID=Europe/Amsterdam:20260329T033000"]
    assert parse_event(rendered.ics, "x").start == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_microseconds_are_dropped() -> None:
    start = datetime(2026, 5, 1, 9, 0, 0, 999_999, tzinfo=AMS)
    parsed = parse_event(render(appointment(start, start), OPTIONS).ics, "x")
    assert parsed.start == utc(start.replace(microsecond=0))


def written_with_tzid(start: datetime, length: timedelta) -> bool:
    end = (utc(start) + length).astimezone(start.tzinfo)
    return "VTIMEZONE" in render(appointment(start, end), OPTIONS).ics


ZONED_CASES = {name: case for name, case in DST_CASES.items() if written_with_tzid(*case)}


def test_most_cases_are_written_with_tzid() -> None:
    assert len(ZONED_CASES) >= 10


@pytest.mark.parametrize(("start", "length"), ZONED_CASES.values(), ids=ZONED_CASES.keys())
def test_vtimezone_alone_gives_the_same_instants(start: datetime, length: timedelta) -> None:
    """Clients that read the VTIMEZONE instead of their own tz database (Outlook, libical
    servers) must land on the same instants: rename the zone so icalendar has to use it.
    One name for every zone also checks that each object is read with its own VTIMEZONE."""
    end = (utc(start) + length).astimezone(start.tzinfo)
    rendered = render(appointment(start, end), OPTIONS)
    private = rendered.ics.replace(str(start.tzinfo.key), "Private/Test Zone")
    assert "Private/Test Zone" in private
    parsed = parse_event(private, "x")
    assert (parsed.start, parsed.end) == (utc(start), utc(start) + length)


@pytest.mark.parametrize(("start", "length"), DST_CASES.values(), ids=DST_CASES.keys())
def test_vobject_reads_the_same_instants(start: datetime, length: timedelta) -> None:
    if vobject is None:
        pytest.skip("vobject is not installed")
    end = (utc(start) + length).astimezone(start.tzinfo)
    rendered = render(appointment(start, end), OPTIONS)
    event = vobject.readOne(rendered.ics).vevent
    assert utc(event.dtstart.value) == utc(start)
    assert utc(event.dtend.value) == utc(start) + length


# -- the bounded, cached VTIMEZONE -----------------------------------------------------------


def test_vtimezone_covers_only_the_events_years() -> None:
    start = datetime(2026, 6, 1, 10, 0, tzinfo=AMS)
    rendered = render(appointment(start, start + timedelta(hours=1)), OPTIONS)
    (zone,) = icalendar.Calendar.from_ical(rendered.ics).walk("VTIMEZONE")
    observances = zone.subcomponents
    assert len(observances) <= 3
    onsets = [o.DTSTART for o in observances] + [
        rdate.dt for o in observances for prop in o.get("RDATE", []) for rdate in prop.dts
    ]
    assert min(onsets) <= datetime(2026, 1, 1)
    assert max(onsets) < datetime(2027, 1, 1)
    assert len(rendered.ics.encode()) < 1500
    unbounded = icalendar.Timezone.from_tzid("Europe/Amsterdam").to_ical()
    assert len(unbounded) > 2 * len(zone.to_ical())


def test_vtimezone_spans_every_year_the_event_touches() -> None:
    start = datetime(2026, 12, 30, 10, 0, tzinfo=NYC)
    rendered = render(appointment(start, start + timedelta(days=500)), OPTIONS)
    (zone,) = icalendar.Calendar.from_ical(rendered.ics).walk("VTIMEZONE")
    assert "2026-01-01 to 2029-01-01" in str(zone["COMMENT"])


def test_vtimezone_is_reused_between_renders() -> None:
    start = datetime(2026, 6, 1, 10, 0, tzinfo=AMS)
    texts = {
        render(
            appointment(start + timedelta(days=d), start + timedelta(days=d, hours=1)), OPTIONS
        ).ics.split("BEGIN:VEVENT")[0]
        for d in range(0, 150, 7)
    }
    assert len(texts) == 1


# -- content of the event --------------------------------------------------------------------


def test_full_event_properties() -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=AMS)
    app = appointment(
        start,
        start + timedelta(hours=1),
        notes="Parkeren om de hoek",
        customer="Jan de Vries",
        staff="Piet",
        resource="Stoel 2",
        location="Dorpsstraat 1, Ons Dorp",
    )
    options = RenderOptions(sync="salon", title="{title} – {customer} ({staff})")
    rendered = render(app, options, sequence=7, stamp=STAMP)
    event = vevent(rendered.ics)
    assert rendered.uid == event_uid("oa-main", "1001") == str(event["UID"])
    assert str(event["SUMMARY"]) == "Knippen – Jan de Vries (Piet)"
    assert str(event["DESCRIPTION"]) == (
        "Parkeren om de hoek\n\nCustomer: Jan de Vries\nStaff: Piet\nResource: Stoel 2"
    )
    assert str(event["LOCATION"]) == "Dorpsstraat 1, Ons Dorp"
    assert event["SEQUENCE"] == 7
    assert event.decoded("DTSTAMP") == STAMP
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["TRANSP"]) == "OPAQUE"
    assert "CLASS" not in event
    assert "ATTENDEE" not in event
    calendar = icalendar.Calendar.from_ical(rendered.ics)
    assert str(calendar["PRODID"]) == SYNCD_PRODID
    assert str(calendar["VERSION"]) == "2.0"
    assert "UID" not in calendar  # some servers reject a calendar-level UID on re-save
    parsed = parse_event(rendered.ics, "x.ics")
    assert (parsed.sync, parsed.account, parsed.native_id) == ("salon", "oa-main", "1001")
    assert parsed.last_modified == STAMP
    assert not parsed.recurring
    assert rendered.ics.endswith("END:VCALENDAR\r\n")
    assert "\n" not in rendered.ics.replace("\r\n", "")


@pytest.mark.parametrize(
    ("status", "ical_status"),
    [(Status.CONFIRMED, "CONFIRMED"), (Status.TENTATIVE, "TENTATIVE")],
)
def test_status(status: Status, ical_status: str) -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=AMS)
    rendered = render(appointment(start, start, status=status), OPTIONS)
    assert str(vevent(rendered.ics)["STATUS"]) == ical_status
    assert not parse_event(rendered.ics, "x").cancelled


def test_cancelled_event_is_prefixed_transparent_and_cancelled() -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=AMS)
    app = appointment(start, start, status=Status.CANCELLED)
    parsed = parse_event(
        render(app, RenderOptions(sync="s", cancelled_prefix="Afgezegd: ")).ics, "x"
    )
    assert parsed.cancelled
    assert parsed.transparent
    assert parsed.summary == "Afgezegd: Knippen"
    busy = parse_event(render(app, RenderOptions(sync="s", privacy=Privacy.BUSY)).ics, "x")
    assert busy.summary == "Cancelled: Busy"


def test_empty_title_falls_back_to_busy_label() -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=AMS)
    options = RenderOptions(sync="s", title="{title} {customer}", busy_label="Bezet")
    assert parse_event(render(appointment(start, start, title=""), options).ics, "x").summary == (
        "Bezet"
    )


def test_title_template_format_spec() -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=AMS)
    options = RenderOptions(sync="s", title="{title:.4}")
    assert parse_event(render(appointment(start, start), options).ics, "x").summary == "Knip"


@pytest.mark.parametrize(
    "template", ["{nope}", "{title.upper}", "{title[0]}", "{}", "{0}", "{title", "{title:{staff}}"]
)
def test_bad_title_templates_are_refused_up_front(template: str) -> None:
    with pytest.raises(ValueError, match="title template"):
        RenderOptions(sync="s", title=template)
    with pytest.raises(ValueError, match="title template"):
        check_title_template(template)


def test_render_refuses_negative_sequence_and_naive_stamp() -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=AMS)
    with pytest.raises(ValueError, match="sequence"):
        render(appointment(start, start), OPTIONS, sequence=-1)
    with pytest.raises(ValueError, match="sequence"):
        render(appointment(start, start), OPTIONS, sequence=2**31)
    with pytest.raises(ValueError, match="stamp"):
        render(appointment(start, start), OPTIONS, stamp=datetime(2026, 1, 1))


def test_busy_privacy_leaks_no_client_data() -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=AMS)
    secrets = {
        "title": "Behandeling Zeldzaamwoord",
        "notes": "allergisch voor Xylofoonpasta",
        "customer": "Mevrouw Geheimnaam",
        "staff": "Medewerker Verborgen",
        "resource": "Kamer Onzichtbaar",
        "location": "Straatnaamloos 12",
    }
    app = appointment(start, start + timedelta(hours=1), **secrets)
    options = RenderOptions(
        sync="s", privacy=Privacy.BUSY, title="{title} {customer} {staff} {resource} {location}"
    )
    rendered = render(app, options)
    for text in secrets.values():
        for word in text.split():
            if len(word) > 3:
                assert word.lower() not in rendered.ics.lower()
    event = vevent(rendered.ics)
    assert str(event["SUMMARY"]) == "Busy"
    assert str(event["CLASS"]) == "PRIVATE"
    for absent in ("DESCRIPTION", "LOCATION", "ATTENDEE", "ORGANIZER", "CONTACT", "COMMENT"):
        assert absent not in event


def test_text_is_cleaned_of_controls_and_broken_unicode() -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=AMS)
    title = "a\r\nb\rc\x00d\x1be\tf\ud800g\ufeff"
    app = appointment(start, start, title=title, location="\x00", notes="\x07")
    rendered = render(app, OPTIONS)
    rendered.ics.encode()  # lone surrogates would fail here
    assert parse_event(rendered.ics, "x").summary == "a\nb\ncde\tf\ufffdg" == clean_text(title)
    assert "LOCATION" not in vevent(rendered.ics)  # nothing left to show
    assert "DESCRIPTION" not in vevent(rendered.ics)


# -- UIDs --------------------------------------------------------------------------------------


def test_event_uid_is_pinned() -> None:
    # If this fails, event_uid changed: every existing event would be duplicated.
    assert event_uid("acct", "42") == "syncd-d0d3c0db891000320b597b21f836f8e8@syncd"
    assert event_uid("oa-main", "1001") == event_uid("oa-main", "1001")


@given(
    st.lists(
        st.tuples(st.text(st.characters(exclude_characters="\0")), st.text(min_size=1)),
        min_size=2,
        max_size=20,
        unique=True,
    )
)
def test_event_uids_are_distinct_and_href_safe(keys: list[tuple[str, str]]) -> None:
    uids = [event_uid(account, native_id) for account, native_id in keys]
    assert len(set(uids)) == len(uids)
    for uid in uids:
        assert re.fullmatch(r"syncd-[0-9a-f]{32}@syncd", uid)


# -- the property test -----------------------------------------------------------------------

ZONES = [
    "Europe/Amsterdam",
    "America/New_York",
    "UTC",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "America/St_Johns",
    "Pacific/Chatham",
    "America/Sao_Paulo",  # DST until 2019
    "Africa/Casablanca",  # DST suspended every Ramadan
    "Europe/London",
]
TRICKY = st.sampled_from([",", ";", ":", "\\", "\\n", "\\N", "\\,", '"', "\n", " ", "é", "😀"])
TEXT = st.lists(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | TRICKY, max_size=60
).map("".join)
STARTS = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2037, 12, 31),
    timezones=st.sampled_from([ZoneInfo(name) for name in ZONES]),
)


@st.composite
def appointments(draw: st.DrawFn) -> Appointment:
    start = draw(STARTS).replace(microsecond=0)
    length = draw(st.timedeltas(timedelta(0), timedelta(days=3)))
    return Appointment(
        account=draw(st.sampled_from(["oa-main", "agendize, b;v", "ä\\n"])),
        native_id=draw(st.text(min_size=1, max_size=20).map(clean_text).filter(bool)),
        start=start,
        # in UTC: Appointment compares end and start, and Python compares two times of one
        # zone by wall clock, which is wrong across the autumn fold
        end=(utc(start) + length).replace(microsecond=0),
        title=draw(TEXT),
        notes=draw(TEXT),
        location=draw(TEXT),
        customer=draw(TEXT),
        staff=draw(st.sampled_from(["", "Piet"])),
        status=draw(st.sampled_from(list(Status))),
    )


def expected_summary(app: Appointment, options: RenderOptions) -> str:
    title = options.busy_label if options.privacy is Privacy.BUSY else clean_text(app.title).strip()
    title = title or options.busy_label
    return (options.cancelled_prefix if app.cancelled else "") + title


PRIVACY = st.sampled_from([RenderOptions(sync="salon"), RenderOptions("b", Privacy.BUSY)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(app=appointments(), options=PRIVACY, sequence=st.integers(0, 2**31 - 1))
def test_property_round_trip(app: Appointment, options: RenderOptions, sequence: int) -> None:
    rendered = render(app, options, sequence)
    parsed = parse_event(rendered.ics, "item.ics")
    assert parsed.start == utc(app.start)
    assert parsed.end == utc(app.end)
    assert parsed.cancelled == app.cancelled
    assert parsed.summary == expected_summary(app, options)
    assert (parsed.account, parsed.native_id, parsed.uid) == (
        app.account,
        app.native_id,
        rendered.uid,
    )
    event = vevent(rendered.ics)
    assert str(event["STATUS"]) == app.status.value.upper()
    assert event["SEQUENCE"] == sequence
    if options.privacy is Privacy.FULL:
        assert str(event.get("LOCATION", "")) == clean_text(app.location)
        assert str(event.get("DESCRIPTION", "")).startswith(clean_text(app.notes))
    assert rendered.hash == content_hash(rendered.ics) == parsed.hash
    for line in rendered.ics.split("\r\n"):
        assert len(line.encode()) <= 75


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(app=appointments(), sequence=st.integers(0, 1000), data=st.data())
def test_property_hash_ignores_serialisation(
    app: Appointment, sequence: int, data: st.DataObject
) -> None:
    rendered = render(app, OPTIONS)
    # icalendar rewrites a literal backslash-N in text as a newline when it serialises
    # (its _escape_char starts with .replace("\\N", "\n")): a bug in icalendar, not here.
    assume(not any("\\N" in text for text in (app.title, app.notes, app.location, app.customer)))
    variants = {
        "icalendar": icalendar.Calendar.from_ical(rendered.ics).to_ical(),
        "sequence, stamp": render(app, OPTIONS, sequence, stamp=STAMP).ics,
        "lf": rendered.ics.replace("\r\n", "\n"),
        "unfolded": "\r\n".join(unfolded(rendered.ics)),
        "refolded": refold(rendered.ics, data.draw(st.integers(10, 74))),
        "reordered": reorder_properties(rendered.ics, data.draw(st.randoms())),
        "metadata": rendered.ics.replace(
            f"PRODID:{SYNCD_PRODID}", "PRODID:-//Radicale//NONSGML Radicale Server//EN"
        ).replace(
            "BEGIN:VEVENT\r\n",
            "BEGIN:VEVENT\r\nLAST-MODIFIED:20300101T000000Z\r\nCREATED:20200101T000000Z\r\n",
        ),
        "timezones": reorder_timezones(rendered.ics),
        "utc": to_utc(rendered.ics, app),
    }
    for name, text in variants.items():
        assert content_hash(text) == rendered.hash, name
    if vobject is not None:  # Radicale re-serialises every object it stores with vobject
        assert content_hash(vobject.readOne(rendered.ics).serialize()) == rendered.hash


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(app=appointments(), text=TEXT.filter(lambda s: s.strip() != ""))
def test_property_hash_sees_content_changes(app: Appointment, text: str) -> None:
    base = render(app, OPTIONS).hash
    later = utc(app.end) + timedelta(minutes=1)
    other_status = Status.CANCELLED if app.status is Status.CONFIRMED else Status.CONFIRMED
    changed = {
        "start": app.moved(
            (utc(app.start) - timedelta(minutes=1)).astimezone(app.start.tzinfo), app.end
        ),
        "end": app.moved(app.start, later),
        "title": replace_field(app, title=app.title + "x"),
        "status": replace_field(app, status=other_status),
        "notes": replace_field(app, notes=app.notes + text),
        "location": replace_field(app, location=app.location + text),
    }
    for name, other in changed.items():
        assert render(other, OPTIONS).hash != base, name


def replace_field(app: Appointment, **fields: Any) -> Appointment:
    data = {
        "account": app.account,
        "native_id": app.native_id,
        "start": app.start,
        "end": app.end,
        "title": app.title,
        "notes": app.notes,
        "location": app.location,
        "status": app.status,
        "customer": app.customer,
        "staff": app.staff,
    }
    return Appointment(**{**data, **fields})


def refold(ics: str, width: int) -> str:
    out = []
    for line in unfolded(ics):
        chunks = [line[i : i + width] for i in range(0, len(line), width)] or [""]
        out.append("\r\n ".join(chunks))
    return "\r\n".join(out)


def reorder_properties(ics: str, rnd: Any) -> str:
    lines = unfolded(ics)
    begin, end = lines.index("BEGIN:VEVENT"), lines.index("END:VEVENT")
    body = lines[begin + 1 : end]
    rnd.shuffle(body)
    return "\r\n".join([*lines[: begin + 1], *body, *lines[end:]])


@cache
def unbounded_vtimezone(tzid: str) -> str:
    return icalendar.Timezone.from_tzid(tzid).to_ical().decode()


def reorder_timezones(ics: str) -> str:
    """Move the VTIMEZONE after the VEVENT, add an unrelated one in front, and replace the
    bounded one by icalendar's unbounded version, as a server rewriting it might."""
    blocks = re.findall(r"BEGIN:VTIMEZONE\r\n.*?END:VTIMEZONE\r\n", ics, re.S)
    rest = re.sub(r"BEGIN:VTIMEZONE\r\n.*?END:VTIMEZONE\r\n", "", ics, flags=re.S)
    unbounded = [unbounded_vtimezone(re.findall(r"TZID:(.*)\r\n", block)[0]) for block in blocks]
    tokyo = unbounded_vtimezone("Asia/Tokyo")
    head, tail = rest.split("END:VCALENDAR")
    head = head.replace("BEGIN:VEVENT", tokyo + "BEGIN:VEVENT")
    return head + "".join(unbounded) + "END:VCALENDAR" + tail


def to_utc(ics: str, app: Appointment) -> str:
    """The same instants written in UTC instead of with a TZID."""
    start = f"DTSTART:{utc(app.start):%Y%m%dT%H%M%S}Z"
    end = f"DTEND:{utc(app.end):%Y%m%dT%H%M%S}Z"
    head, event = ics.split("BEGIN:VEVENT")  # leave the VTIMEZONE's own DTSTARTs alone
    event = re.sub(r"DTSTART[;:][^\r\n]*", start, event)
    return head + "BEGIN:VEVENT" + re.sub(r"DTEND[;:][^\r\n]*", end, event)


def test_hash_is_the_same_for_text_and_component() -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=AMS)
    rendered = render(appointment(start, start), OPTIONS)
    calendar = icalendar.Calendar.from_ical(rendered.ics)
    assert content_hash(calendar) == content_hash(calendar.walk("VEVENT")[0]) == rendered.hash
    assert content_hash(rendered.ics.encode()) == rendered.hash


def test_hash_ignores_exactly_the_documented_noise() -> None:
    assert {"DTSTAMP", "LAST-MODIFIED", "SEQUENCE", "CREATED", "PRODID"} == IGNORED_PROPERTIES
    start = datetime(2026, 5, 1, 9, 0, tzinfo=AMS)
    ics = render(appointment(start, start), OPTIONS).ics
    with_alarm = ics.replace(
        "END:VEVENT", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT"
    )
    assert content_hash(with_alarm) != content_hash(ics)
    other_alarm = with_alarm.replace("-PT15M", "-PT30M")
    assert content_hash(other_alarm) != content_hash(with_alarm)
    with_param = ics.replace("SUMMARY:", "SUMMARY;LANGUAGE=nl:")
    assert content_hash(with_param) != content_hash(ics)


SERIES = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Example//EN\r
BEGIN:VEVENT\r
UID:series-1\r
DTSTAMP:20260101T000000Z\r
RECURRENCE-ID;TZID=Europe/Amsterdam:20260512T090000\r
DTSTART;TZID=Europe/Amsterdam:20260512T140000\r
DTEND;TZID=Europe/Amsterdam:20260512T150000\r
SUMMARY:Standup (moved)\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:series-1\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Amsterdam:20260505T090000\r
DTEND;TZID=Europe/Amsterdam:20260505T091500\r
RRULE:FREQ=WEEKLY;COUNT=10\r
SUMMARY:Standup\r
TRANSP:TRANSPARENT\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_series_uses_master_and_hashes_overrides() -> None:
    parsed = parse_event(SERIES, "series.ics")
    assert parsed.summary == "Standup"
    assert parsed.start == datetime(2026, 5, 5, 7, 0, tzinfo=UTC)
    assert parsed.recurring
    assert parsed.transparent
    assert parsed.sync is None
    moved_again = SERIES.replace("20260512T140000", "20260512T160000")
    assert content_hash(moved_again) != parsed.hash
    head, override, master = SERIES.split("BEGIN:VEVENT")
    master = master.removesuffix("END:VCALENDAR\r\n")
    swapped = f"{head}BEGIN:VEVENT{master}BEGIN:VEVENT{override}END:VCALENDAR\r\n"
    assert content_hash(swapped) == parsed.hash
    assert parse_event(swapped, "x").summary == "Standup"


def test_orphan_override_is_read_and_flagged_recurring() -> None:
    head, override, _ = SERIES.split("BEGIN:VEVENT")
    parsed = parse_event(f"{head}BEGIN:VEVENT{override}END:VCALENDAR\r\n", "x")
    assert parsed.summary == "Standup (moved)"
    assert parsed.start == datetime(2026, 5, 12, 12, 0, tzinfo=UTC)
    assert parsed.recurring


# -- other people's events ---------------------------------------------------------------------


def calendar_object(*lines: str, before: str = "") -> str:
    body = "\r\n".join(["UID:other-1", "DTSTAMP:20260101T120000Z", *lines])
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other//EN\r\n{before}"
        f"BEGIN:VEVENT\r\n{body}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_all_day_event_in_calendar_zone() -> None:
    parsed = parse_event(calendar_object("DTSTART;VALUE=DATE:20260329"), "x", default_tz=AMS)
    assert parsed.all_day
    assert parsed.start == datetime(2026, 3, 29, tzinfo=AMS)
    assert parsed.end == datetime(2026, 3, 30, tzinfo=AMS)
    assert parsed.end - parsed.start == timedelta(hours=23)  # the short day


def test_all_day_with_dtend() -> None:
    ics = calendar_object("DTSTART;VALUE=DATE:20260401", "DTEND;VALUE=DATE:20260404")
    parsed = parse_event(ics, "x")
    assert (parsed.start, parsed.end) == (
        datetime(2026, 4, 1, tzinfo=UTC),
        datetime(2026, 4, 4, tzinfo=UTC),
    )


def test_floating_time_is_read_in_calendar_zone() -> None:
    ics = calendar_object("DTSTART:20260601T100000", "DTEND:20260601T110000")
    parsed = parse_event(ics, "x", default_tz=AMS)
    assert parsed.start == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    assert parse_event(ics, "x").start == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def test_missing_end_without_duration_is_an_instant() -> None:
    parsed = parse_event(calendar_object("DTSTART:20260601T100000Z"), "x")
    assert parsed.end == parsed.start


@pytest.mark.parametrize(
    ("duration", "end"),
    [
        ("PT1H", datetime(2026, 3, 28, 13, 30, tzinfo=UTC)),
        ("P1D", datetime(2026, 3, 29, 11, 30, tzinfo=UTC)),  # a calendar day: 23 hours
        ("P1DT1H", datetime(2026, 3, 29, 12, 30, tzinfo=UTC)),
        ("P1W", datetime(2026, 4, 4, 11, 30, tzinfo=UTC)),
    ],
)
def test_duration_days_follow_the_wall_clock(duration: str, end: datetime) -> None:
    ics = calendar_object("DTSTART;TZID=Europe/Amsterdam:20260328T133000", f"DURATION:{duration}")
    parsed = parse_event(ics, "x")
    assert parsed.start == datetime(2026, 3, 28, 12, 30, tzinfo=UTC)
    assert parsed.end == end


def test_last_modified_preferred_over_dtstamp() -> None:
    ics = calendar_object("DTSTART:20260601T100000Z", "LAST-MODIFIED:20260301T080000Z")
    assert parse_event(ics, "x").last_modified == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert parse_event(calendar_object("DTSTART:20260601T100000Z"), "x").last_modified == (
        datetime(2026, 1, 1, 12, tzinfo=UTC)
    )


EVOLUTION_ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:/freeassociation.sourceforge.net/Europe/Amsterdam\r\n"
    "X-LIC-LOCATION:Europe/Amsterdam\r\n"
    "BEGIN:STANDARD\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\n"
    "TZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\nTZNAME:CEST\r\nDTSTART:19700329T020000\r\nTZOFFSETFROM:+0100\r\n"
    "TZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
    "END:VTIMEZONE\r\n"
)


def test_evolution_style_tzid_with_its_vtimezone() -> None:
    ics = calendar_object(
        "DTSTART;TZID=/freeassociation.sourceforge.net/Europe/Amsterdam:20260601T100000",
        before=EVOLUTION_ZONE,
    )
    assert parse_event(ics, "x").start == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def test_windows_zone_name_is_understood() -> None:
    ics = calendar_object("DTSTART;TZID=W. Europe Standard Time:20260601T100000")
    assert parse_event(ics, "x").start == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def custom_zone(offset: str) -> str:
    return (
        "BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\nBEGIN:STANDARD\r\n"
        f"DTSTART:16010101T000000\r\nTZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\n"
        "END:STANDARD\r\nEND:VTIMEZONE\r\n"
    )


def test_each_object_is_read_with_its_own_custom_zone() -> None:
    # Outlook names different zones "Customized Time Zone"; icalendar caches the first.
    line = "DTSTART;TZID=Customized Time Zone:20260601T100000"
    east = parse_event(calendar_object(line, before=custom_zone("+0500")), "east")
    west = parse_event(calendar_object(line, before=custom_zone("-0300")), "west")
    assert east.start == datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
    assert west.start == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)


def test_known_zone_ignores_a_wrong_vtimezone() -> None:
    # A VTIMEZONE for a zone the tz database knows is not consulted (nor parsed).
    wrong = custom_zone("+0500").replace("Customized Time Zone", "Europe/Amsterdam")
    ics = calendar_object("DTSTART;TZID=Europe/Amsterdam:20260601T100000", before=wrong)
    assert parse_event(ics, "x").start == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


# -- bad input ---------------------------------------------------------------------------------

BAD: dict[str, tuple[Any, str]] = {
    "garbage-bytes": (b"\x00\xff\xfe\x00garbage\x9c", "ics"),
    "not-utf8": (calendar_object("DTSTART:20260601T100000Z").encode("utf-16"), "ics"),
    "text": ("hello, world", "ics"),
    "empty": ("", "ics"),
    "not-text": (12345, "ics"),
    "nul": (calendar_object("DTSTART:20260601T100000Z", "SUMMARY:a\x00b"), "ics"),
    "bare-vevent": ("BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n", "VCALENDAR"),
    "two-calendars": (calendar_object("DTSTART:20260601T100000Z") * 2, "ics"),
    "unclosed": ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n", "ics"),
    "no-vevent": (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:x\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
        "VEVENT",
    ),
    "no-uid": (calendar_object("DTSTART:20260601T100000Z").replace("UID:other-1\r\n", ""), "UID"),
    "no-dtstart": (calendar_object("SUMMARY:x"), "DTSTART"),
    "two-dtstart": (
        calendar_object("DTSTART:20260601T100000Z", "DTSTART:20260602T100000Z"),
        "DTSTART",
    ),
    "end-before-start": (
        calendar_object("DTSTART:20260601T100000Z", "DTEND:20260601T090000Z"),
        "DTEND",
    ),
    "negative-duration": (
        calendar_object("DTSTART:20260601T100000Z", "DURATION:-PT1H"),
        "DURATION",
    ),
    "bad-duration": (calendar_object("DTSTART:20260601T100000Z", "DURATION:soon"), "DURATION"),
    "feb-31": (calendar_object("DTSTART;VALUE=DATE:20260231"), "DTSTART"),
    "feb-31-datetime": (calendar_object("DTSTART:20260231T100000Z"), "DTSTART"),
    "month-13": (calendar_object("DTSTART:20261301T100000"), "DTSTART"),
    "hour-25": (calendar_object("DTSTART:20260101T250000Z"), "DTSTART"),
    "bad-dtend": (calendar_object("DTSTART:20260601T100000Z", "DTEND:20260631T100000Z"), "DTEND"),
    "unknown-tzid": (calendar_object("DTSTART;TZID=Mars/Olympus_Mons:20260601T100000"), "DTSTART"),
    "time-only": (calendar_object("DTSTART;VALUE=TIME:100000"), "DTSTART"),
    "overflow": (calendar_object("DTSTART:99991231T230000Z", "DURATION:P3D"), "DURATION"),
    "huge": (calendar_object("DTSTART:20260601T100000Z", "X-PAD:" + "x" * MAX_ICS_CHARS), "ics"),
    "deep": (
        "BEGIN:VCALENDAR\r\n"
        + "BEGIN:VEVENT\r\n" * 3000
        + "DTSTART:20260601T100000Z\r\n"
        + "END:VEVENT\r\n" * 3000
        + "END:VCALENDAR\r\n",
        "ics",
    ),
}


@pytest.mark.parametrize(("ics", "field"), BAD.values(), ids=BAD.keys())
def test_bad_input_names_item_and_field(ics: Any, field: str) -> None:
    with pytest.raises(BadItem) as caught:
        parse_event(ics, "cal/bad.ics")
    assert caught.value.item == "cal/bad.ics"
    assert caught.value.field == field
    assert str(caught.value).startswith(f"cal/bad.ics: {field}: ")
    assert len(str(caught.value)) < 300


def test_content_hash_of_bad_text_is_bad_item() -> None:
    with pytest.raises(BadItem) as caught:
        content_hash("nonsense", href="cal/x.ics")
    assert caught.value.item == "cal/x.ics"


VALID = calendar_object(
    "DTSTART;TZID=Europe/Amsterdam:20260601T100000",
    "DTEND;TZID=Europe/Amsterdam:20260601T110000",
    "SUMMARY:ok",
    before=EVOLUTION_ZONE.replace("/freeassociation.sourceforge.net/", ""),
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300),
        st.lists(st.sampled_from([*unfolded(VALID), "BEGIN:VEVENT", "END:VEVENT", ""])).map(
            "\r\n".join
        ),
        st.tuples(st.integers(0, len(VALID)), st.integers(0, 40), st.text(max_size=20)).map(
            lambda t: VALID[: t[0]] + t[2] + VALID[t[0] + t[1] :]
        ),
    )
)
def test_fuzzed_input_raises_nothing_but_bad_item(ics: str | bytes) -> None:
    try:
        parsed = parse_event(ics, "fuzz.ics")
    except BadItem as err:
        item = err.item
    else:
        item = parsed.href
        assert parsed.start <= parsed.end
        assert parsed.start.tzinfo is not None
    assert item == "fuzz.ics"


# -- with_summary_prefix -----------------------------------------------------------------------


def test_summary_prefix_is_added_once_and_changes_the_hash() -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=AMS)
    rendered = render(appointment(start, start, title="Knippen, kort"), OPTIONS)
    prefix = "[not booked: slot taken] "
    marked = with_summary_prefix(rendered.ics, prefix)
    assert parse_event(marked, "x").summary == "[not booked: slot taken] Knippen, kort"
    assert with_summary_prefix(marked, prefix) == marked
    assert content_hash(marked) != rendered.hash
    untouched = [line for line in unfolded(rendered.ics) if not line.startswith("SUMMARY")]
    assert [line for line in unfolded(marked) if not line.startswith("SUMMARY")] == untouched


def test_summary_prefix_on_series_with_params_alarm_and_missing_summary() -> None:
    ics = SERIES.replace("SUMMARY:Standup\r\n", 'SUMMARY;ALTREP="cid:a:b";LANGUAGE=nl:Standup\r\n')
    ics = ics.replace("SUMMARY:Standup (moved)\r\n", "")
    ics = ics.replace(
        "TRANSP:TRANSPARENT\r\n",
        "TRANSP:TRANSPARENT\r\nBEGIN:VALARM\r\nACTION:EMAIL\r\nSUMMARY:Reminder\r\n"
        "DESCRIPTION:r\r\nATTENDEE:mailto:a@example.org\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n",
    )
    marked = with_summary_prefix(ics, "X: ")
    events = icalendar.Calendar.from_ical(marked).walk("VEVENT")
    assert sorted(str(event["SUMMARY"]) for event in events) == ["X: ", "X: Standup"]
    (alarm,) = icalendar.Calendar.from_ical(marked).walk("VALARM")
    assert str(alarm["SUMMARY"]) == "Reminder"
    assert with_summary_prefix(marked, "X: ") == marked


def test_summary_prefix_refuses_garbage() -> None:
    with pytest.raises(BadItem):
        with_summary_prefix("garbage", "x", href="cal/g.ics")


# -- text rules ----------------------------------------------------------------------------------


@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400))
def test_folding_keeps_lines_short_and_characters_whole(value: str) -> None:
    line = "DESCRIPTION:" + value.replace("\r", "").replace("\n", "")
    folded = fold(line)
    assert folded.endswith("\r\n")
    physical = folded[:-2].split("\r\n")
    for index, part in enumerate(physical):
        assert len(part.encode()) <= 75
        assert index == 0 or part.startswith(" ")
    assert "".join([physical[0], *(part[1:] for part in physical[1:])]) == line


def test_folding_does_not_split_an_escape() -> None:
    for offset in range(60, 80):
        line = "SUMMARY:" + "a" * offset + "\\\\" * 10 + "\\,b"
        physical = fold(line)[:-2].split("\r\n")
        for part in physical[:-1]:
            run = len(part) - len(part.rstrip("\\"))
            assert run % 2 == 0, part


@given(st.datetimes(timezones=st.sampled_from([UTC, AMS, NYC])))
def test_local_stamp_is_the_wall_clock_digits(value: datetime) -> None:
    expected = "%04d%02d%02dT%02d%02d%02d" % (  # noqa: UP031 -- the reference, spelled plainly
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
    )
    assert local_stamp(value) == expected


def test_unescape_is_one_pass() -> None:
    assert unescape_text("a\\\\nb\\,\\;\\n\\N") == "a\\nb,;\n\n"


def test_rendered_event_is_plain_data() -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=AMS)
    rendered = render(appointment(start, start), OPTIONS, stamp=STAMP)
    assert rendered == render(appointment(start, start), OPTIONS, stamp=STAMP)
    assert isinstance(rendered, RenderedEvent)
    assert date(2026, 5, 1).isoformat().replace("-", "") in rendered.ics


def test_one_instant_in_several_zones_renders_each_zone() -> None:
    # The lines for a span are cached; the cache must tell the zones of equal instants apart.
    start = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    seen: dict[str, list[str]] = {}
    for zone in (AMS, NYC, UTC, timezone(timedelta(hours=2)), AMS):
        local = start.astimezone(zone)
        ics = render(appointment(local, local + timedelta(hours=1)), OPTIONS, stamp=STAMP).ics
        seen[str(zone)] = lines_of(ics, "DTSTART")
        assert utc(vevent(ics).decoded("DTSTART")) == start
    assert seen["Europe/Amsterdam"] == ["DTSTART;TZID=Europe/Amsterdam:20260601T100000"]
    assert seen["America/New_York"] == ["DTSTART;TZID=America/New_York:20260601T040000"]
    assert seen["UTC"] == seen["UTC+02:00"] == ["DTSTART:20260601T080000Z"]
