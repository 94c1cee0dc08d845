"""Carrying out journaled busy actions at the provider, one at a time, each committed at once.

The hard case is an add: providers hand out the block's id only in their answer, so a crash
after the provider made the block and before its id was stored would leave a block nobody
tracks. The defence, in order:

1. The plan is journaled before anything is applied (``pending``).
2. Right before ``add_busy`` the entry is marked ``started``; right after, the returned id is
   stored with the entry marked ``done``, in one transaction.
3. On resume, a ``started`` add may or may not have reached the provider. A provider that can
   look blocks up (``FindsBusy``) is asked for blocks equal to this one: one found is adopted,
   any more are removed, none found means the add never happened and it is made now.
   A provider that cannot look up is asked to add again, and a warning names the block:
   OnlineAfspraken adopts its own placeholder by the marker it writes (no duplicate); a
   provider that adds anew, like the memory one, may then hold one untracked block.

Removes are safe to repeat (a block already gone counts as removed), so they need nothing more.
A transient or auth error stops the run: the rest stays pending and runs first next cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import structlog

from syncd.busy.plan import BusyAction, BusyLink, RemoveBusy, block_hash
from syncd.errors import AuthError, TransientError
from syncd.model import BusyBlock
from syncd.providers.base import Provider, Scope
from syncd.state.busy import BusyLinks
from syncd.state.store import Store

log = structlog.get_logger("syncd.busy")


@runtime_checkable
class FindsBusy(Protocol):
    """A provider that can list the blocks it holds for one block (same key and times)."""

    async def find_busy(self, scope: Scope, block: BusyBlock) -> Sequence[str]: ...


@dataclass(slots=True)
class BusyOutcome:
    """What applying busy actions did; ``stopped`` holds the error that ended it early."""

    applied: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (block key, message)
    stopped: Exception | None = None


@dataclass(slots=True)
class BusyApplier:
    store: Store
    sync: str
    provider: Provider
    scope: Scope

    @property
    def links(self) -> BusyLinks:
        return BusyLinks(self.store)

    async def run(self, entries: Iterable[tuple[int, BusyAction, bool]]) -> BusyOutcome:
        """Apply ``(entry id, action, started)`` in order, committing each one as it ends."""
        outcome = BusyOutcome()
        for entry_id, action, started in entries:
            try:
                await self._apply(entry_id, action, started)
            except (TransientError, AuthError) as err:
                outcome.stopped = err
                break
            except Exception as err:  # one refused block must not stop the others
                message = f"{type(err).__name__}: {err}"
                log.warning("busy action failed", sync=self.sync, block=action.key, error=message)
                self.store.fail(entry_id, message)
                outcome.failed.append((action.key, message))
                continue
            outcome.applied += 1
        return outcome

    async def _apply(self, entry_id: int, action: BusyAction, started: bool) -> None:
        if isinstance(action, RemoveBusy):
            if not action.forget:
                await self.provider.remove_busy(self.scope, action.native_id)
            self.links.done(self.sync, entry_id, action.key, None)
            return
        block = action.block
        native_id = await self._recover(block) if started else None
        if native_id is None:
            self.links.start(entry_id)
            native_id = await self.provider.add_busy(self.scope, block)
        link = BusyLink(
            action.key, block.calendar, action.href, native_id, block_hash(block), block.end
        )
        self.links.done(self.sync, entry_id, action.key, link)

    async def _recover(self, block: BusyBlock) -> str | None:
        """The id of the block an interrupted add made, or None when it made none (or when
        the provider cannot tell, in which case the add is repeated)."""
        if not isinstance(self.provider, FindsBusy):
            log.warning(
                "busy add interrupted; adding again, the provider may keep an earlier copy",
                sync=self.sync,
                block=block.key,
            )
            return None
        found = list(await self.provider.find_busy(self.scope, block))
        for extra in found[1:]:
            await self.provider.remove_busy(self.scope, extra)
        return found[0] if found else None
