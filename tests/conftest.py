"""Shared fixtures. Async tests use AnyIO's pytest plugin (AnyIO ships with httpx)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.state.store import Store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite state store in the test's own directory (test_store.py has its own)."""
    opened = Store(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()


# -- real CalDAV servers ----------------------------------------------------------------------
# Radicale, Xandikos and a fault-injecting proxy, started only by tests that ask for them
# (fixtures `radicale`, `xandikos`, `dav_server`, `proxy`); see tests/servers.py.
# tests/fuzz_report.py prints how many cases the fuzz tests ran, at the end of every run.
pytest_plugins = ["tests.servers", "tests.fuzz_report"]
