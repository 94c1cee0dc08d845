"""Security checks that need no daemon: tokens, comparisons, XML, and the repository itself.

* Tokens. A feed token or a Recras webhook token (the only proof a request may read a feed
  or poke a sync) is refused under 22 urlsafe characters, 132 bits; every token syncd makes
  itself comes from ``secrets`` with at least 16 bytes.
* Comparisons. Every comparison of a presented token, key or password with the expected one
  is ``hmac.compare_digest``, and a feed lookup compares against every feed whatever matches:
  how long an answer takes says nothing about how much of a guess was right. A source scan
  finds no ``==`` between secrets in syncd.
* XML. Replies with a DTD (entity expansion, external entities) are refused by both XML
  readers syncd has: OnlineAfspraken's (defusedxml) and CalDAV's (a multistatus, through a
  proxy that adds one), and nothing of a referenced file is read.
* Store errors never show a PostgreSQL password.
* The repository holds nothing that looks like a real secret (see ``ALLOWED``).

The status page's doors (no password only on a loopback listener to local clients, basic
auth otherwise) are tested in tests/test_web.py, the unprivileged Docker image and systemd
unit in tests/test_daemon_deploy.py; tests/test_security.py runs the whole daemon.
"""

from __future__ import annotations

import ast
import asyncio
import hmac
import math
import re
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from defusedxml import DefusedXmlException

from syncd.calendars.caldav import CaldavCalendar
from syncd.config import parse_config
from syncd.errors import BackendError, ConfigError, StoreError
from syncd.providers.oa_envelope import parse_reply
from syncd.state.store import Store
from tests.daemon_kit import Harness, memory_config
from tests.servers import PASSWORD, USER, DavServer, Fault, FaultProxy

ROOT = Path(__file__).resolve().parent.parent
SYNCD = ROOT / "syncd"

# -- tokens --------------------------------------------------------------------------------------


def feed_config(token: str) -> str:
    return f"""
[providers.shop]
kind = "memory"
[providers.rooms]
kind = "recras"
base_url = "https://demo.recras.nl"
api_key = "recras-key-not-real"
webhook_token = "{token}"
[calendars.cal]
kind = "memory"
[[syncs]]
name = "shop"
provider = "shop"
calendars = ["cal"]
[feeds.all]
sync = "shop"
token = "{token}"
"""


