"""OnlineAfspraken elements -> appointments: wall times across DST, statuses, shapes, titles."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from xml.etree.ElementTree import Element, SubElement, fromstring
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.errors import BadItem
from syncd.model import Appointment, Deleted, Status
from syncd.providers.oa_mapping import (
    Names,
    Reading,
    TitleTemplate,
    fingerprint,
    localize,
    parse_wall,
    read_appointment,
    read_status,
    repeated_hour,
    resource_ids,
    second_pass,
    short_name,
    to_wall,
)

AMS = ZoneInfo("Europe/Amsterdam")
READING = Reading("oa", AMS, TitleTemplate("{type} - {customer_short}"))
NAMES = Names(types={"1": "Knippen"}, resources={"2": "Bram"})


def element(**fields: str) -> Element:
    base = {"Id": "7", "StartTime": "2031-03-03 10:00:00", "FinishTime": "2031-03-03 10:30:00"}
    base |= {"Status": "1", "Label": "2", "AppointmentTypeId": "1", "CustomerName": "Jan Jansen"}
    base |= {"UpdateTime": "2031-03-01 09:00:00", "Description": "kort"}
    base |= fields
    root = Element("Appointment")
    for tag, value in base.items():
        if value != "<absent>":
            SubElement(root, tag).text = value
    return root


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- wall times ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "0000-00-00 00:00:00", "2031-02-30 10:00:00", "2031-13-01 10:00", "morgen"]
)
def test_impossible_or_empty_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"empty|impossible"):
        parse_wall(text)


@pytest.mark.parametrize(
    ("text", "wall"),
    [
        ("2031-03-02 08:05:09", datetime(2031, 3, 2, 8, 5, 9)),
        (" 2031-03-02 08:05 ", datetime(2031, 3, 2, 8, 5)),
        ("2031-03-02T08:05:09", datetime(2031, 3, 2, 8, 5, 9)),
        ("2031-3-2 8:05:09", datetime(2031, 3, 2, 8, 5, 9)),  # unpadded, as strptime reads
    ],
)
def test_every_documented_shape_of_a_wall_time_is_read(text: str, wall: datetime) -> None:
    assert parse_wall(text) == wall


def test_a_fingerprint_changes_with_any_tag_attribute_or_text() -> None:
    base = "<Appointment><Id>7</Id><Name>Jan</Name><Status>1</Status></Appointment>"
    variants = [
        base.replace("Jan", "Jan "),
        base.replace("<Status>1</Status>", "<Status>2</Status>"),
        base.replace("<Name>", '<Name lang="nl">'),
        base.replace("Name>", "Naam>"),
        base.replace("<Status>1</Status>", ""),
    ]
    prints = {fingerprint(fromstring(text)) for text in [base, *variants]}
    assert len(prints) == 1 + len(variants)
    assert fingerprint(fromstring(base)) == fingerprint(fromstring(base))


def test_both_sides_of_dst_read_with_their_own_offset() -> None:
    winter = localize(parse_wall("2031-01-15 10:00:00"), AMS)
    summer = localize(parse_wall("2031-07-15 10:00"), AMS)
    assert (winter.utcoffset(), summer.utcoffset()) == (timedelta(hours=1), timedelta(hours=2))
    assert (winter.astimezone(UTC), summer.astimezone(UTC)) == (
        utc(2031, 1, 15, 9),
        utc(2031, 7, 15, 8),
    )


def test_the_skipped_spring_hour_takes_the_offset_from_before_the_gap() -> None:
    moment = localize(parse_wall("2024-03-31 02:30:00"), AMS)
    assert moment.astimezone(UTC) == utc(2024, 3, 31, 1, 30)
    assert (moment.hour, moment.minute, moment.utcoffset()) == (3, 30, timedelta(hours=2))


def test_the_repeated_autumn_hour_is_its_first_occurrence() -> None:
    moment = localize(parse_wall("2024-10-27 02:30:00"), AMS)
    assert moment.astimezone(UTC) == utc(2024, 10, 27, 0, 30)
    assert not second_pass(moment, AMS)


def test_writing_tells_the_two_runs_of_the_repeated_hour_apart() -> None:
    first, second = utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 30)
    assert to_wall(first, AMS) == to_wall(second, AMS) == datetime(2024, 10, 27, 2, 30)
    assert (second_pass(first, AMS), second_pass(second, AMS)) == (False, True)
    assert to_wall(utc(2024, 3, 31, 1, 30), AMS) == datetime(2024, 3, 31, 3, 30)


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1)))
def test_every_instant_survives_the_round_trip_except_the_second_run(naive: datetime) -> None:
    moment = naive.replace(tzinfo=UTC, microsecond=0)
    back = localize(to_wall(moment, AMS), AMS)
    if second_pass(moment, AMS):
        assert back == moment - timedelta(hours=1)
    else:
        assert back == moment


def test_repeated_hour_is_found_only_on_the_autumn_day() -> None:
    assert repeated_hour(date(2024, 10, 27), AMS) == (
        datetime(2024, 10, 27, 2),
        datetime(2024, 10, 27, 3),
    )
    assert repeated_hour(date(2024, 3, 31), AMS) is None
    assert repeated_hour(date(2024, 7, 1), AMS) is None
    new_york = repeated_hour(date(2024, 11, 3), ZoneInfo("America/New_York"))
    assert new_york == (datetime(2024, 11, 3, 1), datetime(2024, 11, 3, 2))


def test_an_end_in_the_second_run_of_the_repeated_hour_is_given_in_utc() -> None:
    late = element(StartTime="2024-10-27 02:40:00", FinishTime="2024-10-27 02:10:00")
    item = read_appointment(late, READING, NAMES, "#0")
    assert isinstance(item, Appointment)
    assert item.start.astimezone(UTC) == utc(2024, 10, 27, 0, 40)
    assert item.end == utc(2024, 10, 27, 1, 10)
    assert item.start.tzinfo is AMS


def test_an_appointment_over_the_repeated_hour_keeps_its_real_length() -> None:
    item = read_appointment(
        element(StartTime="2024-10-27 01:30:00", FinishTime="2024-10-27 03:30:00"),
        READING,
        NAMES,
        "#0",
    )
    assert isinstance(item, Appointment)
    assert item.end - item.start == timedelta(hours=2)  # wall times differ by 2 h ...
    assert item.end.astimezone(UTC) - item.start.astimezone(UTC) == timedelta(hours=3)  # ... real 3


# -- statuses and shapes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "label", "wanted"),
    [
        ("1", "1", Status.TENTATIVE),
        ("1", "2", Status.CONFIRMED),
        ("1", "3", Status.CONFIRMED),
        ("1", "4", Status.CANCELLED),
        ("1", "5", Status.CONFIRMED),
        ("1", "", Status.CONFIRMED),
        ("2", "2", Status.CANCELLED),
        ("3", "2", None),
    ],
)
def test_status_and_label_map_to_calendar_states(
    status: str, label: str, wanted: Status | None
) -> None:
    assert read_status(status, label) is wanted


@pytest.mark.parametrize(("status", "label"), [("4", "2"), ("", "2"), ("1", "6"), ("1", "x")])
def test_unknown_status_codes_are_refused(status: str, label: str) -> None:
    with pytest.raises(ValueError, match="unknown"):
        read_status(status, label)


def _resources(xml_items: list[dict[str, str]], flat: bool = False) -> Element:
    root = Element("Appointment")
    holder = SubElement(root, "Resources")
    for fields in xml_items:
        item = holder if flat else SubElement(holder, "Resource")
        for tag, value in fields.items():
            SubElement(item, tag).text = value
    return root


def test_both_resource_shapes_one_or_many_are_read() -> None:
    assigned = {"ResourceId": "2", "AssignedStartTime": "x", "AssignedFinishTime": "y"}
    plain = {"Id": "10", "StartTime": "x", "FinishTime": "y"}
    assert resource_ids(_resources([assigned])) == ("2",)
    assert resource_ids(_resources([plain, assigned])) == ("2", "10")
    assert resource_ids(_resources([assigned], flat=True)) == ("2",)
    assert resource_ids(_resources([])) == ()
    assert resource_ids(Element("Appointment")) == ()


# -- whole elements ------------------------------------------------------------------------


def test_a_sound_element_becomes_an_appointment() -> None:
    root = element()
    root.append(_resources([{"Id": "2"}]).find("Resources"))  # type: ignore[arg-type]
    item = read_appointment(root, READING, NAMES, "#0")
    assert isinstance(item, Appointment)
    assert (item.native_id, item.title, item.notes) == ("7", "Knippen - J. Jansen", "kort")
    assert (item.customer, item.resource, item.status) == ("Jan Jansen", "Bram", Status.CONFIRMED)
    assert item.start == datetime(2031, 3, 3, 10, tzinfo=AMS)
    assert item.updated == datetime(2031, 3, 1, 9, tzinfo=AMS)
    assert dict(item.extra) == {"appointment_type_id": "1", "resource_ids": "2"}


def test_status_three_is_a_deletion_even_without_times() -> None:
    gone = element(Status="3", StartTime="<absent>", FinishTime="<absent>")
    assert read_appointment(gone, READING, NAMES, "#0") == Deleted("oa", "7")


@pytest.mark.parametrize(
    ("fields", "item", "field"),
    [
        ({"Id": "<absent>"}, "#4", "Id"),
        ({"Id": "seven"}, "#4", "Id"),
        ({"Status": "<absent>"}, "7", "Status"),
        ({"Status": "9"}, "7", "Status"),
        ({"Label": "8"}, "7", "Label"),
        ({"StartTime": "<absent>"}, "7", "StartTime"),
        ({"FinishTime": "2031-02-30 10:00:00"}, "7", "FinishTime"),
        ({"StartTime": "0000-00-00 00:00:00"}, "7", "StartTime"),
        ({"FinishTime": "2031-03-03 09:00:00"}, "7", "FinishTime"),
        ({"UpdateTime": "yesterday"}, "7", "UpdateTime"),
    ],
)
def test_a_malformed_element_is_a_bad_item_naming_item_and_field(
    fields: dict[str, str], item: str, field: str
) -> None:
    bad = read_appointment(element(**fields), READING, NAMES, "#4")
    assert isinstance(bad, BadItem)
    assert (bad.item, bad.field) == (item, field)
    assert bad.message


def test_privacy_keeps_client_data_out() -> None:
    private = Reading("oa", AMS, TitleTemplate("{type} - {customer} {name}"), private=True)
    item = read_appointment(element(Name="Jan J."), private, NAMES, "#0")
    assert isinstance(item, Appointment)
    assert (item.title, item.customer, item.notes) == ("Knippen", "", "")


def test_a_missing_customer_name_comes_from_the_looked_up_names() -> None:
    names = Names(types={}, customers={"5": "Anna de Vries"})
    item = read_appointment(element(CustomerName="", CustomerId="5"), READING, names, "#0")
    assert isinstance(item, Appointment)
    assert (item.title, item.customer) == ("A. de Vries", "Anna de Vries")


def test_title_templates_are_checked_and_trimmed() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        TitleTemplate("{type} for {client}")
    with pytest.raises(ValueError, match="unknown field"):
        TitleTemplate("{} and {type}")
    with pytest.raises(ValueError, match="title template"):
        TitleTemplate("{type")
    template = TitleTemplate("{type} - {customer} ({resource})")
    assert (
        template.render({"type": "Knippen", "customer": "", "resource": "Bram"})
        == "Knippen - (Bram)"
    )
    assert template.render({"type": "", "customer": "", "resource": ""}) == "Appointment"
    assert (
        TitleTemplate("{type} - {customer}").render({"type": "Knippen", "customer": ""})
        == "Knippen"
    )


def test_short_names_keep_insertions() -> None:
    assert [short_name(n) for n in ("Jan de Vries", "Anna", "", "Piet  Bakker")] == [
        "J. de Vries",
        "Anna",
        "",
        "P. Bakker",
    ]
