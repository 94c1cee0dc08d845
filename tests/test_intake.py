"""The intake step: a person's new event in the intake calendar becomes one booking, a refused
one is marked and never retried until edited, and a crash never books twice."""

from __future__ import annotations

from datetime import datetime, timedelta

import icalendar
import pytest
from structlog.testing import capture_logs

from syncd.calendars.memory import MemoryCalendar
from syncd.config import parse_config
from syncd.errors import ConfigError, NotFound, Refused, TransientError
from syncd.ical import RenderOptions, parse_event
from syncd.intake.journal import IntakeLedger
from syncd.intake.mark import refused
from syncd.intake.plan import Book, Decision, Decline, Forget, from_json, plan_intake, to_json
from syncd.intake.read import Ignored, Unbookable, description_fields, read_intake
from syncd.intake.request import IntakeRequest, intake_reference
from syncd.model import CalendarItem
from syncd.providers.base import Capability, Scope, Window
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import Sync, run_cycle
from syncd.reconcile.policy import Policy
from syncd.reconcile.render import SyncRenderer
from syncd.runtime import Runtime
from syncd.state.history import sync_status
from syncd.state.store import Store
from tests.crash import Crash
from tests.test_busy import AMS, NOW

pytestmark = pytest.mark.anyio
WINDOW = Window(NOW, NOW + timedelta(days=60))


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, 0, tzinfo=AMS)


def person_event(
    uid: str,
    start: datetime,
    end: datetime,
    summary: str = "Escape room",
    description: str = "persons: 4\nphone: 050-1234567",
    rrule: str = "",
) -> str:
    event = icalendar.Event.new(uid=uid, start=start, end=end, summary=summary)
    event.add("DESCRIPTION", description)
    event.add("ORGANIZER", "mailto:desk@example.org", parameters={"CN": "Front desk"})
    event.add("ATTENDEE", "mailto:Ann@Example.org", parameters={"CN": "Ann de Vries"})
    event.add("DTSTAMP", NOW + timedelta(minutes=5))
    if rrule:
        event.add("RRULE", icalendar.vRecur.from_ical(rrule))
    calendar = icalendar.Calendar()
    calendar.add("VERSION", "2.0")
    calendar.add("PRODID", "-//a person's calendar app//EN")
    calendar.add_component(event)
    return calendar.to_ical().decode()


class BookingProvider(MemoryProvider):
    """A memory provider that books from events: one booking per slot, found by reference."""

    capabilities = MemoryProvider.capabilities | {Capability.INTAKE}

    def __init__(self, name: str = "shop") -> None:
        super().__init__(name, now=lambda: NOW)
        self.references: dict[str, str] = {}
        self.crash_after_booking = False

    async def book_from_event(self, scope: Scope, request: IntakeRequest) -> str:
        async with self.faults.request("book"):
            for item in self.appointments().values():
                if not item.cancelled and item.start < request.end and request.start < item.end:
                    raise Refused(self.name, "slot taken (capacity 1)")
            booked = self.book(request.start, request.end, title=request.summary)
            self.references[request.reference] = booked.native_id
        if self.crash_after_booking:
            self.crash_after_booking = False
            raise Crash
        return booked.native_id

    async def find_booking(self, scope: Scope, request: IntakeRequest) -> str | None:
        async with self.faults.request("find_booking"):
            return self.references.get(request.reference)


@pytest.fixture
def provider() -> BookingProvider:
    return BookingProvider()


@pytest.fixture
def desk() -> MemoryCalendar:
    return MemoryCalendar("desk")


def intake_sync(provider: BookingProvider, desk: MemoryCalendar) -> Sync:
    policy = Policy(sync="s", account=provider.name, calendars=("desk",))
    renderer = SyncRenderer(provider.name, RenderOptions("s"))
    return Sync(policy, provider, {"desk": desk}, renderer, intake="desk")


