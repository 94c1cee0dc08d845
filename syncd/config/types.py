"""Value types shared by the config models: durations, time zones, URLs, names, templates.

Each type is an ``Annotated`` alias whose validator raises ``problem()``: a pydantic error
carrying a finished, human message (and optionally the sub-key it concerns), so the loader
can print it as-is. No message built here ever echoes a value that may be secret.
"""

from __future__ import annotations

import re
import string
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    SecretStr,
)
from pydantic_core import PydanticCustomError

#: The error type of every message written here; the loader prints its message unchanged.
PROBLEM = "syncd_problem"

#: Fields a ``title`` template may use, as in ``title = "{customer}: {title}"``.
TITLE_FIELDS = ("title", "customer", "staff", "resource", "location")

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def problem(message: str, key: str | None = None, quote: bool = True) -> PydanticCustomError:
    """A validation error with a finished message; ``key`` names the sub-key it is about.

    ``quote=False`` stops the loader from quoting the input back, for messages that already
    say it or inputs that may hold a secret. The message goes through the context, not the
    template, so braces in it (``{title}``) are never taken for placeholders.
    """
    context: dict[str, Any] = {"message": message, "quote": quote}
    if key is not None:
        context["key"] = key
    return PydanticCustomError(PROBLEM, "{message}", context)


class Section(BaseModel):
    """Base of every config model: immutable once loaded, and no key goes unnoticed."""

    model_config = ConfigDict(frozen=True, extra="forbid")


_DURATION_PART = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_HINT = 'must be a duration: whole seconds, or like "90s", "5m", "1h", "2d", "1h30m"'


def parse_duration(value: object) -> timedelta:
    """Read ``90``, ``"90"``, ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"`` as a ``timedelta``.

    Bools are refused although Python counts them as ints: ``timeout = true`` is a mistake.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text.isdigit():
            seconds = int(text)
        elif text and _DURATION_PART.sub("", text) == "":
            seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise problem(_DURATION_HINT)
    else:
        raise problem(_DURATION_HINT)
    if seconds < 0:
        raise problem("must not be negative")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest config spelling of ``value``: ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"``."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in sorted(_UNIT_SECONDS.items(), key=lambda item: -item[1]):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise problem("must be longer than zero")
    return value


def _zone(value: object) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise problem('must be an IANA time zone name such as "Europe/Amsterdam"')


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise problem('must be an http(s) URL such as "https://example.org/path"')
    return value


def _id_text(value: object) -> object:
    """Let ids be written as TOML integers (``company_id = 1234``); they are text to syncd."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _table_name(value: str) -> str:
    # Account names end up in webhook URLs and in derived calendar UIDs: keep them plain.
    if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise problem("names may contain only letters, digits, '-' and '_'")
    return value


def _sync_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9_-]+", value):
        raise problem("must use only lower-case letters, digits, '-' and '_'")
    return value


def _title_template(value: str) -> str:
    allowed = " ".join(f"{{{name}}}" for name in TITLE_FIELDS)
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError:
        raise problem("unbalanced braces; write {{ or }} for a literal brace") from None
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in TITLE_FIELDS:
            raise problem(f"unknown field {{{field}}}; allowed: {allowed}", quote=False)
        if spec or conversion:
            raise problem(f"{{{field}}} takes no format spec or conversion", quote=False)
    return value


def _not_empty(value: SecretStr) -> SecretStr:
    if not value.get_secret_value():
        raise problem("is empty")
    return value


def _feed_token(value: SecretStr) -> SecretStr:
    # A feed URL is its own password: 22 urlsafe base64 characters carry 132 bits.
    token = value.get_secret_value()
    if not re.fullmatch(r"[A-Za-z0-9_-]*", token):
        raise problem("must be urlsafe base64 (letters, digits, '-' and '_')")
    if len(token) < 22:
        raise problem(
            f"too short ({len(token)} characters): a feed token needs at least 22 urlsafe "
            "base64 characters (128 bits); make one with "
            "python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    return value


_AS_WRITTEN = PlainSerializer(format_duration, return_type=str, when_used="json")

Duration = Annotated[timedelta, BeforeValidator(parse_duration), _AS_WRITTEN]
PositiveDuration = Annotated[
    timedelta, BeforeValidator(parse_duration), AfterValidator(_positive), _AS_WRITTEN
]
Timezone = Annotated[
    ZoneInfo,
    PlainValidator(_zone),
    PlainSerializer(lambda zone: zone.key, return_type=str, when_used="json"),
]
Url = Annotated[str, AfterValidator(_http_url)]
IdText = Annotated[str, BeforeValidator(_id_text)]
TableName = Annotated[str, AfterValidator(_table_name)]
SyncName = Annotated[str, AfterValidator(_sync_name)]
TitleTemplate = Annotated[str, AfterValidator(_title_template)]
Secret = Annotated[SecretStr, AfterValidator(_not_empty)]
FeedToken = Annotated[SecretStr, AfterValidator(_feed_token)]
