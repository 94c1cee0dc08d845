"""Radicale holding the same events as the feed: loading them (one collection PUT, per-event
PUTs as a fallback), a cache of the loaded storage, and the load loops against it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.feeds_load import serve_figures
from bench.feeds_servers import Server, http_client, publish, start_radicale
from bench.feeds_shop import (
    FALLBACK_EVENTS,
    FEED,
    LOAD_TIMEOUT,
    LOAD_TIMEOUT_PER_EVENT,
    RADICALE_USER,
    calendar_of,
    sha256_hex,
    split_calendar,
)


@dataclass
class RadicaleLoad:
    method: str  # "collection PUT" or "per-event PUT"
    events: int
    seconds: float
    collection: str
    note: str = ""
    cached: bool = False  # storage restored from an earlier run's load; ``seconds`` is that one's

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "events": self.events,
            "seconds": self.seconds,
            "ms_per_event": self.seconds * 1000 / self.events if self.events else None,
            "note": self.note,
            "cached": self.cached,
        }


def load_radicale(server: Server, body: bytes, events: int, method: str) -> RadicaleLoad:
    """Put the first ``events`` events of the feed into a Radicale calendar collection.

    ``collection``: one PUT of the whole VCALENDAR onto the collection URL, which Radicale
    takes as "replace the collection with this calendar" (and creates it). When that is
    refused, or with ``per-event``: MKCALENDAR, then one PUT per event (of at most
    ``FALLBACK_EVENTS`` after a refused collection PUT), each carrying the VTIMEZONEs.
    """
    collection = f"{server.url}/{RADICALE_USER}/{FEED}/"
    headers = {"Content-Type": "text/calendar; charset=utf-8"}
    note = ""
    timeout = max(LOAD_TIMEOUT, events * LOAD_TIMEOUT_PER_EVENT)
    with http_client(auth=server.auth, timeout=timeout) as client:
        if method == "collection":
            begin = time.perf_counter()
            answer = client.put(collection, content=calendar_of(body, events), headers=headers)
            seconds = time.perf_counter() - begin
            if answer.status_code in (200, 201, 204):
                return RadicaleLoad("collection PUT", events, seconds, collection)
            events = min(events, FALLBACK_EVENTS)
            note = (
                f"the collection PUT was answered {answer.status_code}; "
                f"fell back to one PUT per event, for the first {events:,} events only"
            )
            client.delete(collection)
        head, zones, vevents = split_calendar(body)
        begin = time.perf_counter()
        made = client.request("MKCALENDAR", collection)
        if made.status_code != 201:
            raise RuntimeError(f"radicale MKCALENDAR answered {made.status_code}: {made.text}")
        for i, event in enumerate(vevents[:events]):
            item = head + zones + event + b"END:VCALENDAR\r\n"
            answer = client.put(f"{collection}{i:06d}.ics", content=item, headers=headers)
            if answer.status_code not in (201, 204):
                raise RuntimeError(f"radicale PUT answered {answer.status_code}: {answer.text}")
        seconds = time.perf_counter() - begin
    return RadicaleLoad("per-event PUT", events, seconds, collection, note)


@dataclass
class StorageCache:
    """Radicale's storage after a load, kept as one ``.tar.gz`` for the next run.

    Radicale parses every event it is given with vobject, which rebuilds the event's
    VTIMEZONE on the way (some 15 to 30 ms an event): 10,000 events take minutes to load and
    a few seconds to serve. The feed is byte-identical between runs of the same code (fixed
    dates, seeded data), so the storage a load produced is kept, keyed by the SHA-256 of what
    was PUT, the load method and Radicale's version, and restored instead of loading again.
    Only a full, clean load is kept; ``--no-radicale-cache`` loads afresh.
    """

    folder: Path

    @staticmethod
    def key(calendar: bytes, method: str) -> str:
        version = importlib.metadata.version("radicale")
        return sha256_hex(calendar + f"\0{method}\0radicale {version}".encode())

    def restore(self, key: str, storage: Path) -> dict[str, Any] | None:
        """The cached load's figures after unpacking its storage to ``storage``, or None."""
        try:
            meta = json.loads((self.folder / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        archive = self.folder / "storage.tar.gz"
        if not isinstance(meta, dict) or meta.get("key") != key or not archive.is_file():
            return None
        with tarfile.open(archive, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(storage.parent, filter="data")
            else:  # Python before 3.11.4: our own archive, no filter to ask for
                tar.extractall(storage.parent)
        return meta

    def save(self, key: str, load: RadicaleLoad, storage: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / "storage.tar.gz.partial"
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            tar.add(storage, arcname=storage.name)
        meta = {"key": key, "method": load.method, "events": load.events, "seconds": load.seconds}
        (self.folder / "meta.json").unlink(missing_ok=True)
        partial.replace(self.folder / "storage.tar.gz")
        publish(self.folder / "meta.json", json.dumps(meta, indent=2) + "\n")


def radicale_side(
    args: argparse.Namespace, body: bytes, folder: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Radicale with the feed's first ``--radicale-events`` events, and its load loops."""
    wanted = min(args.radicale_events or args.events, args.events)
    storage = folder / "storage"
    cache = None if args.no_radicale_cache else StorageCache(args.radicale_cache)
    key = StorageCache.key(calendar_of(body, wanted), args.radicale_load)
    cached = cache.restore(key, storage) if cache is not None else None
    if cached is not None:
        log(f"starting Radicale with the storage an earlier run loaded ({wanted:,} events) ...")
    else:
        log(f"starting Radicale and loading {wanted:,} events ({args.radicale_load}) ...")
    try:
        radicale = start_radicale(folder)
    except RuntimeError as err:
        return {"error": str(err)}
    try:
        collection = f"{radicale.url}/{RADICALE_USER}/{FEED}/"
        if cached is not None:
            load = RadicaleLoad(
                str(cached["method"]),
                int(cached["events"]),
                float(cached["seconds"]),
                collection,
                cached=True,
            )
        else:
            load = load_radicale(radicale, body, wanted, args.radicale_load)
            log(f"  loaded in {load.seconds:.1f} s ({load.method})")
        out = serve_figures(
            radicale, load.collection, args.concurrency, args.requests, args.seconds, log
        )
    except (RuntimeError, httpx.HTTPError) as err:
        return {"error": f"{type(err).__name__}: {err}"}
    finally:
        radicale.stop()
    out["load"] = load.to_json()
    out["url"] = load.collection
    out["radicale_version"] = importlib.metadata.version("radicale")
    clean = not load.note and load.events == wanted == out["events_served"]
    if cache is not None and not load.cached and clean:
        cache.save(key, load, storage)
    return out
