"""Agendize resources -> appointments: zoned wall times to the instant, statuses, bad fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.errors import BadItem
from syncd.model import Appointment, Deleted, Status
from syncd.providers.ag_busy import wire_time
from syncd.providers.ag_mapping import Reading, read_item, version, zoned_time

PARIS = ZoneInfo("Europe/Paris")
READ = Reading("ag", PARIS)


def resource(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "5001",
        "status": "accepted",
        "type": "normal",
        "start": {"dateTime": "2026-10-21T10:00:00", "timeZone": "Europe/Paris"},
        "end": {"dateTime": "2026-10-21T10:30:00", "timeZone": "Europe/Paris"},
        "service": {"id": "11", "name": "Consultation"},
        "staff": {"id": "1", "firstName": "Anna", "lastName": "Martin"},
        "client": {"id": "100", "firstName": "Léa", "lastName": "Durand"},
        "notes": "first visit",
        "history": [
            {
                "type": "created",
                "date": {"dateTime": "2026-10-01T09:00:00", "timeZone": "Europe/Paris"},
            }
        ],
    }
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def read(**changes: Any) -> Any:
    return read_item(resource(**changes), READ, "#0")


def test_a_booking_reads_with_its_names_zone_and_version() -> None:
    item = read()
    assert isinstance(item, Appointment)
    assert (item.start, item.end) == (
        datetime(2026, 10, 21, 10, 0, tzinfo=PARIS),
        datetime(2026, 10, 21, 10, 30, tzinfo=PARIS),
    )
    assert item.start.tzinfo == PARIS, "the appointment keeps its own zone"
    assert (item.title, item.customer, item.staff, item.notes) == (
        "Consultation",
        "Léa Durand",
        "Anna Martin",
        "first visit",
    )
    assert item.updated == datetime(2026, 10, 1, 7, 0, tzinfo=UTC)
    assert dict(item.extra) == {"service_id": "11", "staff_id": "1"}


@pytest.mark.parametrize(
    ("zone", "wall", "utc"),
    [
        ("Europe/London", "2026-10-21T09:00:00", datetime(2026, 10, 21, 8, 0, tzinfo=UTC)),
        ("America/New_York", "2026-10-21T09:00:00", datetime(2026, 10, 21, 13, 0, tzinfo=UTC)),
        ("Asia/Kolkata", "2026-10-21T09:00:00", datetime(2026, 10, 21, 3, 30, tzinfo=UTC)),
        # the skipped spring hour moves forward; the repeated autumn hour is its first run
        ("Europe/Paris", "2026-03-29T02:30:00", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        ("Europe/Paris", "2026-10-25T02:30:00", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ],
)
def test_the_naive_time_is_read_in_the_zone_beside_it(zone: str, wall: str, utc: datetime) -> None:
    moment = zoned_time({"dateTime": wall, "timeZone": zone}, "start", PARIS)
    assert moment.astimezone(UTC) == utc
    assert str(moment.tzinfo) == zone


def test_no_zone_means_the_company_zone_and_an_offset_is_taken_at_its_word() -> None:
    assert zoned_time({"dateTime": "2026-07-01T10:00:00"}, "start", PARIS) == datetime(
        2026, 7, 1, 10, tzinfo=PARIS
    )
    given_offset = {"dateTime": "2026-07-01T10:00:00+00:00", "timeZone": "Europe/Paris"}
    assert zoned_time(given_offset, "start", PARIS) == datetime(2026, 7, 1, 10, tzinfo=UTC)


def test_an_end_in_the_second_run_of_the_repeated_hour_is_after_its_start() -> None:
    item = read(
        start={"dateTime": "2026-10-25T02:40:00", "timeZone": "Europe/Paris"},
        end={"dateTime": "2026-10-25T02:10:00", "timeZone": "Europe/Paris"},
    )
    assert isinstance(item, Appointment)
    assert item.end.astimezone(UTC) - item.start.astimezone(UTC) == timedelta(minutes=30)


@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    ),
    st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "UTC"]),
)
def test_what_syncd_writes_reads_back_as_the_same_instant(moment: datetime, zone: str) -> None:
    moment = moment.replace(microsecond=0)
    assert zoned_time(wire_time(moment, ZoneInfo(zone)), "start", PARIS) == moment


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("accepted", Status.CONFIRMED),
        ("completed", Status.CONFIRMED),
        ("noShow", Status.CONFIRMED),
        ("inProgress", Status.CONFIRMED),
        ("pending", Status.TENTATIVE),
        ("cancelled", Status.CANCELLED),
        ("declined", Status.CANCELLED),
        (None, Status.CONFIRMED),  # a customStatus instead
    ],
)
def test_statuses(status: str | None, expected: Status) -> None:
    item = read(status=status)
    assert isinstance(item, Appointment)
    assert item.status is expected


def test_deleted_entries_and_syncds_own_blocks() -> None:
    assert read_item({"id": "9", "deleted": True}, READ, "#0") == Deleted("ag", "9")
    assert read(status="deleted") == Deleted("ag", "5001")
    own = {"private": {"syncd": "busy:ag:0123456789abcdef01234567"}}
    assert read(type="personal", extendedProperties=own) is None
    assert read_item({"id": "9", "deleted": True, "extendedProperties": own}, READ, "#0") is None
    assert read(type="personal") is None, "personal time is read only when asked for"
    busy = read_item(resource(type="personal", client=None), Reading("ag", PARIS, True), "#0")
    assert isinstance(busy, Appointment)
    assert (busy.title, busy.customer, busy.notes, busy.staff) == ("Busy", "", "", "Anna Martin")


@pytest.mark.parametrize(
    ("changes", "item", "field"),
    [
        ({"id": 5001}, "#0", "id"),
        ({"id": None}, "#0", "id"),
        ({"id": "../../etc"}, "#0", "id"),
        ({"start": None}, "5001", "start"),
        ({"start": "2026-10-21T10:00:00"}, "5001", "start"),
        ({"end": {"dateTime": "2026-02-30T10:00:00"}}, "5001", "end.dateTime"),
        ({"end": {"dateTime": 20261021}}, "5001", "end.dateTime"),
        (
            {"start": {"dateTime": "2026-10-21T10:00:00", "timeZone": "Mars/Olympus"}},
            "5001",
            "start.timeZone",
        ),
        (
            {"start": {"dateTime": "2026-10-21T10:00:00", "timeZone": "../../etc/passwd"}},
            "5001",
            "start.timeZone",
        ),
        ({"start": {"dateTime": "2026-10-21T10:00:00", "timeZone": 1}}, "5001", "start.timeZone"),
        ({"status": "lost"}, "5001", "status"),
        ({"status": ["accepted"]}, "5001", "status"),
        ({"type": "meeting"}, "5001", "type"),
        ({"client": "Léa"}, "5001", "client"),
        ({"client": {"firstName": {"x": 1}}}, "5001", "client.firstName"),
        ({"service": {"name": "x" * 5000}}, "5001", "service.name"),
        ({"notes": "x" * 70_000}, "5001", "notes"),
        ({"notes": 12}, "5001", "notes"),
        ({"end": {"dateTime": "2026-10-21T09:00:00", "timeZone": "Europe/Paris"}}, "5001", "end"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], item: str, field: str) -> None:
    bad = read(**changes)  # None removes the field
    assert isinstance(bad, BadItem)
    assert (bad.item, bad.field) == (item, field)


def test_a_non_object_is_named_by_its_position() -> None:
    bad = read_item(["not", "an", "object"], READ, "#7")
    assert isinstance(bad, BadItem)
    assert (bad.item, bad.field) == ("#7", "item")


def test_versions_grow_with_history() -> None:
    first = resource()
    later = resource(
        history=[
            *first["history"],
            {
                "type": "updated",
                "date": {"dateTime": "2026-10-02T09:00:00", "timeZone": "Europe/Paris"},
            },
        ]
    )
    assert version(later) > version(first) > (0, 0.0)
    assert version(resource(history=None)) == (0, 0.0)
    assert version(resource(history=[{"date": "junk"}, 3])) == (2, 0.0)
