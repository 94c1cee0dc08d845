"""Config loading: defaults, every kind of mistake as one clear line, secrets kept secret."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, get_args

import pydantic
import pytest
from pydantic_core import PydanticCustomError

from syncd.config import (
    AgendizeConfig,
    CalDAVCalendarConfig,
    CalendarConfig,
    Config,
    MemoryProviderConfig,
    OnlineAfsprakenConfig,
    ProviderConfig,
    RecrasConfig,
    default_config_path,
    embedded_default_config,
    load_config,
    model_classes,
    parse_config,
    parse_duration,
    secret_field_names,
)
from syncd.errors import ConfigError
from syncd.reconcile.policy import CalendarDelete, ConflictPolicy, Direction, Privacy

T = TypeVar("T")
EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
OA_KEY = "oa-key-Zq8vK2-distinctive"
OA_SECRET = "oa-secret-Pw93xL-distinctive"
FEED_TOKEN = "Jc0rV6Q2m9yTqXb3LkE5aWfH1uN8sD4p"
ENV = {"OA_KEY": OA_KEY, "FEED_TOKEN": FEED_TOKEN}

VALID = """\
[providers.demo]
kind = "memory"
seed = 3

[providers.salon]
kind = "onlineafspraken"
api_key = "${OA_KEY}"
api_secret_file = "oa-secret"

[calendars.demo-calendar]
kind = "memory"

[[syncs]]
name = "demo"
provider = "demo"
calendars = ["demo-calendar"]
direction = "two-way"

[[syncs]]
name = "salon"
provider = "salon"
calendars = ["demo-calendar"]
interval = "5m"

