"""Shared fixtures. Async tests use AnyIO's pytest plugin (AnyIO ships with httpx)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- real CalDAV servers ----------------------------------------------------------------------
# Radicale, Xandikos and a fault-injecting proxy, started only by tests that ask for them
# (fixtures `radicale`, `xandikos`, `dav_server`, `proxy`); see tests/servers.py.
# tests/fuzz_report.py prints how many cases the fuzz tests ran, at the end of every run.
pytest_plugins = ["tests.servers", "tests.fuzz_report"]
