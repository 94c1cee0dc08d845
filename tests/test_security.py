"""Secrets stay secret, end to end (DESIGN.md 6.7; issue 9, acceptance item 4).

The main test gives every secret syncd knows a distinctive value -- the OnlineAfspraken
api_key and api_secret, the Agendize api_key and token, the Recras api_key and webhook token,
the Qmatic client_secret, the CalDAV password, the status page password, a feed token -- and
serves each provider's sandbox with them. It then runs what a person runs (``syncd check``,
``sync``, ``sync --dry-run``, ``status``, ``status --json``, ``feeds``) and the daemon
(``syncd run``: /healthz, /metrics, the status page, a feed, webhooks right and wrong), with
one account failing on purpose (a wrong api_secret), because error messages are where
secrets leak, and at debug level, where every request is logged. Everything produced is
searched for every secret, as written, URL-quoted and base64-encoded (as in a Basic
``Authorization`` header): every line of output, every HTTP answer, and every file the
runs left (the state database with its WAL, the lock file).

Two places show a feed token on purpose: ``syncd feeds`` and the status page, to someone
who may read the config. Nothing else may.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from syncd.sandbox import agendize as agendize_sandbox
from syncd.sandbox import onlineafspraken as oa_sandbox
from syncd.sandbox import qmatic as qmatic_sandbox
from syncd.sandbox import recras as recras_sandbox
from syncd.sandbox.agendize_state import SandboxState as AgendizeState
from syncd.sandbox.onlineafspraken_state import SandboxState as OAState
from syncd.sandbox.qmatic_state import QmaticState
from syncd.sandbox.recras_state import RecrasState
from tests.daemon_kit import syncd_command
from tests.fault_kit import served
from tests.servers import USER, DavServer, free_port

pytestmark = pytest.mark.slow

SECRETS = {
    "OA_KEY": "oakey-Qz81Vt5Mw2",
    "OA_SECRET": "oasecret-Jk47Rr0Lp6Hd",
    "OA_WRONG_SECRET": "oawrong-Bn63Xs2Cy9",
    "AG_KEY": "agkey-Pw38Zt6Hq1",
    "AG_TOKEN": "agtoken-Ud92Mx4Ke7",
    "RECRAS_KEY": "recraskey-Ta15Gv8Ns3",
    "RECRAS_HOOK": "recrashook-Wc27Lh5Yq9Xb3F",
    "QMATIC_SECRET": "qmsecret-Ez64Rk1Vd8",
    "CALDAV_PASSWORD": "davpass-Fm39Sj7Tw4",
    "STATUS_PASSWORD": "statuspw-Io52Nb8Zr6",
    "FEED_TOKEN": "feedtok-Xa71Pq3Hk9Lm2Ws5",
}
SHOWN_FEED = ("feeds", "status page")  # where the feed token belongs


def variants(secret: str) -> set[str]:
    """How a secret can appear: as is, URL-quoted, base64 (alone, or as user:secret)."""
    found = {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}
    for user in (USER, "admin"):
        found.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return found


def config_text(folder: Path, urls: dict[str, str], dav: DavServer, port: int) -> str:
    calendars = "".join(
        f"""
[calendars.{name}]
kind = "caldav"
url = "{dav.new_collection()}"
username = "{USER}"
password = "${{CALDAV_PASSWORD}}"
"""
        for name in ("team", "clinic", "rooms", "office")
    )
    return f"""
[store]
url = "sqlite:///{folder / "state.db"}"

[server]
listen = "127.0.0.1:{port}"
status_user = "admin"
status_password = "${{STATUS_PASSWORD}}"

[log]
level = "debug"
format = "json"

[providers.salon]
kind = "onlineafspraken"
base_url = "{urls["oa"]}/APIREST"
api_key = "${{OA_KEY}}"
api_secret = "${{OA_SECRET}}"

[providers.wrong]
kind = "onlineafspraken"
base_url = "{urls["oa"]}/APIREST"
api_key = "${{OA_KEY}}"
api_secret = "${{OA_WRONG_SECRET}}"

[providers.clinic]
kind = "agendize"
base_url = "{urls["agendize"]}/api/2.1/scheduling"
company_id = "48213"
api_key = "${{AG_KEY}}"
token = "${{AG_TOKEN}}"

[providers.rooms]
kind = "recras"
base_url = "{urls["recras"]}"
api_key = "${{RECRAS_KEY}}"
webhook_token = "${{RECRAS_HOOK}}"

[providers.office]
kind = "qmatic"
base_url = "{urls["qmatic"]}"
account = "acme"
tenant_id = "tenant-1"
client_id = "syncd"
client_secret = "${{QMATIC_SECRET}}"
track = ["SANDBOX0000001", "SANDBOX0000002", "SANDBOX0000003"]
{calendars}
[calendars.scratch]
kind = "memory"

[[syncs]]
name = "salon"
provider = "salon"
scope = {{ agenda = "1" }}
calendars = ["team"]

[[syncs]]
name = "wrong"
provider = "wrong"
scope = {{ agenda = "1" }}
calendars = ["scratch"]

[[syncs]]
name = "clinic"
provider = "clinic"
calendars = ["clinic"]

[[syncs]]
name = "rooms"
provider = "rooms"
calendars = ["rooms"]

