"""``syncd sync``: one cycle of each selected sync now, and what it changed."""

from __future__ import annotations

from collections.abc import Sequence

from syncd.commands import load
from syncd.reconcile.cycle import Result, run_cycle
from syncd.runtime import Runtime, open_store, selected

WORDS = {
    "create": "created",
    "update": "updated",
    "delete": "deleted",
    "write-back": "written back",
    "conflict": "conflicts",
}


def summary(result: Result) -> str:
    counts = result.plan.counts()
    parts = [f"{counts.get(key, 0)} {word}" for key, word in WORDS.items()]
    failed = len(result.outcome.failed)
    if failed:
        parts.append(f"{failed} failed")
    return ", ".join(parts) + f" ({result.requests} requests)"


def report(result: Result, dry_run: bool) -> None:
    if result.plan.refused:
        print(f"{result.sync}: REFUSED, nothing changed: mass-delete guard: {result.plan.refused}")
    elif dry_run:
        print(f"{result.sync} (dry run, nothing changed): {summary(result)}")
        for line in result.lines:
            print(f"  {line}")
    else:
        print(f"{result.sync}: {summary(result)}")
    if result.busy.refused:
        # The appointments above went ahead; only the busy blocks wait for a person.
        print(
            f"{result.sync}: busy time REFUSED, no busy block changed: "
            f"mass-delete guard: {result.busy.refused}"
        )
    if result.status == "refused":
        print(f"  if this is intended: syncd sync --allow-mass-delete {result.sync}")
    for item, field, message in result.plan.bad_items:
        print(f"  skipped bad item {item}: {field}: {message}")
    for native_id, message in result.outcome.failed:
        print(f"  could not apply {native_id}: {message}")


async def main(
    config_path: str | None,
    names: Sequence[str],
    dry_run: bool = False,
    full: bool = False,
    allow_mass_delete: bool = False,
) -> int:
    config = load(config_path)
    selected(config, names)  # unknown names are a user error before anything is built
    store = open_store(config)
    runtime = Runtime.build(config, names, allow_mass_delete)
    failures = 0
    try:
        for sync in runtime.syncs:
            try:
                result = await run_cycle(store, sync, full=full, dry_run=dry_run)
            except Exception as err:  # reported per sync; the others still run
                failures += 1
                print(f"{sync.name}: FAILED: {type(err).__name__}: {err}")
                continue
            report(result, dry_run)
            failures += result.status == "refused" or bool(result.outcome.failed)
    finally:
        await runtime.aclose()
        store.close()
    return 1 if failures else 0
