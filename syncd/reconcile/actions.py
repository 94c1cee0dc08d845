"""The actions a plan is made of: plain data, written to the journal before anything happens.

Each action says what to do and carries everything needed to do it again after a crash:
the appointment to render (not the rendered text, so replays render the same bytes), the
href and etag it expects, and the predicted outcome of a provider write. ``apply`` turns each
into I/O plus one state change committed together with the journal mark.

    PutEvent      make one calendar show an appointment (create when ``href`` is empty)
    DeleteEvent   remove one calendar's event
    WriteBack     move or cancel at the provider, then bring every calendar to the result
    Adopt         record a calendar item as agreed (an echo of our own write); no I/O
    Remember      record the agreed appointment without touching a calendar; no I/O
    Unlink        forget one calendar's link (the user deleted it and the policy ignores that)
    Forget        drop an appointment and its links after it is gone everywhere
    NoteConflict  record a conflict the user can list; no I/O
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as quote
from typing import Any, Literal

from syncd.model import Appointment


@dataclass(frozen=True, slots=True)
class Target:
    """One calendar an action writes to, with the item we expect to find there."""

    calendar: str
    href: str = ""  # empty: no event yet, create one
    etag: str = ""
    delete: bool = False  # remove the event instead of rendering the appointment
    unlink: bool = False  # the user removed it: drop the link, write nothing
    sequence: int = 0  # the SEQUENCE to write: syncd owns it and bumps it on every update


@dataclass(frozen=True, slots=True)
class PutEvent:
    native_id: str
    appointment: Appointment
    target: Target
    reason: str = "changed"
    kind: Literal["put"] = "put"


@dataclass(frozen=True, slots=True)
class DeleteEvent:
    native_id: str
    target: Target
    reason: str = "deleted"
    kind: Literal["delete"] = "delete"


@dataclass(frozen=True, slots=True)
class WriteBack:
    """Change the provider to ``expected`` (a move or a cancel of ``base``), then the calendars.

    On success every target shows ``expected``; when the provider refuses, the refusal is
    recorded as a conflict and every target shows ``base`` again.
    """

    native_id: str
    operation: Literal["move", "cancel"]
    base: Appointment
    expected: Appointment
    source: str  # the calendar the change came from
    targets: tuple[Target, ...] = ()
    kind: Literal["write-back"] = "write-back"


@dataclass(frozen=True, slots=True)
class Adopt:
    native_id: str
    calendar: str
    href: str
    etag: str
    event_hash: str
    sequence: int = 0
    kind: Literal["adopt"] = "adopt"


@dataclass(frozen=True, slots=True)
class Remember:
    native_id: str
    appointment: Appointment
    kind: Literal["remember"] = "remember"


@dataclass(frozen=True, slots=True)
class Unlink:
    native_id: str
    calendar: str
    kind: Literal["unlink"] = "unlink"


@dataclass(frozen=True, slots=True)
class Forget:
    native_id: str
    kind: Literal["forget"] = "forget"


@dataclass(frozen=True, slots=True)
class NoteConflict:
    native_id: str
    calendar: str
    detail: str
    resolution: str
    kind: Literal["conflict"] = "conflict"


Action = PutEvent | DeleteEvent | WriteBack | Adopt | Remember | Unlink | Forget | NoteConflict


def describe(action: Action) -> str:
    """One human line for dry-run output and logs; never includes client data."""
    match action:
        case PutEvent(native_id=nid, target=t, reason=why):
            verb = "create" if not t.href else "update"
            return f"{verb} event for {nid} in {t.calendar} ({why})"
        case DeleteEvent(native_id=nid, target=t, reason=why):
            return f"delete event for {nid} from {t.calendar} ({why})"
        case WriteBack(native_id=nid, operation=op, source=src, expected=exp):
            when = f" to {exp.start.isoformat()}" if op == "move" else ""
            return f"{op} {nid} at the provider{when} (changed in {src})"
        case Adopt(native_id=nid, calendar=cal):
            return f"adopt event for {nid} in {cal}"
        case Remember(native_id=nid):
            return f"remember {nid}"
        case Unlink(native_id=nid, calendar=cal):
            return f"stop tracking deleted event for {nid} in {cal}"
        case Forget(native_id=nid):
            return f"forget {nid}"
        case NoteConflict(native_id=nid, calendar=cal, resolution=res):
            return f"conflict on {nid} in {cal}: {res}"
    raise AssertionError(action)  # pragma: no cover


@dataclass(slots=True)
class Plan:
    """The outcome of ``plan()``: actions in order, or a refusal with its reason."""

    # Left out of repr: asyncio formats a finished task's result when ``asyncio.run`` exits,
    # and a plan of 10,000 actions took longer to print than to apply.
    actions: list[Action] = field(default_factory=list, repr=False)
    refused: str = ""
    bad_items: list[tuple[str, str, str]] = field(default_factory=list)  # (item, field, message)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for action in self.actions:
            key: str = action.kind
            if isinstance(action, PutEvent):
                key = "create" if not action.target.href else "update"
            out[key] = out.get(key, 0) + 1
        return out


def count_kinds(actions: Iterable[Any]) -> dict[str, int]:
    """How many actions of each ``kind``: the counts a run records and ``syncd sync`` prints."""
    return dict(Counter(action.kind for action in actions))


def to_json(action: Action) -> str:
    """Serialise for the journal; ``from_json`` reads it back equal.

    Written field by field with the json module's own string encoder rather than through a
    dict and ``json.dumps``: the journal holds one entry per action, and this was a fifth of
    a first sync. Appointments are spliced in as the text ``Appointment.dumps`` made once,
    since the record of the same appointment stores that text too.
    """
    if type(action) is PutEvent:  # nearly every entry of a big plan: spelled out
        return (
            f'{{"native_id":{quote(action.native_id)},'
            f'"appointment":{action.appointment.dumps()},'
            f'"target":{_target_json(action.target)},"reason":{quote(action.reason)},'
            f'"kind":"put"}}'
        )
    fields = ",".join(f'"{name}":{_json(getattr(action, name))}' for name in action.__slots__)
    return "{" + fields + "}"


def _json(value: object) -> str:
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, Appointment):
        return value.dumps()
    if isinstance(value, Target):
        return _target_json(value)
    if isinstance(value, tuple):
        return "[" + ",".join(_json(item) for item in value) + "]"
    raise TypeError(f"cannot journal a {type(value).__name__}")


def from_json(text: str) -> Action:
    data = json.loads(text)
    kind = data.pop("kind")
    cls = _KINDS[kind]
    for key in ("appointment", "base", "expected"):
        if key in data:
            data[key] = Appointment.from_json(data[key])
    if "target" in data:
        data["target"] = Target(**data["target"])
    if "targets" in data:
        data["targets"] = tuple(Target(**t) for t in data["targets"])
    return cls(**data)  # type: ignore[no-any-return]


def _target_json(target: Target) -> str:
    return (
        f'{{"calendar":{quote(target.calendar)},"href":{quote(target.href)},'
        f'"etag":{quote(target.etag)},"delete":{_json(target.delete)},'
        f'"unlink":{_json(target.unlink)},"sequence":{int(target.sequence)}}}'
    )


_KINDS: dict[str, Any] = {
    "put": PutEvent,
    "delete": DeleteEvent,
    "write-back": WriteBack,
    "adopt": Adopt,
    "remember": Remember,
    "unlink": Unlink,
    "forget": Forget,
    "conflict": NoteConflict,
}
