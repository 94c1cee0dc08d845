"""Busy links as stored, busy blocks as wanted -> the actions that make the provider agree.

Pure, like ``syncd.reconcile.plan``: no I/O, the same inputs give the same actions. A block
is compared with its link by ``block_hash`` (its times and label, in UTC):

    new key                       AddBusy
    key no longer wanted          RemoveBusy; ``forget`` only, when the block ended before the
                                  window (the provider's past is left as it was)
    key wanted, hash or href new  RemoveBusy, then AddBusy: providers cannot move a block

Actions are plain data written to the journal before anything happens (``to_json``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from syncd.model import UTC, BusyBlock
from syncd.providers.base import Window


@dataclass(frozen=True, slots=True)
class BusyLink:
    """A block syncd placed at the provider: its key, source href, provider id and hash."""

    key: str
    calendar: str
    href: str
    native_id: str
    block_hash: str
    end: datetime


@dataclass(frozen=True, slots=True)
class AddBusy:
    """Place ``block`` (from the source event at ``href``) at the provider."""

    block: BusyBlock
    href: str
    kind: Literal["busy-add"] = "busy-add"

    @property
    def key(self) -> str:
        return self.block.key


@dataclass(frozen=True, slots=True)
class RemoveBusy:
    """Take the block ``native_id`` away; with ``forget`` only drop the link."""

    key: str
    native_id: str
    forget: bool = False
    kind: Literal["busy-remove"] = "busy-remove"


BusyAction = AddBusy | RemoveBusy


def block_hash(block: BusyBlock) -> str:
    """What the provider shows of a block: its instants and label. Not its source href."""
    raw = f"{block.start.astimezone(UTC).isoformat()}|{block.end.astimezone(UTC).isoformat()}"
    return hashlib.sha256(f"{raw}|{block.label}".encode()).hexdigest()


def plan_busy(
    stored: Mapping[str, BusyLink],
    wanted: Mapping[str, tuple[str, BusyBlock]],
    gone: Iterable[str],
    window: Window,
) -> list[BusyAction]:
    """Actions for the keys in ``wanted`` (key -> (href, block)) and ``gone``.

    ``stored`` must hold the link of every key in either; ``gone`` names keys whose source
    occurrence is no longer there. Removals come first, so a provider that refuses
    overlapping blocks never sees the old and the new block of a move at once.
    """
    removals: list[BusyAction] = []
    additions: list[BusyAction] = []
    for key in sorted(set(gone) - set(wanted)):
        link = stored.get(key)
        if link is not None:
            forget = link.end <= window.start
            removals.append(RemoveBusy(key, link.native_id, forget=forget))
    for key in sorted(wanted):
        href, block = wanted[key]
        link = stored.get(key)
        if link is not None:
            if link.block_hash == block_hash(block) and link.href == href:
                continue
            removals.append(RemoveBusy(key, link.native_id))
        additions.append(AddBusy(block, href))
    return removals + additions


def describe(action: BusyAction) -> str:
    """One line for dry-run output and logs; names the occurrence, never its text."""
    if isinstance(action, AddBusy):
        return f"add busy block {action.key} at {action.block.start.isoformat()}"
    if action.forget:
        return f"forget past busy block {action.key}"
    return f"remove busy block {action.key}"


def to_json(action: BusyAction) -> str:
    data: dict[str, Any] = {"kind": action.kind}
    if isinstance(action, AddBusy):
        block = action.block
        data |= {
            "href": action.href,
            "calendar": block.calendar,
            "uid": block.uid,
            "start": block.start.isoformat(),
            "end": block.end.isoformat(),
            "recurrence_id": block.recurrence_id,
            "label": block.label,
        }
    else:
        data |= {"key": action.key, "native_id": action.native_id, "forget": action.forget}
    return json.dumps(data, separators=(",", ":"))


def from_json(text: str) -> BusyAction:
    data = json.loads(text)
    if data["kind"] == "busy-remove":
        return RemoveBusy(data["key"], data["native_id"], forget=data["forget"])
    block = BusyBlock(
        calendar=data["calendar"],
        uid=data["uid"],
        start=datetime.fromisoformat(data["start"]),
        end=datetime.fromisoformat(data["end"]),
        recurrence_id=data["recurrence_id"],
        label=data["label"],
    )
    return AddBusy(block, data["href"])
