"""``syncd check``: is the config valid, and does every account and calendar answer?

Each backend is tried with its own cheap authenticated call (``check()``), with a time
limit, and reported by its config key. A kind this version cannot talk to yet is probed
for reachability only, and says so. Messages name URLs and keys, never credentials.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import httpx

from syncd.backends import Unavailable, build_calendar, build_provider, endpoint
from syncd.calendars.base import Calendar
from syncd.commands import load
from syncd.config import CalendarConfig, Config, ProviderConfig
from syncd.errors import StoreError
from syncd.providers.base import Provider
from syncd.runtime import open_store

TIMEOUT = 15.0


def safe_url(url: str) -> str:
    """``url`` without a password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def _probe(url: str) -> str:
    """'' when something answers at ``url`` at all, else why not."""
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            await client.head(url)
    except httpx.HTTPError as err:
        return f"cannot reach {url}: {type(err).__name__} {err}".strip()
    return ""


async def check_backend(key: str, config: ProviderConfig | CalendarConfig) -> str:
    """'' when the backend works, else one line saying what is wrong."""
    url = endpoint(config)
    table, name = key.split(".", 1)
    backend: Provider | Calendar
    try:
        if table == "calendars":
            backend = build_calendar(name, config)  # type: ignore[arg-type]
        else:
            backend = build_provider(name, config)  # type: ignore[arg-type]
    except Unavailable:
        problem = await _probe(url) if url.startswith("http") else ""
        return problem or f"reachable at {url}; signing in to {config.kind} needs a newer syncd"
    try:
        await asyncio.wait_for(backend.check(), TIMEOUT)
    except TimeoutError:
        return f"no answer from {url} within {TIMEOUT:.0f}s"
    except Exception as err:
        return f"{url}: {type(err).__name__}: {err}"
    finally:
        await backend.aclose()
    return ""


async def main(config_path: str | None) -> int:
    config = load(config_path)
    print(
        f"config: ok ({len(config.providers)} providers, {len(config.calendars)} calendars, "
        f"{len(config.syncs)} syncs, {len(config.feeds)} feeds)"
    )
    problems = 0
    try:
        open_store(config).close()
        print(f"store: ok {safe_url(config.store.url)}")
    except StoreError as err:
        problems += 1
        print(f"store: FAILED {err}")
    problems += await _check_all(config)
    print("all checks passed" if not problems else f"{problems} problem(s) found")
    return 1 if problems else 0


async def _check_all(config: Config) -> int:
    jobs: list[tuple[str, ProviderConfig | CalendarConfig]] = [
        *((f"providers.{n}", c) for n, c in config.providers.items()),
        *((f"calendars.{n}", c) for n, c in config.calendars.items()),
    ]
    answers = await asyncio.gather(*(check_backend(key, cfg) for key, cfg in jobs))
    problems = 0
    for (key, cfg), problem in zip(jobs, answers, strict=True):
        if problem:
            problems += 1
            print(f"{key} ({cfg.kind}): FAILED {problem}")
        else:
            print(f"{key} ({cfg.kind}): ok")
    return problems
