"""``[providers.NAME] kind = "onlineafspraken"``: from the config file to a working provider.

``syncd sync`` and ``syncd check`` build providers through ``syncd.backends``; these tests go
the same way. The ``check`` test serves the sandbox on loopback over real HTTP, because the
provider built from a config makes its own HTTP client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from syncd.backends import build_provider
from syncd.commands.check import check_backend
from syncd.config import Config, parse_config
from syncd.config.backends import OnlineAfsprakenConfig
from syncd.errors import ConfigError
from syncd.providers.onlineafspraken import OnlineAfsprakenProvider
from syncd.sandbox.onlineafspraken import create_app
from syncd.sandbox.onlineafspraken_state import SandboxState
from tests.servers import free_port

KEY, SECRET = "cfg-key-1234", "cfg-secret-5678"
ENV = {"OA_KEY": KEY, "OA_SECRET": SECRET}


def config_text(base_url: str = "https://agenda.onlineafspraken.nl/APIREST", **extra: Any) -> str:
    lines = [
        "[providers.salon]",
        'kind = "onlineafspraken"',
        f'base_url = "{base_url}"',
        'api_key = "${OA_KEY}"',
        'api_secret = "${OA_SECRET}"',
    ]
    for key, value in extra.items():
        shown = str(value).lower() if isinstance(value, bool) else repr(value)
        lines.append(f"{key} = {shown}")
    return "\n".join(lines) + "\n"


def account(config: Config) -> OnlineAfsprakenConfig:
    found = config.providers["salon"]
    assert isinstance(found, OnlineAfsprakenConfig)
    return found


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "test.toml", environ=ENV)
    return caught.value.problems


def test_defaults_send_no_confirmations_and_title_by_type_and_customer() -> None:
    oa = account(parse_config(config_text(), environ=ENV))
    assert (oa.confirmations, oa.title_template, oa.private) == (0, "{type} - {customer}", False)
    assert (oa.watch_created, oa.overlap) == (False, timedelta(minutes=2))
    assert (oa.busy_appointment_type, oa.busy_customer, oa.cancel_remarks) == ("", "", "")


@pytest.mark.anyio
async def test_build_provider_passes_every_option_on() -> None:
    text = config_text(
        timeout="7s",
        title_template="{customer_short} ({type})",
        private=True,
        watch_created=True,
        overlap="5m",
        confirmations=3,
        cancel_remarks="via agenda",
        busy_appointment_type=90,
        busy_customer=91,
    )
    provider = build_provider("salon", account(parse_config(text, environ=ENV)))
    try:
        assert isinstance(provider, OnlineAfsprakenProvider)
        assert provider.api.base_url == "https://agenda.onlineafspraken.nl/APIREST"
        assert provider.api._http.timeout == httpx.Timeout(7.0)
        assert (provider.watch_created, provider.overlap) == (True, timedelta(minutes=5))
        assert (provider.writes.confirmations, provider.writes.remarks) == (3, "via agenda")
        assert (provider.blocks.appointment_type, provider.blocks.customer) == ("90", "91")
        assert provider.directory.private is True
        assert SECRET not in repr(provider.api)
        assert SECRET not in repr(provider)
    finally:
        await provider.aclose()


def test_unknown_title_field_is_named() -> None:
    found = problems(config_text(title_template="{title} for {client}"))
    assert len(found) == 1
    assert found[0].startswith("providers.salon.title_template:")
    assert "client" in found[0]


def test_confirmations_outside_0_to_3_are_refused() -> None:
    assert [p.split(":")[0] for p in problems(config_text(confirmations=4))] == [
        "providers.salon.confirmations"
    ]


def test_busy_type_without_customer_is_refused() -> None:
    found = problems(config_text(busy_appointment_type=90))
    assert len(found) == 1
    assert found[0].startswith("providers.salon.busy_customer:")


# -- syncd check over real HTTP --------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[str]:
    """The sandbox on a loopback port; its API URL."""
    state = SandboxState(api_key=KEY, api_secret=SECRET)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "sandbox did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/APIREST"
    server.should_exit = True
    thread.join(10)


@pytest.mark.slow
@pytest.mark.anyio
async def test_check_signs_in_and_reports_a_wrong_secret_without_it(served: str) -> None:
    good = account(parse_config(config_text(served), environ=ENV))
    assert await check_backend("providers.salon", good) == ""
    wrong = {"OA_KEY": KEY, "OA_SECRET": "not-the-secret"}
    bad = account(parse_config(config_text(served), environ=wrong))
    message = await check_backend("providers.salon", bad)
    assert "AuthError" in message, message
    assert "signature" in message, message
    assert "not-the-secret" not in message
    assert KEY not in message
