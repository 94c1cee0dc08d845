"""The Recras provider on its sandbox: mapping, change detection by content hash, bad payloads
named and skipped, errors by status code, cancels via set_status, webhook deliveries."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from syncd.config import parse_config
from syncd.errors import (
    AuthError,
    BadItem,
    ConfigError,
    NotFound,
    RateLimited,
    Refused,
    TransientError,
)
from syncd.model import Appointment, Deleted, Status
from syncd.providers.base import Window
from syncd.providers.recras import RecrasProvider
from syncd.providers.recras_client import RecrasClient
from syncd.providers.recras_mapping import Reading, read_booking
from syncd.providers.recras_webhook import parse_delivery
from syncd.runtime import Runtime
from syncd.sandbox.recras import create_app
from tests.daemon_kit import Harness, memory_config
from tests.recras_kit import AMS, DAY, provider_for, sandbox

pytestmark = pytest.mark.anyio
WINDOW = Window(DAY - timedelta(days=2), DAY + timedelta(days=30))


def booking(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "id": 7,
        "status": "definitief",
        "arrangement": "Escape room",
        "referentie": "B2031-7",
        "status_updated_at": "2031-03-01T09:00:00+01:00",
        "boekingsregels": [
            {
                "id": 1,
                "begin": "2031-03-03T14:00:00+01:00",
                "eind": "2031-03-03T15:00:00+01:00",
                "aantal": 4,
                "beschrijving": "Room",
            },
            {
                "id": 2,
                "begin": "2031-03-03T15:00:00+01:00",
                "eind": "2031-03-03T15:30:00+01:00",
                "aantal": 3,
                "beschrijving": "Drinks",
            },
        ],
    }
    return data | changes


def test_one_appointment_spans_the_booking_with_arrangement_persons_and_reference() -> None:
    [one] = read_booking(booking(), Reading("recras", AMS))
    assert (one.native_id, one.title, one.status) == ("7", "Escape room", Status.CONFIRMED)
    assert (one.start.hour, one.end.hour, one.end.minute) == (14, 15, 30)
    assert one.notes.splitlines()[:2] == ["Reference: B2031-7", "Persons: 4"]
    assert dict(one.extra) == {"persons": "4", "reference": "B2031-7"}


def test_per_line_mode_gives_one_appointment_per_line() -> None:
    lines = read_booking(booking(), Reading("recras", AMS, per_line=True))
    assert [(a.native_id, a.title) for a in lines] == [
        ("7-1", "Escape room: Room"),
        ("7-2", "Escape room: Drinks"),
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("informatie", Status.TENTATIVE),
        ("reservering", Status.TENTATIVE),
        ("definitief", Status.CONFIRMED),
        ("geannuleerd", Status.CANCELLED),
        ("iets nieuws", Status.TENTATIVE),
    ],
)
def test_statuses(status: str, expected: Status) -> None:
    assert read_booking(booking(status=status), Reading("recras", AMS))[0].status is expected


@pytest.mark.parametrize(
    ("data", "item", "field"),
    [
        ([1, 2], "#3", "booking"),
        (booking(id="x"), "#3", "id"),
        (booking(status=None), "7", "status"),
        (booking(boekingsregels=[]), "7", "boekingsregels"),
        (
            booking(boekingsregels=[{"begin": "morgen", "eind": "2031-03-03T15:00:00+01:00"}]),
            "7",
            "boekingsregels[0].begin",
        ),
        (
            booking(
                boekingsregels=[
                    {"begin": "2031-03-03T15:00:00+01:00", "eind": "2031-03-03T14:00:00+01:00"}
                ]
            ),
            "7",
            "boekingsregels[0].eind",
        ),
        (
            booking(
                boekingsregels=[
                    {
                        "begin": "2031-03-03T14:00:00+01:00",
                        "eind": "2031-03-03T15:00:00+01:00",
                        "aantal": "vier",
                    }
                ]
            ),
            "7",
            "boekingsregels[0].aantal",
        ),
    ],
)
def test_bad_bookings_are_named(data: object, item: str, field: str) -> None:
    with pytest.raises(BadItem) as caught:
        read_booking(data, Reading("recras", AMS), position=3)
    assert (caught.value.item, caught.value.field) == (item, field)


async def test_an_idle_pull_is_one_request_and_changes_are_found_by_hash() -> None:
    state = sandbox()
    kept = state.book(1, DAY + timedelta(hours=2))
    moved = state.book(1, DAY + timedelta(hours=4))
    gone = state.book(1, DAY + timedelta(hours=6))
    async with provider_for(state) as provider:
        first = await provider.pull({}, None, WINDOW)
        assert first.complete
        assert {i.native_id for i in first.items if isinstance(i, Appointment)} == {
            str(kept.id),
            str(moved.id),
            str(gone.id),
        }
        state.requests.clear()
        idle = await provider.pull({}, first.cursor, WINDOW)
        assert (idle.items, dict(state.requests)) == ([], {"boekingen": 1})

        state.reschedule(moved.id, DAY + timedelta(hours=5))
        state.remove(gone.id)
        state.set_status(kept.id, "geannuleerd")
        later = await provider.pull({}, idle.cursor, WINDOW)
        found = {i.native_id: i for i in later.items if isinstance(i, Appointment)}
        assert found[str(moved.id)].start == DAY + timedelta(hours=5)
        assert found[str(kept.id)].cancelled
        assert [i for i in later.items if isinstance(i, Deleted)] == [
            Deleted("recras", str(gone.id))
        ]

        # A cycle that failed pulls again with the older cursor: the changes come again.
        again = await provider.pull({}, idle.cursor, WINDOW)
        assert {i.native_id for i in again.items if not isinstance(i, BadItem)} == {
            i.native_id for i in later.items if not isinstance(i, BadItem)
        }


async def test_a_booking_moved_out_of_the_window_is_still_reported() -> None:
    state = sandbox()
    moved = state.book(1, DAY + timedelta(hours=2))
    async with provider_for(state) as provider:
        first = await provider.pull({}, None, WINDOW)
        state.reschedule(moved.id, DAY + timedelta(days=90))
        later = await provider.pull({}, first.cursor, WINDOW)
        assert [i.start for i in later.items if isinstance(i, Appointment)] == [
            DAY + timedelta(days=90)
        ]


async def test_a_bad_booking_is_named_skipped_and_never_taken_for_deleted() -> None:
    state = sandbox()
    good = state.book(1, DAY + timedelta(hours=2))
    bad = state.book(1, DAY + timedelta(hours=4))
    async with provider_for(state) as provider:
        first = await provider.pull({}, None, WINDOW)
        state.corrupt(bad.id, "begin", "not a time")
        later = await provider.pull({}, first.cursor, WINDOW)
        [problem] = later.items
        assert isinstance(problem, BadItem)
        assert (problem.item, problem.field) == (str(bad.id), "boekingsregels[0].begin")
        assert good.id  # untouched, so not reported
        idle = await provider.pull({}, later.cursor, WINDOW)
        assert idle.items == []


async def test_a_listing_with_an_unnamed_bad_booking_claims_no_deletions() -> None:
    state = sandbox()
    state.book(1, DAY + timedelta(hours=2))
    broken = state.book(1, DAY + timedelta(hours=4))
    state.corrupt(broken.id, "id", None)
    async with provider_for(state) as provider:
        pull = await provider.pull({}, None, WINDOW)
        assert not pull.complete
        assert [b.item for b in pull.items if isinstance(b, BadItem)] == ["#1"]


async def test_cancel_sets_the_status_once() -> None:
    state = sandbox()
    made = state.book(1, DAY + timedelta(hours=2))
    async with provider_for(state) as provider:
        before = await provider.get(str(made.id))
        assert before is not None
        assert (await provider.cancel(before)).cancelled
        state.requests.clear()
        assert (await provider.cancel(before)).cancelled
        assert "boekingen/set_status/geannuleerd" not in state.requests
        state.remove(made.id)
        with pytest.raises(NotFound):
            await provider.cancel(before)
    async with provider_for(state, per_line=True) as per_line:
        with pytest.raises(Refused, match="one line"):
            await per_line.cancel(before)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"server_errors": 1}, TransientError),
        ({"rate_limited": 1, "retry_after": 7}, RateLimited),
        ({"forbidden": 1}, AuthError),
        ({"garbled": 1}, TransientError),
    ],
)
async def test_faults_map_onto_errors(fault: dict[str, int], error: type[Exception]) -> None:
    state = sandbox()
    for name, value in fault.items():
        setattr(state.faults, name, value)
    async with provider_for(state) as provider:
        with pytest.raises(error) as caught:
            await provider.pull({}, None, WINDOW)
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == 7


async def test_a_wrong_key_is_an_auth_error_that_does_not_show_the_key() -> None:
    transport = httpx.ASGITransport(app=create_app(sandbox()))
    async with httpx.AsyncClient(transport=transport) as http:
        client = RecrasClient("recras", "http://sandbox", "wrong-secret-key", http=http)
        with pytest.raises(AuthError) as caught:
            await client.get("/api2/boekingen")
    assert "wrong-secret-key" not in str(caught.value)
    assert "wrong-secret-key" not in repr(client)


# -- webhooks ------------------------------------------------------------------------------

RECRAS = """
[providers.escape]
kind = "recras"
base_url = "http://127.0.0.1:9"
api_key = "recras-key-for-webhook-tests"
webhook_token = "a-webhook-token-of-32-characters"
"""


def test_deliveries_are_read_or_named_malformed() -> None:
    body = b'{"version": "alpha", "data": {"id": 42}, "meta": {"event": "Boeking::postSave"}}'
    assert parse_delivery(body) == ("Boeking::postSave", 42)
    for bad, field in [
        (b"nope", "body"),
        (b"[]", "body"),
        (b"{}", "data"),
        (b'{"data": {"id": -1}}', "data.id"),
    ]:
        with pytest.raises(BadItem) as caught:
            parse_delivery(bad)
        assert caught.value.field == field


async def test_deliveries_need_the_path_token_and_reread_the_booking(tmp_path: Path) -> None:
    h = Harness.build(memory_config(tmp_path / "state.db", extra=RECRAS))
    state = sandbox()
    made = state.book(1, DAY + timedelta(hours=2))
    try:
        async with provider_for(state) as provider:
            h.context.providers = {**h.context.providers, "escape": provider}
            body = {"version": "alpha", "data": {"id": made.id}, "meta": {}}
            async with h.client() as client:
                right = "/hooks/recras/escape/a-webhook-token-of-32-characters"
                wrong = await client.post(
                    "/hooks/recras/escape/guessed-token-xxxxxxxxxxxx", json=body
                )
                bare = await client.post("/hooks/recras/escape", json=body)
                state.requests.clear()
                ok = await client.post(right, json=body)
                malformed = await client.post(right, content=b"{")
        assert (wrong.status_code, bare.status_code) == (403, 403)
        assert ok.status_code == 200
        assert dict(state.requests) == {"boeking": 1}
        assert malformed.status_code == 400
        assert h.pokes == ["escape"]
    finally:
        await h.close()


# -- config --------------------------------------------------------------------------------

RUNTIME = """
[providers.escape]
kind = "recras"
instance = "demo"
api_key = "recras-key-for-config-tests"
event_per = "line"
arrangement_id = 1
products = { "1" = 2, "2" = 0 }
booking_status = "definitief"
send_confirmation = true

