"""Changed intake events + what was decided about them before -> intake actions (pure).

Per changed object at an href (``Reading`` from ``read.py``):

    a request, nothing stored              Book: ask the provider
    a request, stored decision for it      nothing, when the object is the version syncd
                                           marked (same etag or same content hash): a
                                           refusal stands until the person edits the event;
                                           Book again when they did
    unbookable (a series)                  Decline: mark it without asking the provider,
                                           unless this version was marked already
    ignored, with a stored decision        Forget the decision (it is syncd's own now, or
                                           cancelled, or the person moved it to the past)
    gone, with a stored decision           Forget

That table is why a refused event is never retried in a loop: syncd's own mark changes the
etag, but the stored decision names the etag and hash syncd wrote, so reading the mark back
plans nothing. Actions are plain data, journaled (``to_json``) before anything happens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from syncd.intake.read import Ignored, Reading, Unbookable
from syncd.intake.request import IntakeRequest, Person


@dataclass(frozen=True, slots=True)
class Decision:
    """What syncd did with the object at ``href``: its refusal, and the version it wrote."""

    calendar: str
    href: str
    uid: str
    reason: str
    etag: str
    event_hash: str


@dataclass(frozen=True, slots=True)
class Book:
    """Book ``request``; the event is at ``etag``. ``native_id`` is set once it is known."""

    request: IntakeRequest
    etag: str
    kind: Literal["intake-book"] = "intake-book"

    @property
    def href(self) -> str:
        return self.request.href


@dataclass(frozen=True, slots=True)
class Decline:
    """Mark the event at ``href`` not booked for ``reason`` without asking the provider."""

    calendar: str
    href: str
    uid: str
    etag: str
    reason: str
    kind: Literal["intake-decline"] = "intake-decline"


@dataclass(frozen=True, slots=True)
class Forget:
    """Drop the stored decision for ``href``."""

    calendar: str
    href: str
    kind: Literal["intake-forget"] = "intake-forget"


IntakeAction = Book | Decline | Forget


def plan_intake(
    readings: Iterable[tuple[str, str, Reading, str]],
    gone: Iterable[str],
    stored: Mapping[str, Decision],
    calendar: str,
) -> list[IntakeAction]:
    """``readings`` are (href, etag, reading, content hash) of changed objects; ``gone`` the
    hrefs deleted; ``stored`` the decisions for any of those hrefs."""
    actions: list[IntakeAction] = []
    for href, etag, reading, event_hash in readings:
        decided = stored.get(href)
        if decided is not None and (decided.etag == etag or decided.event_hash == event_hash):
            continue  # the version syncd marked: the person has not touched it since
        if isinstance(reading, Ignored):
            if decided is not None:
                actions.append(Forget(calendar, href))
        elif isinstance(reading, Unbookable):
            actions.append(Decline(calendar, href, reading.uid, etag, reading.reason))
        else:
            actions.append(Book(reading, etag))
    actions.extend(Forget(calendar, href) for href in sorted(set(gone)) if href in stored)
    return actions


def describe(action: IntakeAction) -> str:
    """One line for dry-run output and logs; names the event, never its text."""
    if isinstance(action, Book):
        when = action.request.start.isoformat()
        return f"book intake event {action.request.calendar}:{action.href} at {when}"
    if isinstance(action, Decline):
        return f"mark intake event {action.calendar}:{action.href} not booked: {action.reason}"
    return f"forget intake decision for {action.calendar}:{action.href}"


def to_json(action: IntakeAction) -> str:
    data: dict[str, Any] = {"kind": action.kind}
    if isinstance(action, Book):
        data |= {"etag": action.etag, "request": _request_json(action.request)}
    elif isinstance(action, Decline):
        data |= {
            "calendar": action.calendar,
            "href": action.href,
            "uid": action.uid,
            "etag": action.etag,
            "reason": action.reason,
        }
    else:
        data |= {"calendar": action.calendar, "href": action.href}
    return json.dumps(data, separators=(",", ":"))


def from_json(text: str) -> IntakeAction:
    data = json.loads(text)
    if data["kind"] == "intake-book":
        return Book(_request(data["request"]), data["etag"])
    if data["kind"] == "intake-decline":
        return Decline(data["calendar"], data["href"], data["uid"], data["etag"], data["reason"])
    return Forget(data["calendar"], data["href"])


def _request_json(request: IntakeRequest) -> dict[str, Any]:
    organizer = request.organizer
    return {
        "reference": request.reference,
        "calendar": request.calendar,
        "href": request.href,
        "uid": request.uid,
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "summary": request.summary,
        "description": request.description,
        "location": request.location,
        "organizer": [organizer.name, organizer.email] if organizer else None,
        "attendees": [[p.name, p.email] for p in request.attendees],
        "fields": dict(request.fields),
    }


def _request(data: dict[str, Any]) -> IntakeRequest:
    organizer = data.get("organizer")
    return IntakeRequest(
        reference=data["reference"],
        calendar=data["calendar"],
        href=data["href"],
        uid=data["uid"],
        start=datetime.fromisoformat(data["start"]),
        end=datetime.fromisoformat(data["end"]),
        summary=data["summary"],
        description=data["description"],
        location=data["location"],
        organizer=Person(*organizer) if organizer else None,
        attendees=tuple(Person(*pair) for pair in data["attendees"]),
        fields=dict(data["fields"]),
    )