@pytest.mark.parametrize("token", ["A" * 21, "Sh0rtT0k", "has spaces in it 123456", "é" * 30])
def test_a_token_under_128_bits_or_not_urlsafe_is_refused(token: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(feed_config(token), environ={})
    keys = " ".join(refused.value.problems)
    assert "feeds.all.token" in keys
    assert "providers.rooms.webhook_token" in keys
    assert token not in str(refused.value)  # a refused secret is not repeated either


def test_a_token_of_22_urlsafe_characters_is_taken() -> None:
    config = parse_config(feed_config("Zq8-vK2_Lm5Xw9Rt3Hy7Ab"), environ={})
    assert config.feeds["all"].token.get_secret_value() == "Zq8-vK2_Lm5Xw9Rt3Hy7Ab"


def test_tokens_syncd_makes_come_from_secrets_with_at_least_16_bytes() -> None:
    made = []
    for path in sorted(SYNCD.rglob("*.py")):
        if "sandbox" in path.parts:
            continue  # simulated providers' own credentials
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in ("secrets.token_urlsafe", "secrets.token_hex", "secrets.token_bytes"):
                made.append((path.name, node))
    assert made
    for where, call in made:
        size = call.args[0] if call.args else None
        if isinstance(size, ast.Constant) and isinstance(size.value, int) and size.value < 16:
            # Only a name may be short: the Agendize watch's user name beside its password.
            assert where == "ag_watch.py", f"{where}: {ast.unparse(call)} is under 128 bits"


# -- constant-time comparisons -----------------------------------------------------------------

# Credentials, not every "token": a CalDAV sync token is a bookmark anyone may compare.
SECRET_WORDS = re.compile(
    r"secret|password|api_?key|apikey|signature|webhook_token|path_token|oauth_token",
    re.IGNORECASE,
)


def equals_on_secrets(source: str) -> list[tuple[int, str]]:
    """``==``/``!=`` comparisons in ``source`` with a credential on a side (line, text)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            continue
        if any(isinstance(side, ast.Constant) for side in sides):
            continue  # "is it empty", "is it None": no secret is compared
        if any(isinstance(side, ast.Compare | ast.BoolOp | ast.UnaryOp) for side in sides):
            continue  # truth values compared: "given both or neither"
        text = ast.unparse(node)
        if SECRET_WORDS.search(text):
            found.append((node.lineno, text))
    return found


def test_no_secret_is_compared_with_equals_in_syncd() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for path in sorted(SYNCD.rglob("*.py"))
        if "sandbox" not in path.parts
        for line, text in equals_on_secrets(path.read_text())
    ]
    assert not found, "\n".join(found)
    leaky = "ok = given == config.api_key.get_secret_value()\nsame = a.password != b\n"
    assert [line for line, _ in equals_on_secrets(leaky)] == [1, 2]


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    seen: list[tuple[bytes, bytes]] = []
    real: Callable[[bytes, bytes], bool] = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return seen


@pytest.mark.anyio
async def test_a_feed_lookup_compares_every_feed_in_constant_time(
    tmp_path: Path, compared: list[tuple[bytes, bytes]]
) -> None:
    h = Harness.build(memory_config(tmp_path / "state.db"))
    try:
        feeds = h.context.feeds
        tokens = [h.config.feeds[name].token.get_secret_value() for name in feeds.names()]
        assert len(tokens) == 2
        for given in (tokens[0], tokens[1], "x" * 30):
            compared.clear()
            found = feeds.lookup(given)
            assert (found is not None) == (given in tokens)
            assert len(compared) == len(tokens), "a lookup stopped at the first match"
    finally:
        await h.close()


@pytest.mark.anyio
async def test_webhook_keys_and_the_status_password_are_compared_in_constant_time(
    tmp_path: Path, compared: list[tuple[bytes, bytes]]
) -> None:
    text = memory_config(tmp_path / "state.db").replace(
        'listen = "127.0.0.1:8765"',
        'listen = "127.0.0.1:8765"\nstatus_user = "admin"\nstatus_password = "pw-Tq5Lr8Xz"',
    )
    h = Harness.build(text)
    try:
        async with h.client() as client:
            answer = await client.get("/", auth=("admin", "guess"))
        assert answer.status_code == 401
        assert (b"guess", b"pw-Tq5Lr8Xz") in compared
    finally:
        await h.close()
    webhook_modules = [
        "providers/onlineafspraken_webhook.py",
        "providers/recras_webhook.py",
        "providers/ag_watch.py",
    ]
    for module in webhook_modules:
        assert "hmac.compare_digest" in (SYNCD / module).read_text(), module


# -- XML -----------------------------------------------------------------------------------------

LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE Response [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    b"<Response><Status><Status>success</Status></Status><Objects>&c;</Objects></Response>"
)


def external(target: Path) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE Response [<!ENTITY x SYSTEM "file://{target}">]>'
        "<Response><Status><Status>success</Status></Status><Objects>&x;</Objects></Response>"
    ).encode()


def test_onlineafspraken_replies_with_entities_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "secret.txt"
    target.write_text("TOPSECRET")
    for body in (LAUGHS, external(target)):
        for items in (None, "Appointment"):  # whole, and salvaging item by item
            with pytest.raises(DefusedXmlException):
                parse_reply(body, items)


@pytest.mark.slow
def test_a_caldav_reply_with_a_dtd_is_refused_and_nothing_is_read(
    radicale: DavServer, tmp_path: Path
) -> None:
    target = tmp_path / "secret.txt"
    target.write_text("TOPSECRET")
    url = radicale.new_collection()
    event = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        "DTSTART:20261123T100000Z\r\nDTEND:20261123T110000Z\r\nSUMMARY:&x;\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    radicale.put(f"{url}a.ics", event.replace("&x;", "hello"))
    path = httpx.URL(url).path
    body = (
        f'<?xml version="1.0"?><!DOCTYPE multistatus [<!ENTITY x SYSTEM "file://{target}">]>'
        "<multistatus xmlns='DAV:' xmlns:C='urn:ietf:params:xml:ns:caldav'><response>"
        f'<href>{path}a.ics</href><propstat><prop><getetag>"1"</getetag>'
        f"<C:calendar-data>{event}</C:calendar-data></prop>"
        "<status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"
    ).encode()
    proxy = FaultProxy(radicale.base_url)
    proxy.inject(Fault(method="REPORT", status=207, body=body))
    calendar = CaldavCalendar("team", url=proxy.at(url), username=USER, password=PASSWORD)

    async def read() -> None:
        try:
            await calendar.changes(None)
        finally:
            await calendar.aclose()

    try:
        with pytest.raises(BackendError) as refused:
            asyncio.run(read())
    finally:
        proxy.close()
    assert refused.value.backend == "team"
    assert "DTD or entities" in str(refused.value)
    assert "TOPSECRET" not in str(refused.value)


# -- the state store ---------------------------------------------------------------------------


def test_a_store_error_never_shows_a_postgresql_password() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError) as refused:
        Store("postgresql+psycopg://syncd:pw-Hv7Qs2Lk9@127.0.0.1:9/syncd", busy_timeout=1)
    assert "pw-Hv7Qs2Lk9" not in str(refused.value)
    assert "***" in str(refused.value)


# -- the repository ------------------------------------------------------------------------------

# Values that look random but are test data, each with why it is not a secret.
ALLOWED = {
    # tests/test_cli.py and tests/test_config.py: a feed token of the right shape, made up.
    "Jc0rV6Q2m9yTqXb3LkE5aWfH1uN8sD4p",
}
# Made-up secrets in tests announce themselves with one of these words.
FAKE_WORDS = re.compile(
    r"key|secret|token|pass|pw|fake|test|example|fuzz|wrong|distinctive|sandbox|hook|tok",
    re.IGNORECASE,
)
KNOWN_FORMATS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|github_pat_\w{22,}"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "Stripe key": re.compile(r"\b[rs]k_live_[0-9A-Za-z]{20,}"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\."),
}
RANDOM_LOOKING = re.compile(r"[A-Za-z0-9+/_=-]{24,}")
HEX_ASSIGNED = re.compile(
    r"(?:key|secret|token|password)\w*['\"]?\s*[:=]\s*['\"]([0-9a-fA-F]{32,})['\"]", re.IGNORECASE
)


def entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def random_looking(token: str) -> bool:
    """Mixed case and digits with the entropy of random base64, and no word saying it is
    made up: how a real key or password pasted into a file looks."""
    classes = (any(c.isupper() for c in token), any(c.islower() for c in token))
    digits = sum(c.isdigit() for c in token)
    return all(classes) and digits >= 2 and entropy(token) >= 4.0 and not FAKE_WORDS.search(token)


def repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_the_repository_holds_no_real_looking_secret() -> None:
    files = repository_files()
    assert len(files) > 50
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        where = path.relative_to(ROOT)
        for kind, pattern in KNOWN_FORMATS.items():
            found += [f"{where}: {kind}" for _ in pattern.finditer(text)]
        for match in RANDOM_LOOKING.finditer(text):
            token = match.group(0)
            if token not in ALLOWED and random_looking(token):
                found.append(f"{where}: random-looking {token[:6]}...")
        found += [f"{where}: hex secret {m[1][:6]}..." for m in HEX_ASSIGNED.finditer(text)]
    assert not found, "\n".join(found)


def test_the_secret_scan_would_see_a_real_looking_secret() -> None:
    assert random_looking("Jc0rV6Q2m9yTqXb3LkE5aWfH1uN8sD4p")
    assert not random_looking("oakey-Qz81Vt5Mw2")  # says what it is
    assert not random_looking("syncd_items_total_by_change_kind")
    header = "-----BEGIN " + "OPENSSH PRIVATE KEY-----"  # in two parts: this file is scanned
    assert KNOWN_FORMATS["private key"].search(header)
    assert HEX_ASSIGNED.search('api_secret = "' + "9f" * 20 + '"')