def summaries(calendar: MemoryCalendar) -> list[str]:
    return sorted(parse_event(ics, href).summary for href, (_, ics) in calendar.items().items())


# -- pure parts ---------------------------------------------------------------------------


def test_a_request_carries_the_person_the_fields_and_a_stable_reference() -> None:
    ics = person_event("e1", at(12, 10), at(12, 12), summary="[not booked: full] Escape room")
    item = CalendarItem("e1.ics", "1", ics)
    reading, _ = read_intake(item, "s", "desk", WINDOW, AMS)
    assert isinstance(reading, IntakeRequest)
    assert reading.summary == "Escape room"
    assert reading.contact.email == "ann@example.org"
    assert reading.contact.name == "Ann de Vries"
    assert reading.organizer is not None
    assert reading.organizer.name == "Front desk"
    assert reading.answer("Persons") == "4"
    assert reading.reference == intake_reference("s", "desk", "e1")
    assert reading.reference.isalnum()
    assert len(reading.reference) == 37
    assert from_json(to_json(Book(reading, "1"))) == Book(reading, "1")


@pytest.mark.parametrize(
    ("ics", "why"),
    [
        (person_event("p", at(9, 10), at(9, 11)), "in the past"),
        (
            person_event("f", at(12, 10), at(12, 11)).replace(
                "END:VEVENT", "TRANSP:TRANSPARENT\r\nEND:VEVENT"
            ),
            "free time",
        ),
        (
            person_event("o", at(12, 10), at(12, 11)).replace(
                "END:VEVENT", "X-SYNCD-SYNC:s\r\nEND:VEVENT"
            ),
            "written by syncd",
        ),
    ],
)
def test_events_that_are_no_requests_are_ignored(ics: str, why: str) -> None:
    reading, _ = read_intake(CalendarItem("x.ics", "1", ics), "s", "desk", WINDOW, AMS)
    assert reading == Ignored(why)


def test_a_series_is_unbookable_without_asking() -> None:
    ics = person_event("r", at(12, 10), at(12, 11), rrule="FREQ=WEEKLY;COUNT=2")
    reading, _ = read_intake(CalendarItem("r.ics", "1", ics), "s", "desk", WINDOW, AMS)
    assert isinstance(reading, Unbookable)
    assert reading.uid == "r"


def test_description_fields_take_key_value_lines_first_one_wins() -> None:
    text = "Hello\nVoucher: ABC-1\nvoucher: later\nnot a field\nE-mail : a@b.nl"
    assert description_fields(text) == {"voucher": "ABC-1", "e-mail": "a@b.nl"}


def test_marks_replace_each_other_and_are_idempotent() -> None:
    ics = person_event("e1", at(12, 10), at(12, 12))
    once = refused(ics, "slot taken")
    assert refused(once, "slot taken") == once
    again = refused(once, "voucher used")
    assert parse_event(again, "x").summary == "[not booked: voucher used] Escape room"
    long = parse_event(refused(ics, "x" * 300), "x").summary
    assert long.startswith("[not booked: xxx")
    assert long.endswith("…] Escape room")


def test_a_refusal_stands_until_the_person_edits_the_event() -> None:
    ics = person_event("e1", at(12, 10), at(12, 12))
    reading, parsed = read_intake(CalendarItem("e1.ics", "2", ics), "s", "desk", WINDOW, AMS)
    decided = {"e1.ics": Decision("desk", "e1.ics", "e1", "full", "2", "other")}
    assert plan_intake([("e1.ics", "2", reading, parsed.hash)], [], decided, "desk") == []
    by_hash = {"e1.ics": Decision("desk", "e1.ics", "e1", "full", "9", parsed.hash)}
    assert plan_intake([("e1.ics", "3", reading, parsed.hash)], [], by_hash, "desk") == []
    edited = plan_intake([("e1.ics", "3", reading, "new")], ["gone.ics"], decided, "desk")
    assert edited == [Book(reading, "3")]  # type: ignore[arg-type]
    assert plan_intake([], ["e1.ics"], decided, "desk") == [Forget("desk", "e1.ics")]
    series = Unbookable("a series", "r")
    assert plan_intake([("r.ics", "1", series, "h")], [], {}, "desk") == [
        Decline("desk", "r.ics", "r", "1", "a series")
    ]


