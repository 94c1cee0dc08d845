"""Bounded load loops against a feed URL: concurrent httpx clients, a request or time limit,
latency percentiles, statuses and the server's CPU per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.feeds_servers import Server, http_client
from bench.feeds_shop import REQUEST_TIMEOUT, VEVENT, uids


@dataclass(frozen=True)
class Loop:
    key: str
    label: str
    conditional: bool  # send If-None-Match with the server's current ETag
    single: bool  # one sequential client instead of --concurrency


LOOPS = (
    Loop("get_200", "200, gzip", conditional=False, single=False),
    Loop("get_200_sequential", "200, gzip, 1 client", conditional=False, single=True),
    Loop("get_304", "If-None-Match", conditional=True, single=False),
    Loop("get_304_sequential", "If-None-Match, 1 client", conditional=True, single=True),
)


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    encodings: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    bytes_200: int = 0
    started: int = 0


async def _worker(
    url: str,
    headers: dict[str, str],
    auth: tuple[str, str] | None,
    tally: Tally,
    limit: int,
    deadline: float,
) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(
        auth=auth, timeout=REQUEST_TIMEOUT, limits=limits, trust_env=False
    ) as client:
        while tally.started < limit and time.monotonic() < deadline:
            tally.started += 1
            begin = time.perf_counter()
            try:
                # raw bytes, not decoded: the client must not spend its time un-gzipping
                async with client.stream("GET", url, headers=headers) as answer:
                    size = 0
                    async for chunk in answer.aiter_raw():
                        size += len(chunk)
            except httpx.HTTPError as err:
                tally.errors[type(err).__name__] += 1
                continue
            tally.latencies.append(time.perf_counter() - begin)
            tally.statuses[answer.status_code] += 1
            tally.encodings[answer.headers.get("content-encoding", "identity")] += 1
            if answer.status_code == 200:
                tally.bytes_200 += size


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def _run_loop(
    server: Server, url: str, headers: dict[str, str], clients: int, limit: int, seconds: float
) -> dict[str, Any]:
    tally = Tally()
    server_cpu = server.cpu_s()
    cpu, wall = time.process_time(), time.perf_counter()
    deadline = time.monotonic() + seconds
    workers = (_worker(url, headers, server.auth, tally, limit, deadline) for _ in range(clients))
    await asyncio.gather(*workers)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server_after = server.cpu_s()
    done = sum(tally.statuses.values())
    spent = None if server_after is None or server_cpu is None else server_after - server_cpu
    ordered = sorted(tally.latencies)
    ok = tally.statuses.get(200, 0)
    idle = None
    if clients == 1 and done and spent is not None:
        # one request at a time: what neither process spent on a CPU (kernel, scheduling,
        # and stalls such as Nagle's algorithm waiting for a delayed ACK)
        idle = max(0.0, wall - cpu - spent) * 1000 / done
    return {
        "clients": clients,
        "requests": done,
        "stopped_by": "count" if tally.started >= limit else "time",
        "seconds": wall,
        "requests_per_s": done / wall if wall > 0 else None,
        "statuses": {str(code): n for code, n in sorted(tally.statuses.items())},
        "content_encodings": dict(sorted(tally.encodings.items())),
        "errors": dict(sorted(tally.errors.items())),
        "bytes_per_200": tally.bytes_200 / ok if ok else None,
        "latency_ms": {
            "p50": _ms(_percentile(ordered, 0.5)),
            "p90": _ms(_percentile(ordered, 0.9)),
            "p99": _ms(_percentile(ordered, 0.99)),
            "max": _ms(ordered[-1] if ordered else None),
        },
        "server_cpu_s": spent,
        "server_cpu_ms_per_request": spent * 1000 / done if spent is not None and done else None,
        "client_cpu_s": cpu,
        "client_cpu_share": cpu / wall if wall > 0 else None,
        "idle_ms_per_request": idle,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def serve_figures(
    server: Server,
    url: str,
    concurrency: int,
    limit: int,
    seconds: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The server's validators, whether it answers a conditional GET with 304, and every
    load loop against ``url``."""
    gzip_only = {"Accept-Encoding": "gzip"}
    with http_client(auth=server.auth) as client:
        for _ in range(2):  # warm up: caches, imports, the first connection
            first = client.get(url, headers=gzip_only)
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        etag = first.headers.get("etag", "")
        probe = client.get(url, headers={**gzip_only, "If-None-Match": etag}) if etag else None
    if first.status_code != 200 or plain.status_code != 200:
        raise RuntimeError(f"{server.name}: GET {first.status_code}/{plain.status_code}")
    out: dict[str, Any] = {
        "etag": etag,
        "content_encoding": first.headers.get("content-encoding", "identity"),
        "body_bytes": len(plain.content),
        "gzip_bytes": int(first.headers.get("content-length") or 0) or None,
        "events_served": len(VEVENT.findall(plain.content)),
        "conditional_get": probe is not None and probe.status_code == 304,
        "conditional_probe_status": probe.status_code if probe is not None else None,
        "body_sha256": hashlib.sha256(plain.content).hexdigest(),
        "loops": {},
    }
    out["_uids"] = uids(plain.content)
    for loop in LOOPS:
        headers = dict(gzip_only)
        if loop.conditional and etag:
            headers["If-None-Match"] = etag
        clients = 1 if loop.single else concurrency
        log(f"  {server.name}: {loop.label} ({clients} client{'s' if clients > 1 else ''})")
        figures = asyncio.run(_run_loop(server, url, headers, clients, limit, seconds))
        out["loops"][loop.key] = figures
        if not server.alive():
            raise RuntimeError(f"{server.name} exited during the load loop:\n{server.tail()}")
    return out