[[syncs]]
name = "office"
provider = "office"
calendars = ["office"]

[feeds.salon]
sync = "salon"
token = "${{FEED_TOKEN}}"
"""


@pytest.fixture
def sandboxes() -> Iterator[dict[str, str]]:
    oa = OAState(api_key=SECRETS["OA_KEY"], api_secret=SECRETS["OA_SECRET"])
    oa.seed(6, seed=2)
    agendize = AgendizeState(api_key=SECRETS["AG_KEY"], token=SECRETS["AG_TOKEN"])
    agendize.seed(4, seed=2)
    recras = RecrasState(api_key=SECRETS["RECRAS_KEY"])
    recras.seed(4)
    qmatic = QmaticState(
        account="acme",
        tenant_id="tenant-1",
        client_id="syncd",
        client_secret=SECRETS["QMATIC_SECRET"],
    )
    qmatic.seed(4)
    apps = {
        "oa": oa_sandbox.create_app(oa),
        "agendize": agendize_sandbox.create_app(agendize),
        "recras": recras_sandbox.create_app(recras),
        "qmatic": qmatic_sandbox.create_app(qmatic),
    }
    with ExitStack() as stack:
        yield {name: stack.enter_context(served(app)).url for name, app in apps.items()}


def run(folder: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        syncd_command(*args, "-c", str(folder / "config.toml")),
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return f"$ syncd {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"


def daemon(folder: Path, env: dict[str, str], port: int, feed_token: str) -> dict[str, str]:
    """``syncd run`` for a few scheduled runs; what it answered and wrote, by what."""
    log = folder / "daemon.log"
    produced: dict[str, str] = {}
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as sink:
        process = subprocess.Popen(
            syncd_command("run", "-c", str(folder / "config.toml")),
            cwd=folder,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        time.sleep(3)  # the first scheduled runs, failures included

        def get(name: str, path: str, **options: object) -> httpx.Response:
            answer = httpx.get(f"{url}{path}", timeout=10, **options)  # type: ignore[arg-type]
            produced[name] = f"{answer.status_code} {answer.headers}\n{answer.text}"
            return answer

        get("healthz", "/healthz")
        get("metrics", "/metrics")
        assert get("status page without a password", "/").status_code == 401
        wrong = ("admin", "not-the-password")
        assert get("status page, wrong password", "/", auth=wrong).status_code == 401
        page = get("status page", "/", auth=("admin", env["STATUS_PASSWORD"]))
        assert page.status_code == 200
        assert "salon" in page.text
        assert get("feed", f"/feeds/{feed_token}.ics").status_code == 200
        assert get("proxied status page", "/", headers={"X-Forwarded-For": "203.0.113.9"})
        hook = "/hooks/onlineafspraken/salon?entity=appointment&id=1001&apiKey="
        assert get("webhook, wrong key", hook + "guess").status_code == 403
        assert get("webhook", hook + env["OA_KEY"]).status_code == 200
        recras = f"/hooks/recras/rooms/{env['RECRAS_HOOK']}"
        produced["recras webhook"] = httpx.post(f"{url}{recras}", content=b"{", timeout=10).text
        time.sleep(1)  # the webhook's run
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    produced["daemon log"] = log.read_text()
    return produced


def test_no_secret_reaches_output_errors_status_metrics_pages_feeds_or_files(
    tmp_path: Path, sandboxes: dict[str, str], radicale: DavServer
) -> None:
    port = free_port()
    config = config_text(tmp_path, sandboxes, radicale, port)
    (tmp_path / "config.toml").write_text(config)
    env = {**os.environ, **SECRETS, "PYTHONUNBUFFERED": "1"}

    produced: dict[str, str] = {}
    for args in (
        ("check",),
        ("sync",),
        ("sync", "--dry-run"),
        ("sync", "--full"),
        ("status",),
        ("status", "--json"),
        ("feeds",),
    ):
        produced[" ".join(args)] = run(tmp_path, env, *args)
    for sync in ("salon", "clinic", "rooms", "office"):
        assert f"{sync}: " in produced["sync"]
        assert f"{sync}: FAILED" not in produced["sync"], produced["sync"]
    assert "wrong: FAILED: ApiAuthError" in produced["sync"]  # the refused signature
    produced |= daemon(tmp_path, env, port, SECRETS["FEED_TOKEN"])
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and path.name != "config.toml":
            produced[f"file {path.relative_to(tmp_path)}"] = path.read_bytes().decode("latin-1")

    leaks = []
    for name, secret in SECRETS.items():
        for form in variants(secret):
            for where, text in produced.items():
                if name == "FEED_TOKEN" and where in SHOWN_FEED:
                    continue
                if form in text:
                    leaks.append(f"{name} ({form}) in {where}")
    assert not leaks, "\n".join(leaks)
    assert SECRETS["FEED_TOKEN"] in produced["feeds"]
    # Not a search of nothing: debug logs name every request, with the key redacted.
    assert "api_key=***" in produced["daemon log"]
    assert "apiKey=***" in produced["daemon log"] or "apiKey" not in produced["daemon log"]
    assert any(path.startswith("file state.db") for path in produced)
    assert "Traceback" not in produced["daemon log"]