# -- whole cycles ---------------------------------------------------------------------------


async def test_events_already_there_are_left_alone_and_a_new_one_becomes_one_booking(
    store: Store, provider: BookingProvider, desk: MemoryCalendar
) -> None:
    desk.user_put("old.ics", person_event("old", at(11, 10), at(11, 11), summary="Lunch"))
    sync = intake_sync(provider, desk)
    first = await run_cycle(store, sync, now=NOW)
    assert provider.appointments() == {}
    assert first.intake.actions == []

    desk.user_put("new.ics", person_event("new", at(12, 10), at(12, 12)))
    booked = await run_cycle(store, sync, now=NOW)
    assert booked.intake.counts() == {"intake-book": 1, "intake-booked": 1}
    [appointment] = provider.appointments().values()
    assert (appointment.start, appointment.title) == (at(12, 10), "Escape room")
    hrefs = desk.items()
    assert "new.ics" not in hrefs
    assert "old.ics" in hrefs
    ours = [parse_event(ics, h) for h, (_, ics) in hrefs.items() if h != "old.ics"]
    assert [(e.sync, e.native_id, e.start) for e in ours] == [
        ("s", appointment.native_id, at(12, 10))
    ]

    provider.faults.reset_calls()
    idle = await run_cycle(store, sync, now=NOW)
    assert idle.lines == []
    assert provider.faults.calls["book"] == 0
    assert summaries(desk) == ["Escape room", "Lunch"]
    assert sync_status(store.engine, "s").links == 1


async def test_a_full_slot_is_marked_with_a_conflict_and_not_retried_until_edited(
    store: Store, provider: BookingProvider, desk: MemoryCalendar
) -> None:
    sync = intake_sync(provider, desk)
    await run_cycle(store, sync, now=NOW)
    provider.book(at(12, 10), at(12, 12), title="Taken")
    await run_cycle(store, sync, now=NOW)
    desk.user_put("late.ics", person_event("late", at(12, 11), at(12, 13)))
    refusal = await run_cycle(store, sync, now=NOW)
    assert refusal.intake.outcome.refused == [("late.ics", "slot taken (capacity 1)")]
    assert "[not booked: slot taken (capacity 1)] Escape room" in summaries(desk)
    conflicts = sync_status(store.engine, "s").conflicts
    assert [c["detail"] for c in conflicts] == ["not booked: slot taken (capacity 1)"]

    provider.faults.reset_calls()
    for _ in range(3):
        quiet = await run_cycle(store, sync, now=NOW)
        assert quiet.intake.actions == []
    assert provider.faults.calls["book"] == 0

    _, ics = desk.items()["late.ics"]
    desk.user_put("late.ics", ics.replace("T110000", "T140000").replace("T130000", "T150000"))
    retried = await run_cycle(store, sync, now=NOW)
    assert provider.faults.calls["book"] == 1
    assert [h for h, _ in retried.intake.outcome.booked] == ["late.ics"]
    assert sorted(summaries(desk)) == ["Escape room", "Taken"]


async def test_a_crash_between_booking_and_recording_the_id_books_once(
    store: Store, provider: BookingProvider, desk: MemoryCalendar
) -> None:
    sync = intake_sync(provider, desk)
    await run_cycle(store, sync, now=NOW)
    desk.user_put("new.ics", person_event("new", at(12, 10), at(12, 12)))
    provider.crash_after_booking = True
    with pytest.raises(Crash):
        await run_cycle(store, sync, now=NOW)
    [entry] = IntakeLedger(store).pending("s")
    assert entry.state == "started"

    provider.faults.reset_calls()
    await run_cycle(store, sync, now=NOW)
    assert provider.faults.calls["find_booking"] == 1
    assert provider.faults.calls["book"] == 0
    assert len(provider.appointments()) == 1
    assert summaries(desk) == ["Escape room"]
    assert IntakeLedger(store).pending("s") == []


