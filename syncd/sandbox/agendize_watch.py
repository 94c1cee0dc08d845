"""Watch deliveries from the Agendize sandbox: queued on each change, POSTed to the address.

Every change queues one delivery per live watch (``SandboxState.changed``), rendered at that
moment. ``deliver`` sends the queue in order with the watch's basic-auth credentials; a
delivery is sent twice when ``faults.repeat_deliveries`` (counted) or ``faults.repeat_rate``
(a share, drawn from the state's seeded random source) says so, because the real service
delivers at least once, not exactly once. Tests call ``deliver`` themselves (with a client
into syncd's ASGI app, say) and may reorder ``state.outbox`` first; a served sandbox runs
``run_sender`` beside the app.

The answer to each delivery is logged in ``state.delivered`` as ``(event, status)``, 0 for no
answer at all. A delivery that fails is not retried: syncd's periodic poll is the safety net.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx

from syncd.sandbox.agendize_state import SandboxState, Watch


async def deliver(state: SandboxState, http: httpx.AsyncClient) -> int:
    """Send every queued delivery of a live watch; returns how many POSTs were made."""
    sent = 0
    while state.outbox:
        watch_id, payload = state.outbox.pop(0)
        watch = state.watches.get(watch_id)
        if watch is None or not state.watch_alive(watch):
            continue
        times = 1
        if state.faults.repeat_deliveries > 0:
            state.faults.repeat_deliveries -= 1
            times = 2
        elif state.faults.repeat_rate and state.rng.random() < state.faults.repeat_rate:
            times = 2
        for _ in range(times):
            state.delivered.append((str(payload.get("event")), await _post(http, watch, payload)))
            sent += 1
    return sent


async def _post(http: httpx.AsyncClient, watch: Watch, payload: dict[str, Any]) -> int:
    try:
        answer = await http.post(
            watch.address, json=payload, auth=(watch.username, watch.password), timeout=10
        )
    except httpx.HTTPError:
        return 0
    return answer.status_code


async def run_sender(state: SandboxState, interval: float = 0.1) -> None:
    """Deliver whatever is queued, every ``interval`` seconds, until cancelled."""
    async with httpx.AsyncClient() as http:
        while True:
            await deliver(state, http)
            await anyio.sleep(interval)