[feeds.public]
sync = "demo"
token = "${FEED_TOKEN}"
"""


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    (tmp_path / "oa-secret").write_text(OA_SECRET + "\n")
    return tmp_path


def problems(text: str, base_dir: Path, env: dict[str, str] = ENV) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "test.toml", base_dir=base_dir, environ=env)
    assert caught.value.source == "test.toml"
    return caught.value.problems


def of_kind(value: object, kind: type[T]) -> T:
    assert isinstance(value, kind)
    return value


def edit(old: str, new: str, text: str = VALID) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_valid_config_gets_defaults(base_dir: Path) -> None:
    config = parse_config(VALID, base_dir=base_dir, environ=ENV)
    assert config.store.url == "sqlite:///syncd.db"
    assert config.store.busy_timeout == timedelta(seconds=5)
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8765)
    assert (config.log.level, config.log.format) == ("info", "auto")
    demo, salon = config.syncs
    assert salon.interval == timedelta(minutes=5)
    assert demo.interval == timedelta(minutes=1)
    assert demo.window_future == timedelta(days=365)
    assert salon.direction is Direction.ONE_WAY
    assert salon.conflict is ConflictPolicy.PROVIDER_WINS
    assert salon.calendar_delete is CalendarDelete.RESTORE
    assert config.feeds["public"].privacy is Privacy.FULL
    assert str(config.providers["salon"].timezone) == "Europe/Amsterdam"
    assert config.sync("salon") is salon
    with pytest.raises(KeyError):
        config.sync("nope")


def test_policy_carries_the_sync_choices(base_dir: Path) -> None:
    config = parse_config(VALID, base_dir=base_dir, environ=ENV)
    policy = config.sync("demo").policy(allow_mass_delete=True)
    assert (policy.sync, policy.account, policy.calendars) == ("demo", "demo", ("demo-calendar",))
    assert policy.two_way
    assert policy.allow_mass_delete
    assert not config.sync("salon").policy().allow_mass_delete


def test_config_is_frozen(base_dir: Path) -> None:
    config = parse_config(VALID, base_dir=base_dir, environ=ENV)
    with pytest.raises(pydantic.ValidationError):
        config.syncs[0].enabled = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90), ("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2d", 172800)],
)
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_json_dump_reads_like_the_file_and_hides_secrets(base_dir: Path) -> None:
    text = edit('interval = "5m"', 'interval = "1h30m"')
    dumped = parse_config(text, base_dir=base_dir, environ=ENV).model_dump(mode="json")
    assert dumped["syncs"][1]["interval"] == "1h30m"
    assert dumped["syncs"][1]["window_future"] == "365d"
    assert dumped["providers"]["salon"]["timezone"] == "Europe/Amsterdam"
    assert OA_KEY not in str(dumped)
    assert OA_SECRET not in str(dumped)


@pytest.mark.parametrize("text", ["", "5 minutes", "1.5h", "-5", "m", True, 1.5, None])
def test_bad_durations(text: object) -> None:
    with pytest.raises(PydanticCustomError, match="must be"):
        parse_duration(text)


MISTAKES = [
    pytest.param(
        edit("seed = 3", "seed = 3\ntimzone = 'UTC'"),
        "providers.demo.timzone: unknown key (did you mean 'timezone'?)",
        id="typo-key",
    ),
    pytest.param(
        edit("seed = 3", 'seed = "many"'),
        "providers.demo.seed: must be a whole number (got 'many')",
        id="wrong-type",
    ),
    pytest.param(
        edit('interval = "5m"', 'conflict = "provider-win"'),
        "syncs[1].conflict: must be one of provider-wins, calendar-wins, newest-wins "
        "(got 'provider-win')",
        id="bad-enum",
    ),
    pytest.param(
        edit('kind = "memory"\nseed', 'kind = "acuity"\nseed'),
        "providers.demo.kind: unknown kind; known kinds: memory, onlineafspraken, agendize, "
        "recras, qmatic (got 'acuity')",
        id="unknown-kind",
    ),
    pytest.param(
        edit('calendars = ["demo-calendar"]\ninterval', 'calendars = ["work"]\ninterval'),
        "syncs[1].calendars[0]: unknown calendar 'work' (known: demo-calendar)",
        id="unknown-calendar",
    ),
    pytest.param(
        edit('provider = "salon"', 'provider = "saloon"'),
        "syncs[1].provider: unknown provider 'saloon' (known: demo, salon)",
        id="unknown-provider",
    ),
    pytest.param(
        edit('name = "salon"', 'name = "demo"'),
        "syncs[1].name: duplicate sync name 'demo' (syncs[0])",
        id="duplicate-sync",
    ),
    pytest.param(
        edit('interval = "5m"', 'interval = "5 minutes"'),
        'syncs[1].interval: must be a duration: whole seconds, or like "90s", "5m", "1h", '
        '"2d", "1h30m" (got \'5 minutes\')',
        id="bad-duration",
    ),
    pytest.param(
        edit("seed = 3", 'seed = 3\ntimezone = "Europe/Amsterdm"'),
        'providers.demo.timezone: must be an IANA time zone name such as "Europe/Amsterdam" '
        "(got 'Europe/Amsterdm')",
        id="bad-timezone",
    ),
    pytest.param(
        edit("${OA_KEY}", "${OA_KEY_TYPO}"),
        "providers.salon.api_key: environment variable OA_KEY_TYPO is not set",
        id="unset-env-var",
    ),
    pytest.param(
        edit('api_secret_file = "oa-secret"', 'api_secret_file = "oa-secret"\napi_secret = "x"'),
        "providers.salon.api_secret_file: give api_secret or api_secret_file, not both",
        id="secret-and-file",
    ),
    pytest.param(
        edit('api_secret_file = "oa-secret"', 'api_secret_file = "missing"'),
        "providers.salon.api_secret_file: cannot read {base}/missing: No such file or directory",
        id="unreadable-secret-file",
    ),
    pytest.param(
        edit('api_secret_file = "oa-secret"\n', ""),
        "providers.salon.api_secret: required (or give api_secret_file)",
        id="missing-secret",
    ),
    pytest.param(
        edit("${FEED_TOKEN}", "abcdefghij"),
        "feeds.public.token: too short (10 characters): a feed token needs at least 22 urlsafe "
        "base64 characters (128 bits); make one with "
        "python -c 'import secrets; print(secrets.token_urlsafe())'",
        id="short-feed-token",
    ),
    pytest.param(
        edit('sync = "demo"', 'sync = "demo-sync"'),
        "feeds.public.sync: unknown sync 'demo-sync' (known: demo, salon)",
        id="feed-unknown-sync",
    ),
    pytest.param(
        edit('interval = "5m"', 'title = "{title} ({phone})"'),
        "syncs[1].title: unknown field {phone}; allowed: {title} {customer} {staff} "
        "{resource} {location}",
        id="bad-title-field",
    ),
    pytest.param(
        edit('interval = "5m"', 'calendar_delete = "cancel"'),
        'syncs[1].calendar_delete: "cancel" needs direction = "two-way": a one-way sync never '
        'writes to the provider; use "restore" or "ignore"',
        id="cancel-one-way",
    ),
    pytest.param(
        edit('interval = "5m"', 'conflict = "calendar-wins"'),
        'syncs[1].conflict: "calendar-wins" needs direction = "two-way": a one-way sync never '
        "writes calendar edits back to the provider, so the calendar cannot win",
        id="calendar-wins-one-way",
    ),
    pytest.param(
        edit('interval = "5m"', "max_delete_share = 1.5"),
        "syncs[1].max_delete_share: must be at most 1.0 (got 1.5)",
        id="share-out-of-range",
    ),
    pytest.param(
        edit('name = "salon"', 'name = "Salon Sync"'),
        "syncs[1].name: must use only lower-case letters, digits, '-' and '_' (got 'Salon Sync')",
        id="bad-sync-name",
    ),
    pytest.param(
        "[logging]\nlevel = 'info'\n" + VALID,
        "logging: unknown key (did you mean 'log'?)",
        id="unknown-section",
    ),
    pytest.param(
        edit('kind = "memory"\n\n[[syncs]]', 'kind = "caldav"\n\n[[syncs]]'),
        "calendars.demo-calendar.url: required: give url, or server_url + calendar",
        id="caldav-without-address",
    ),
    pytest.param(
        '[store]\nurl = "mysql://syncd:hunter2-pw@db/syncd"\n' + VALID,
        'store.url: must start with "sqlite:///" or "postgresql://" (got scheme \'mysql\')',
        id="unknown-database",
    ),
    pytest.param(
        edit("[feeds.public]", "[feeds.public"),
        "line 25, column 14: TOML syntax error: Expected ']' at the end of a table declaration",
        id="toml-syntax",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MISTAKES)
def test_each_mistake_is_one_clear_line(text: str, expected: str, base_dir: Path) -> None:
    assert problems(text, base_dir) == [expected.replace("{base}", str(base_dir))]


def test_newest_wins_is_allowed_both_ways(base_dir: Path) -> None:
    text = edit('interval = "5m"', 'conflict = "newest-wins"')
    text = edit('direction = "two-way"', 'direction = "two-way"\nconflict = "newest-wins"', text)
    config = parse_config(text, base_dir=base_dir, environ=ENV)
    assert {s.conflict for s in config.syncs} == {ConflictPolicy.NEWEST_WINS}


def test_several_problems_are_reported_at_once_in_file_order(base_dir: Path) -> None:
    text = edit("seed = 3", 'seed = "many"')
    text = edit("${OA_KEY}", "${NOPE}", text)
    text = edit('provider = "salon"', 'provider = "saloon"', text)
    text = edit('interval = "5m"', 'interval = "soon"\nenabled = "maybe"', text)
    text = edit("${FEED_TOKEN}", "short-token", text)
    found = problems(text, base_dir)
    assert [line.split(":")[0] for line in found] == [
        "providers.demo.seed",
        "providers.salon.api_key",
        "syncs[1].provider",
        "syncs[1].interval",
        "syncs[1].enabled",
        "feeds.public.token",
    ]
    assert all("\n" not in line for line in found)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('interval = "5m"', 'interval = "${OA_KEY}"'),  # an env secret in a duration
        ("seed = 3", 'seed = "${OA_KEY}"'),  # ... in a number
        ('api_key = "${OA_KEY}"', 'api_kye = "${OA_KEY}"'),  # ... under a misspelt key
        ('api_key = "${OA_KEY}"', 'api_key = ["${OA_KEY}"]'),  # a secret of the wrong type
        ('api_key = "${OA_KEY}"', "api_key = 4815162342"),  # ... an inline number
        ('api_key = "${OA_KEY}"', 'api_key_file = "oa-secret"\napi_key = "${OA_KEY}"'),
        ('provider = "salon"', 'provider = "${OA_KEY}"'),  # a secret as a reference
        ("seed = 3", 'seed = 3\ntimezone = "${OA_KEY}"'),
        ('sync = "demo"', 'sync = "demo"\nstaff = ["oa-secret-Pw93xL-distinctive"]'),
        (
            "[feeds.public]",
            '[store]\nurl = "sqlite://u:oa-key-Zq8vK2-distinctive@x"\n[feeds.public]',
        ),
    ],
)
def test_no_message_contains_a_secret(old: str, new: str, base_dir: Path) -> None:
    text = edit(old, new) + '\n[providers.spare]\nkind = "recras"\napi_key_file = "oa-secret"\n'
    text = edit('"onlineafspraken"', '"onlineafspraken"\ntimeout = "${OA_KEY}"', text)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, base_dir=base_dir, environ=ENV)
    shown = "\n".join([str(caught.value), repr(caught.value.args), *caught.value.problems])
    assert len(caught.value.problems) >= 2  # the spare account's mistake and the edit's
    for secret in (OA_KEY, OA_SECRET, "4815162342"):
        assert secret not in shown


def test_feed_token_message_never_shows_the_token(base_dir: Path) -> None:
    (line,) = problems(edit("${FEED_TOKEN}", "Tok3n-with-bad-chars!!"), base_dir)
    assert line.startswith("feeds.public.token: must be urlsafe base64")
    assert "Tok3n" not in line


def test_env_expansion_and_escape(base_dir: Path) -> None:
    text = edit("seed = 3", 'seed = "${SEED}"')
    text = edit('interval = "5m"', 'title = "$${customer} {title}"', text)
    text = edit('title = "$${customer} {title}"', 'title = "{title}"', text)
    config = parse_config(text, base_dir=base_dir, environ={**ENV, "SEED": "7"})
    assert of_kind(config.providers["demo"], MemoryProviderConfig).seed == 7
    text = '[store]\nurl = "sqlite:///$${HOME}.db"\n' + VALID
    config = parse_config(text, base_dir=base_dir, environ=ENV)
    assert config.store.url == "sqlite:///${HOME}.db"


def test_secrets_lists_every_secret(base_dir: Path) -> None:
    text = '[store]\nurl = "postgresql://syncd:${DB_PW}@db/syncd"\n' + VALID
    config = parse_config(text, base_dir=base_dir, environ={**ENV, "DB_PW": "db-pw-77"})
    assert sorted(config.secrets()) == sorted([OA_KEY, OA_SECRET, FEED_TOKEN, "db-pw-77"])
    assert OA_SECRET not in repr(config)


def test_other_backend_shapes(base_dir: Path) -> None:
    (base_dir / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    text = (
        VALID
        + """