async def test_a_booking_lost_on_the_way_is_made_after_looking_it_up(
    store: Store, provider: BookingProvider, desk: MemoryCalendar
) -> None:
    sync = intake_sync(provider, desk)
    await run_cycle(store, sync, now=NOW)
    desk.user_put("new.ics", person_event("new", at(12, 10), at(12, 12)))
    provider.fail_next(1, lambda: TransientError("shop", "timed out"), method="book")
    with pytest.raises(TransientError):
        await run_cycle(store, sync, now=NOW)
    assert provider.appointments() == {}
    await run_cycle(store, sync, now=NOW)
    assert len(provider.appointments()) == 1
    assert provider.faults.calls["find_booking"] == 1
    assert summaries(desk) == ["Escape room"]


async def test_a_series_is_marked_without_a_booking_call(
    store: Store, provider: BookingProvider, desk: MemoryCalendar
) -> None:
    sync = intake_sync(provider, desk)
    await run_cycle(store, sync, now=NOW)
    desk.user_put("r.ics", person_event("r", at(12, 10), at(12, 11), rrule="FREQ=DAILY;COUNT=2"))
    await run_cycle(store, sync, now=NOW)
    assert provider.faults.calls["book"] == 0
    assert summaries(desk) == ["[not booked: a recurring event cannot be one booking] Escape room"]


def test_a_sync_refuses_an_intake_calendar_it_does_not_write_or_a_provider_that_cannot_book(
    desk: MemoryCalendar,
) -> None:
    renderer = SyncRenderer("shop", RenderOptions("s"))
    policy = Policy(sync="s", account="shop", calendars=("desk",))
    with pytest.raises(ValueError, match="not synced"):
        Sync(policy, BookingProvider(), {"desk": desk}, renderer, intake="other")
    with pytest.raises(ValueError, match="cannot book"):
        Sync(policy, MemoryProvider("shop"), {"desk": desk}, renderer, intake="desk")


# -- config -------------------------------------------------------------------------------

CONFIG = """
[providers.shop]
kind = "memory"

[calendars.desk]
kind = "memory"

[[syncs]]
name = "s"
provider = "shop"
calendars = ["desk"]
intake = "{intake}"
"""


def test_the_intake_calendar_must_be_one_the_sync_writes() -> None:
    with pytest.raises(ConfigError, match="must be one of this sync's calendars"):
        parse_config(CONFIG.format(intake="elsewhere"))


def test_intake_on_a_provider_that_cannot_book_is_ignored_with_a_warning() -> None:
    config = parse_config(CONFIG.format(intake="desk"))
    with capture_logs() as logs:
        runtime = Runtime.build(config)
    assert runtime.syncs[0].intake == ""
    assert [e["event"] for e in logs] == [
        "intake ignored: the provider cannot book from calendar events"
    ]


async def test_a_booking_the_calendar_cannot_show_yet_is_finished_later_never_booked_again(
    store: Store, provider: BookingProvider, desk: MemoryCalendar
) -> None:
    sync = intake_sync(provider, desk)
    await run_cycle(store, sync, now=NOW)
    desk.user_put("new.ics", person_event("new", at(12, 10), at(12, 12)))
    desk.fail_next(1, lambda: NotFound("desk", "collection gone"), method="create")
    with pytest.raises(TransientError, match="booked as 1, not yet shown"):
        await run_cycle(store, sync, now=NOW)
    [entry] = IntakeLedger(store).pending("s")
    assert (entry.state, entry.outcome) == ("booked", "1")
    await run_cycle(store, sync, now=NOW)
    assert provider.faults.calls["book"] == 1
    assert summaries(desk) == ["Escape room"]
