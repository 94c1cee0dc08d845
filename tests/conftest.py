"""Shared fixtures. Async tests use AnyIO's pytest plugin (AnyIO ships with httpx)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
