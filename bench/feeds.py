"""ICS feeds: render cost, and requests/s served by syncd and by Radicale (issue 5, acceptance 5).

    python -m bench.feeds [--events 10000] [--concurrency 4] [--requests 5000] [--seconds 8]
                          [--radicale-load collection|per-event] [--radicale-events N]
                          [--radicale-cache DIR | --no-radicale-cache] [--json PATH]

In one run:

1. Render: a memory provider seeded with N appointments is synced into a real SQLite state
   store; then the feed store's cold refresh (every event rendered), an idle refresh, and the
   refresh after one appointment moved (incremental: one event rendered again), plus the pure
   ``render_feed`` figures behind them. Feed size raw and gzipped.
2. syncd serving: the state store is served by syncd's own web app (``create_app`` under
   ``WebServer``, uvicorn on 127.0.0.1, a free port) in a child process, so the load client
   and the server do not share an interpreter; bounded load loops of ``--concurrency``
   httpx clients and of one client, for cached 200s (``Accept-Encoding: gzip``) and for
   conditional GETs (``If-None-Match``) that should be 304s.
3. Radicale serving the same events: a real Radicale on loopback, the feed's calendar PUT
   onto a collection URL in one request (per-event PUTs of fewer events if that fails, said
   in the output), then the same loops against a GET on the collection, which exports the
   whole calendar. The ratio syncd/Radicale per loop.

Every loop stops at ``--requests`` requests or ``--seconds`` seconds, whichever comes first
(requests in flight then finish, each within a timeout). Only loopback addresses are used. It
prints a table and writes JSON; it reports, it does not gate: the exit status is 0 whether or
not a target is met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.feeds_load import serve_figures
from bench.feeds_radicale import radicale_side
from bench.feeds_report import compare, table, targets
from bench.feeds_servers import serve, start_syncd
from bench.feeds_shop import (
    DEFAULT_CACHE,
    DEFAULT_JSON,
    FEED,
    SCHEMA,
    RenderCount,
    Shop,
    measure_refresh,
    measure_render,
    sha256_hex,
)
from bench.machine import environment, load_average, peak_rss_mib
from syncd.config import parse_config


def measure(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    n = args.events
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "events": n,
        "concurrency": args.concurrency,
        "max_requests": args.requests,
        "max_seconds": args.seconds,
        "environment": environment(),
    }
    counter = RenderCount()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-feeds-") as tmp:
        folder = Path(tmp)
        shop = Shop.create(folder, n)
        try:
            log(f"syncing {n:,} appointments into the state store ...")
            asyncio.run(shop.sync())
            log("rendering ...")
            with counter.installed():
                out["refresh"], feeds = measure_refresh(shop, counter)
                out["render"] = measure_render(shop, counter, args.repeat)
            rendered = feeds.rendered(FEED)
            if rendered is None:
                raise RuntimeError("bench: the feed store rendered no feed")
            out["feed"] = {
                "events": rendered.events,
                "body_bytes": len(rendered.body),
                "gzip_bytes": len(rendered.gzipped),
                "gzip_share": len(rendered.gzipped) / len(rendered.body),
                "etag": rendered.etag,
                "gzip_etag": rendered.gzip_etag,
            }
            body = rendered.body
        finally:
            asyncio.run(shop.close())

        syncd_dir, radicale_dir = folder / "syncd", folder / "radicale"
        syncd_dir.mkdir()
        radicale_dir.mkdir()
        log("starting syncd's web server ...")
        syncd = start_syncd(shop.config_path, syncd_dir)
        try:
            url = f"{syncd.url}/feeds/{shop.token}.ics"
            out["syncd"] = serve_figures(
                syncd, url, args.concurrency, args.requests, args.seconds, log
            )
            out["syncd"]["url"] = f"{syncd.url}/feeds/<token>.ics"  # no secret in the JSON
        finally:
            syncd.stop()
        out["syncd"]["served_is_rendered"] = out["syncd"]["body_sha256"] == sha256_hex(body)

        out["radicale"] = radicale_side(args, body, radicale_dir, log)

    syncd_uids = out["syncd"].pop("_uids")
    if "error" not in out["radicale"]:
        radicale_uids = out["radicale"].pop("_uids")
        out["radicale"]["same_events"] = radicale_uids == syncd_uids
        out["radicale"]["events_missing"] = len(syncd_uids - radicale_uids)
    out["comparison"] = compare(out)
    out["peak_rss_mib"] = peak_rss_mib()
    out["load_average_after"] = load_average()
    out["targets"] = targets(out)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.feeds", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument("--events", type=int, default=10_000, help="default: 10000")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="clients in the concurrent loops (default: 4)"
    )
    parser.add_argument(
        "--requests", type=int, default=5000, help="most requests in a loop (default: 5000)"
    )
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="longest a loop starts requests (default: 8)"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="warm render_feed runs to take the median of"
    )
    parser.add_argument(
        "--radicale-load",
        choices=("collection", "per-event"),
        default="collection",
        help="one PUT of the whole calendar (default), or one PUT per event",
    )
    parser.add_argument(
        "--radicale-events",
        type=int,
        default=0,
        metavar="N",
        help="load only the feed's first N events into Radicale (default: all; fewer is "
        "faster to load but not like for like)",
    )
    parser.add_argument(
        "--radicale-cache",
        type=Path,
        default=DEFAULT_CACHE,
        metavar="DIR",
        help="keep Radicale's loaded storage here for the next run "
        "(default: bench/results/radicale-storage)",
    )
    parser.add_argument(
        "--no-radicale-cache",
        action="store_true",
        help="load Radicale afresh and keep nothing",
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help="default: bench/results/feeds.json"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--serve", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is None:
        if args.events < 1:
            parser.error("--events must be at least 1")
        if args.concurrency < 1 or args.requests < 1 or args.repeat < 1:
            parser.error("--concurrency, --requests and --repeat must be at least 1")
        if not 0 < args.seconds <= 600:
            parser.error("--seconds must be more than 0 and at most 600")
        if args.radicale_events < 0:
            parser.error("--radicale-events must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve is not None:
        config_path, url_file = args.serve
        asyncio.run(serve(parse_config(config_path.read_text(), environ={}), url_file))
        return 0

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    out = measure(args, log)
    print(table(out))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0  # a benchmark reports; it does not gate


if __name__ == "__main__":
    sys.exit(main())