[providers.clinic]
kind = "agendize"
company_id = 42
oauth_token = "${OA_KEY}"

[providers.rooms]
kind = "recras"
instance = "demo"
api_key = "${OA_KEY}"

[calendars.team]
kind = "caldav"
server_url = "https://dav.example.org/"
calendar = "Bookings"
create = true
username = "syncd"
ca_bundle = "ca.pem"
"""
    )
    config = parse_config(text, base_dir=base_dir, environ=ENV)
    assert of_kind(config.providers["clinic"], AgendizeConfig).company_id == "42"
    assert of_kind(config.providers["rooms"], RecrasConfig).url == "https://demo.recras.nl"
    assert of_kind(config.calendars["team"], CalDAVCalendarConfig).ca_bundle == base_dir / "ca.pem"


def test_load_config_reads_secret_files_next_to_it(base_dir: Path) -> None:
    config_file = base_dir / "syncd.toml"
    config_file.write_text(VALID)
    config = load_config(str(config_file), environ=ENV)
    salon = of_kind(config.providers["salon"], OnlineAfsprakenConfig)
    assert salon.api_secret.get_secret_value() == OA_SECRET


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda p: None, "file not found (pass -c PATH or set SYNCD_CONFIG)"),
        (lambda p: p.mkdir(), "is a directory, not a config file"),
        (lambda p: p.write_bytes(b"name = '\xff'"), "not UTF-8 text (bad byte at offset 8)"),
    ],
)
def test_unreadable_config_file(setup: Any, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    setup(path)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert (caught.value.source, caught.value.problems) == (str(path), [expected])
    assert str(caught.value) == f"{path}: 1 problem(s)\n  {expected}"


def test_default_config_path() -> None:
    assert default_config_path({}) == Path("config.toml")
    assert default_config_path({"SYNCD_CONFIG": "/etc/syncd/a.toml"}) == Path("/etc/syncd/a.toml")


def test_embedded_default_config_runs_the_demo() -> None:
    config = embedded_default_config()
    assert of_kind(config.providers["demo"], MemoryProviderConfig).seed > 0
    assert config.calendars["demo-calendar"].kind == "memory"
    (sync,) = config.syncs
    assert (sync.name, sync.provider, sync.calendars) == ("demo", "demo", ("demo-calendar",))
    assert sync.direction is Direction.TWO_WAY
    assert config.store.url == "sqlite:///syncd-demo.db"
    assert config.server.listen == "127.0.0.1:8765"


# --- the example file ------------------------------------------------------------------

EXAMPLE_ENV = {
    name: f"example-{name.lower()}-value"
    for name in re.findall(r"\$\{(\w+)\}", EXAMPLE.read_text())
} | {"CLINIC_FEED_TOKEN": FEED_TOKEN}
KEY_LINE = re.compile(r"^#?\s*([a-z_]+)\s*=")


@pytest.fixture
def example(tmp_path: Path) -> Config:
    shutil.copy(EXAMPLE, tmp_path / "config.toml")
    for name in re.findall(r'_file = "([^"]+)"', EXAMPLE.read_text()):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"file-secret-{name}\n")
    return load_config(tmp_path / "config.toml", environ=EXAMPLE_ENV)


def test_example_loads_and_shows_each_kind(example: Config) -> None:
    kinds = {account.kind for account in example.providers.values()}
    assert kinds == {model.model_fields["kind"].default for model in _members(ProviderConfig)}
    assert "caldav" in {calendar.kind for calendar in example.calendars.values()}
    assert {sync.direction for sync in example.syncs} == set(Direction)
    assert example.feeds


def test_example_keeps_secrets_out_of_the_file() -> None:
    for line in EXAMPLE.read_text().splitlines():
        match = KEY_LINE.match(line)
        if match and match[1] in secret_field_names():
            assert re.search(r'= "\$\{\w+\}"$', line), line


def test_example_documents_every_field() -> None:
    blocks = _example_blocks()
    undocumented = []
    for model in model_classes():
        if model is Config:
            present = {header.split(".")[0] for header, _ in blocks}
            undocumented += [f"[{name}]" for name in model.model_fields if name not in present]
            continue
        lines = [line for owner, block in _owned_blocks(blocks) if owner is model for line in block]
        for name in model.model_fields:
            documented = [i for i, line in enumerate(lines) if _key_of(line) == name]
            if not documented or not _has_comment_before(lines, documented[0]):
                undocumented.append(f"{model.__name__}.{name}")
    assert undocumented == []


def _members(union: object) -> tuple[Any, ...]:
    return get_args(get_args(union)[0])


def _example_blocks() -> list[tuple[str, list[str]]]:
    blocks: list[tuple[str, list[str]]] = [("", [])]
    for line in EXAMPLE.read_text().splitlines():
        header = re.match(r"^\[\[?([^\]]+)\]\]?", line)
        if header:
            blocks.append((header[1], []))
        else:
            blocks[-1][1].append(line)
    return blocks


def _owned_blocks(blocks: list[tuple[str, list[str]]]) -> list[tuple[type, list[str]]]:
    by_kind = {
        section: {m.model_fields["kind"].default: m for m in _members(union)}
        for section, union in (("providers", ProviderConfig), ("calendars", CalendarConfig))
    }
    top = {name: field.annotation for name, field in Config.model_fields.items()}
    owned = []
    for header, lines in blocks:
        section = header.split(".")[0]
        if section in by_kind:
            kind = next(x.split('"')[1] for x in lines if x.startswith("kind = "))
            owned.append((by_kind[section][kind], lines))
        elif section == "syncs":
            owned.append((get_args(top["syncs"])[0], lines))
        elif section == "feeds":
            owned.append((get_args(top["feeds"])[1], lines))
        elif section:
            owned.append((top[section], lines))
    return owned


def _key_of(line: str) -> str | None:
    match = KEY_LINE.match(line)
    if not match:
        return None
    key = match[1]
    return key[:-5] if key.endswith("_file") and key[:-5] in secret_field_names() else key


def _has_comment_before(lines: list[str], index: int) -> bool:
    """A key is documented when its paragraph has a prose comment at or above it."""
    for line in reversed(lines[: index + 1]):
        if not line.strip():
            return False
        if (line.startswith("#") and _key_of(line) is None) or " # " in line:
            return True
    return False
