"""``syncd status``: per sync, the last run, lag, counts, refusals, errors and conflicts.

Reads the state database only (no backend is contacted), so it is safe to run while the
daemon works and it never prints a secret: nothing it reads holds one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from syncd.commands import load
from syncd.runtime import open_store
from syncd.state.history import SyncStatus, sync_status


def as_dict(status: SyncStatus, now: datetime) -> dict[str, Any]:
    run = status.last_run
    lag = (now - status.last_success).total_seconds() if status.last_success else None
    return {
        "sync": status.sync,
        "last_run": None
        if run is None
        else {
            "status": run.status,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "counts": run.counts,
            "error": run.error,
        },
        "last_success": status.last_success.isoformat() if status.last_success else None,
        "lag_seconds": round(lag, 1) if lag is not None else None,
        "linked_events": status.links,
        "pending_actions": status.pending,
        "conflicts": status.conflicts,
        "bad_items": status.item_errors,
    }


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def render_text(data: dict[str, Any]) -> list[str]:
    run = data["last_run"]
    head = f"{data['sync']}: "
    if run is None:
        head += "never run"
    else:
        head += f"{run['status']}, last run {run['started_at'][:19].replace('T', ' ')} UTC"
    head += f"; last success {_ago(data['lag_seconds'])}"
    lines = [head, f"  {data['linked_events']} linked events, {data['pending_actions']} pending"]
    if run and run["status"] in ("failed", "refused"):
        lines.append(f"  {run['status']}: {run['error']}")
    if data["conflicts"]:
        lines.append(f"  recent conflicts ({len(data['conflicts'])}):")
        lines.extend(
            f"    {c['appointment']} in {c['calendar']}: {c['detail']} -> {c['resolution']}"
            for c in data["conflicts"]
        )
    if data["bad_items"]:
        lines.append(f"  bad items ({len(data['bad_items'])}):")
        lines.extend(f"    {e['item']}: {e['field']}: {e['message']}" for e in data["bad_items"])
    return lines


def main(config_path: str | None, as_json: bool) -> int:
    config = load(config_path)
    store = open_store(config)
    now = datetime.now(UTC)
    try:
        rows = [as_dict(sync_status(store.engine, s.name), now) for s in config.syncs]
    finally:
        store.close()
    if as_json:
        print(json.dumps({"syncs": rows}, indent=2))
    else:
        for row in rows:
            print("\n".join(render_text(row)))
        if not rows:
            print("no syncs configured")
    failing = [
        r for r in rows if r["last_run"] and r["last_run"]["status"] in ("failed", "refused")
    ]
    return 1 if failing else 0