[calendars.desk]
kind = "memory"

[[syncs]]
name = "escape"
provider = "escape"
calendars = ["desk"]
intake = "desk"
"""


async def test_the_config_builds_a_provider_that_books() -> None:
    runtime = Runtime.build(parse_config(RUNTIME))
    try:
        [sync] = runtime.syncs
        provider = sync.provider
        assert isinstance(provider, RecrasProvider)
        assert sync.intake == "desk"
        assert provider.api.base_url == "https://demo.recras.nl"
        assert provider.reading.per_line
        form = provider.booker.form
        assert (form.arrangement_id, dict(form.products), form.status) == (
            1,
            {1: 2, 2: 0},
            "definitief",
        )
        assert form.send_confirmation
    finally:
        await runtime.aclose()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ('products = { "1" = 2, "2" = 0 }', "arrangement_id"),
        ('arrangement_id = 1\nproducts = { "x" = 2 }', "products"),
        (
            'arrangement_id = 1\nproducts = { "1" = 2 }\ncontact_form = { "a" = "contact.name" }',
            "reference",
        ),
        ('contact_form = { "a" = "contact.age" }', "unknown source"),
        ('webhook_token = "short"', "too short"),
    ],
)
def test_bad_recras_keys_are_named(change: str, problem: str) -> None:
    text = f"""
[providers.escape]
kind = "recras"
instance = "demo"
api_key = "k"
{change}
"""
    with pytest.raises(ConfigError, match=problem):
        parse_config(text)
