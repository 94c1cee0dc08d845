"""The top of the config tree: store, server, log, syncs, feeds, and ``Config`` itself.

Models are frozen and forbid unknown keys. Checks that need only one model live here, as
validators, so a model built in code obeys them too; checks across models (a sync naming
an account that does not exist) live in the loader, which can report them alongside
validation errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal, Self, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from syncd.busy.options import AllDay, address
from syncd.config.backends import CalendarConfig, ProviderConfig
from syncd.config.types import (
    Duration,
    FeedToken,
    IdText,
    PositiveDuration,
    Secret,
    Section,
    SyncName,
    TableName,
    TitleTemplate,
    problem,
)
from syncd.reconcile.policy import (
    CalendarDelete,
    CancelledPolicy,
    ConflictPolicy,
    Direction,
    Policy,
    Privacy,
)

_LOOPBACK = ("localhost", "127.0.0.1", "::1")


class StoreConfig(Section):
    """Where the state lives: SQLite by default, PostgreSQL to run several daemons."""

    url: str = "sqlite:///syncd.db"
    busy_timeout: PositiveDuration = timedelta(seconds=5)

    @field_validator("url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        # Only the scheme is ever quoted back: the rest of the URL may hold a password.
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme.split("+", 1)[0] not in ("sqlite", "postgresql"):
            shown = f" (got scheme {scheme!r})" if scheme else ""
            raise problem(f'must start with "sqlite:///" or "postgresql://"{shown}', quote=False)
        return value


class ServerConfig(Section):
    """The HTTP listener (feeds, webhooks, health, metrics) and its public address."""

    listen: str = "127.0.0.1:8765"
    public_url: str = ""
    status_user: str = ""
    status_password: Secret | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise problem('must be HOST:PORT, e.g. "127.0.0.1:8765" or "[::1]:8765"')
        return value

    @field_validator("public_url")
    @classmethod
    def _https(cls, value: str) -> str:
        # Providers deliver webhooks over the internet, so the URL must be https; plain
        # http is let through for loopback only, where the sandboxes run.
        if not value:
            return value
        parts = urlsplit(value)
        secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
        if not secure or not parts.hostname:
            raise problem('must be an https URL, e.g. "https://syncd.example.org"')
        return value.rstrip("/")

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.status_password is None) != (not self.status_user):
            raise problem("give status_user and status_password together", key="status_user")
        return self

    @property
    def loopback(self) -> bool:
        """Whether the listener is reachable from this machine only."""
        return self.host in _LOOPBACK or self.host.startswith("127.")

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class LogConfig(Section):
    """``format = "auto"`` writes JSON lines unless the output is a terminal."""

    level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class SyncConfig(Section):
    """One provider account (or a scope of it) kept in step with one or more calendars."""

    name: SyncName
    provider: str
    scope: dict[str, IdText] = Field(default_factory=dict)
    calendars: tuple[str, ...] = Field(min_length=1)
    direction: Direction = Direction.ONE_WAY
    conflict: ConflictPolicy = ConflictPolicy.PROVIDER_WINS
    calendar_delete: CalendarDelete = CalendarDelete.RESTORE
    cancelled: CancelledPolicy = CancelledPolicy.MARK
    privacy: Privacy = Privacy.FULL
    title: TitleTemplate = "{title}"
    interval: PositiveDuration = timedelta(minutes=1)
    full_scan_interval: PositiveDuration = timedelta(hours=1)
    window_past: Duration = timedelta(days=30)
    window_future: PositiveDuration = timedelta(days=365)
    max_delete_share: float = Field(default=0.5, gt=0, le=1)
    delete_guard_min: int = Field(default=5, ge=1)
    busy_from: tuple[str, ...] = ()
    busy_all_day: AllDay = AllDay.BLOCK
    busy_label: str = Field(default="", max_length=100)
    busy_owner: tuple[str, ...] = ()
    intake: str = ""
    enabled: bool = True

    @field_validator("calendars", "busy_from")
    @classmethod
    def _no_repeats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise problem("lists " + ", ".join(repr(name) for name in repeated) + " twice")
        return value

    @field_validator("intake")
    @classmethod
    def _intake_is_synced(cls, value: str, info: ValidationInfo) -> str:
        # Booked events are replaced by the booking's own event, linked like every other:
        # that needs the intake calendar to be one the sync writes to.
        if value and value not in info.data.get("calendars", (value,)):
            raise problem(f"must be one of this sync's calendars, got {value!r}", quote=False)
        return value

    @field_validator("busy_owner")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        wrong = [item for item in value if "@" not in item]
        if wrong:
            raise problem(f"not an e-mail address: {wrong[0]!r}", quote=False)
        return tuple(address(item) for item in value)

    @field_validator("conflict")
    @classmethod
    def _conflict_needs_two_way(cls, value: ConflictPolicy, info: ValidationInfo) -> ConflictPolicy:
        if (
            value is ConflictPolicy.CALENDAR_WINS
            and info.data.get("direction") is Direction.ONE_WAY
        ):
            raise problem(
                '"calendar-wins" needs direction = "two-way": a one-way sync never writes '
                "calendar edits back to the provider, so the calendar cannot win",
                quote=False,
            )
        return value

    @field_validator("calendar_delete")
    @classmethod
    def _cancel_needs_two_way(cls, value: CalendarDelete, info: ValidationInfo) -> CalendarDelete:
        if value is CalendarDelete.CANCEL and info.data.get("direction") is Direction.ONE_WAY:
            raise problem(
                '"cancel" needs direction = "two-way": a one-way sync never writes to the '
                'provider; use "restore" or "ignore"',
                quote=False,
            )
        return value

    def policy(self, allow_mass_delete: bool = False) -> Policy:
        """The part of this sync the pure reconcile engine reads."""
        return Policy(
            sync=self.name,
            account=self.provider,
            calendars=self.calendars,
            direction=self.direction,
            conflict=self.conflict,
            calendar_delete=self.calendar_delete,
            cancelled=self.cancelled,
            max_delete_share=self.max_delete_share,
            delete_guard_min=self.delete_guard_min,
            allow_mass_delete=allow_mass_delete,
        )


class FeedConfig(Section):
    """A published ICS feed of one sync; its token is the only thing guarding it."""

    sync: str
    token: FeedToken
    privacy: Privacy = Privacy.FULL
    staff: str = ""
    resource: str = ""
    keep_cancelled: PositiveDuration = timedelta(days=14)


class Config(Section):
    """A whole validated configuration; build it with ``load_config`` or ``parse_config``."""

    store: StoreConfig = Field(default_factory=StoreConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    providers: dict[TableName, ProviderConfig] = Field(default_factory=dict)
    calendars: dict[TableName, CalendarConfig] = Field(default_factory=dict)
    syncs: tuple[SyncConfig, ...] = ()
    feeds: dict[TableName, FeedConfig] = Field(default_factory=dict)

    def sync(self, name: str) -> SyncConfig:
        """The sync called ``name``; ``KeyError`` when there is none."""
        for sync in self.syncs:
            if sync.name == name:
                return sync
        raise KeyError(name)

    def secrets(self) -> list[str]:
        """Every secret value in this config, for log redaction.

        Besides the secret fields this includes passwords written into URLs
        (``postgresql://user:pw@host/db``), which are just as secret.
        """
        found: dict[str, None] = {}
        for value in _walk(self):
            if isinstance(value, SecretStr):
                found[value.get_secret_value()] = None
            elif isinstance(value, str) and "@" in value and "://" in value:
                password = urlsplit(value).password
                if password:
                    found[password] = None
        found.pop("", None)
        return list(found)


def _walk(value: object) -> Iterator[object]:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _walk(item)
    else:
        yield value


def model_classes(root: type[BaseModel] = Config) -> list[type[BaseModel]]:
    """Every model reachable from ``root``, each once: for schema walks and tests."""
    found: list[type[BaseModel]] = []

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found:
                found.append(annotation)
                for field in annotation.model_fields.values():
                    visit(field.annotation)
            return
        for arg in get_args(annotation):
            visit(arg)

    visit(root)
    return found


def secret_field_names() -> frozenset[str]:
    """Names of all secret fields (``api_key``, ``password``...); each also accepts ``_file``."""

    def holds_secret(annotation: Any) -> bool:
        if annotation is SecretStr:
            return True
        return any(holds_secret(arg) for arg in get_args(annotation))

    return frozenset(
        name
        for model in model_classes()
        for name, field in model.model_fields.items()
        if holds_secret(field.annotation)
    )
