"""``[providers.NAME]`` and ``[calendars.NAME]``: one model per ``kind``.

``kind`` selects the model (a discriminated union), so a misspelt kind is one clear error
listing the known kinds instead of one error per candidate model. Adding a provider means
adding a model here and to ``ProviderConfig``; the loader and the example test pick it up.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, Self, get_args

from pydantic import Field, ValidationInfo, field_validator, model_validator

from syncd.config.types import (
    AMSTERDAM,
    FeedToken,
    IdText,
    PositiveDuration,
    Secret,
    Section,
    Timezone,
    Url,
    problem,
)
from syncd.providers.oa_mapping import TitleTemplate as OATitle
from syncd.providers.recras_intake import DEFAULT_CONTACT_FORM as RECRAS_CONTACT_FORM
from syncd.providers.recras_intake import check_source as recras_source


class ProviderBase(Section):
    """What every provider account has: the zone its naive times are in, and a timeout."""

    timezone: Timezone = AMSTERDAM
    timeout: PositiveDuration = timedelta(seconds=30)


class MemoryProviderConfig(ProviderBase):
    """An in-process provider for the demo and tests; ``seed`` sample appointments."""

    kind: Literal["memory"] = "memory"
    seed: int = Field(default=0, ge=0)
    seed_random: int = 1


class OnlineAfsprakenConfig(ProviderBase):
    """An OnlineAfspraken.nl account; the options are those of ``OnlineAfsprakenProvider``.

    Busy blocks need ``busy_appointment_type`` and ``busy_customer`` together: placeholders
    are booked on them, and appointments of that type are never pulled as bookings.
    """

    kind: Literal["onlineafspraken"] = "onlineafspraken"
    base_url: Url = "https://agenda.onlineafspraken.nl/APIREST"
    api_key: Secret
    api_secret: Secret
    title_template: str = "{type} - {customer}"
    private: bool = False
    watch_created: bool = False
    overlap: PositiveDuration = timedelta(minutes=2)
    confirmations: int = Field(default=0, ge=0, le=3)
    cancel_remarks: str = ""
    busy_appointment_type: IdText = ""
    busy_customer: IdText = ""

    @field_validator("title_template")
    @classmethod
    def _known_fields(cls, value: str) -> str:
        try:
            OATitle(value)  # the provider's own check: the two cannot disagree
        except ValueError as err:
            raise problem(str(err), quote=False) from None
        return value

    @model_validator(mode="after")
    def _busy_pair(self) -> Self:
        if bool(self.busy_appointment_type) != bool(self.busy_customer):
            missing = "busy_customer" if self.busy_appointment_type else "busy_appointment_type"
            raise problem(
                "busy blocks need busy_appointment_type and busy_customer together", key=missing
            )
        return self


class AgendizeConfig(ProviderBase):
    """Agendize takes an API key plus token, or an OAuth token: exactly one of the two.

    The other options are those of ``AgendizeProvider``: ``personal_busy`` reads the
    business's own personal appointments as busy-only events, ``busy_staff`` is the staff
    member busy blocks are made for (a sync's ``scope.staff`` comes first), ``silent`` keeps
    syncd's writes from notifying the client, ``cancel_deletes`` deletes instead of cancelling,
    and ``watch_renew`` is how often the watch is registered again.
    """

    kind: Literal["agendize"] = "agendize"
    base_url: Url = "https://api.agendize.com/api/2.1/scheduling"
    company_id: IdText
    api_key: Secret | None = None
    token: Secret | None = None
    oauth_token: Secret | None = None
    personal_busy: bool = False
    busy_staff: IdText = ""
    silent: bool = True
    cancel_deletes: bool = False
    watch_renew: PositiveDuration = timedelta(hours=6)

    @model_validator(mode="after")
    def _one_auth_form(self) -> Self:
        keyed = self.api_key is not None or self.token is not None
        if self.oauth_token is not None:
            if keyed:
                raise problem("give api_key + token or oauth_token, not both", key="oauth_token")
        elif self.api_key is None:
            raise problem("required (with token), unless oauth_token is given", key="api_key")
        elif self.token is None:
            raise problem("required with api_key, unless oauth_token is given", key="token")
        return self


class RecrasConfig(ProviderBase):
    """Recras runs one host per customer: give ``instance`` (``demo`` -> demo.recras.nl)
    or a full ``base_url``, not both. The other keys are ``RecrasProvider``'s options; intake
    needs ``arrangement_id`` and ``products`` together, and a contact form that carries the
    booking ``reference`` (it is how a booking is found again after a crash)."""

    kind: Literal["recras"] = "recras"
    instance: str | None = None
    base_url: Url | None = None
    api_key: Secret
    event_per: Literal["booking", "line"] = "booking"
    cancelled_status: str = Field(default="geannuleerd", pattern=r"^[a-z_]+$")
    webhook_token: FeedToken | None = None
    arrangement_id: int | None = Field(default=None, gt=0)
    products: dict[str, int] = Field(default_factory=dict)
    persons_field: str = "persons"
    booking_status: Literal["informatie", "reservering", "definitief"] = "reservering"
    send_confirmation: bool = False
    contact_form: dict[str, str] = Field(default_factory=lambda: dict(RECRAS_CONTACT_FORM))
    voucher_field: str = "voucher"
    discount_field: str = "discount"

    @field_validator("products")
    @classmethod
    def _product_lines(cls, value: dict[str, int]) -> dict[str, int]:
        for line, amount in value.items():
            if not line.isdigit() or amount < 0:
                raise problem(f"{line} = {amount}: give arrangementsregel_id = amount (>= 0)")
        return value

    @field_validator("contact_form")
    @classmethod
    def _known_sources(cls, value: dict[str, str]) -> dict[str, str]:
        for key, source in value.items():
            try:
                recras_source(source)
            except ValueError as err:
                raise problem(f"{key}: {err}", quote=False) from None
        return value

    @model_validator(mode="after")
    def _intake_complete(self) -> Self:
        if (self.arrangement_id is None) != (not self.products):
            missing = "products" if self.arrangement_id is not None else "arrangement_id"
            raise problem("intake needs arrangement_id and products together", key=missing)
        if self.arrangement_id is not None and "reference" not in self.contact_form.values():
            raise problem(
                'map one field to "reference" (e.g. "boeking.opmerkingen" = "reference")',
                key="contact_form",
            )
        return self

    @field_validator("instance")
    @classmethod
    def _instance_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", value):
            raise problem('must be the instance name only, e.g. "demo" for demo.recras.nl')
        return value

    @model_validator(mode="after")
    def _one_location(self) -> Self:
        if (self.instance is None) == (self.base_url is None):
            raise problem("give exactly one of instance or base_url", key="instance")
        return self

    @property
    def url(self) -> str:
        """The API root to talk to, whichever way it was given."""
        if self.base_url is not None:
            return self.base_url
        return f"https://{self.instance}.recras.nl"


class QmaticConfig(ProviderBase):
    """A Qmatic Cloud Appointments account; the options are those of ``QmaticProvider``.

    ``service`` and ``branch`` are where intake events are booked (a sync's scope may name
    others); ``track`` lists customers' ``personalIdentifier``s whose appointments are synced
    however they were booked -- the API can find an appointment by nothing else.
    """

    kind: Literal["qmatic"] = "qmatic"
    base_url: Url
    account: IdText
    tenant_id: IdText
    client_id: IdText
    client_secret: Secret
    language: str = "en"
    service: IdText = ""
    branch: IdText = ""
    track: tuple[IdText, ...] = ()

    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str) -> str:
        # Qmatic's own examples write en_US and nl_NL; "en" and "en-US" work as well.
        if not re.fullmatch(r"[A-Za-z]{2}([-_][A-Za-z]{2})?", value):
            raise problem('must be a language code such as "en", "nl" or "nl_NL"')
        return value

    @field_validator("track")
    @classmethod
    def _identifiers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        wrong = [pid for pid in value if not re.fullmatch(r"[A-Za-z0-9]{10,48}", pid)]
        if wrong:
            raise problem(
                f"not a personalIdentifier (10-48 letters and digits): {wrong[0]!r}", quote=False
            )
        return value


ProviderConfig = Annotated[
    MemoryProviderConfig | OnlineAfsprakenConfig | AgendizeConfig | RecrasConfig | QmaticConfig,
    Field(discriminator="kind"),
]


class CalDAVCalendarConfig(Section):
    """A CalDAV collection, named by its URL or found by display name on a server."""

    kind: Literal["caldav"] = "caldav"
    url: Url | None = None
    server_url: Url | None = None
    calendar: str | None = None
    create: bool = False
    username: str = ""
    password: Secret | None = None
    ca_bundle: Path | None = None
    timeout: PositiveDuration = timedelta(seconds=30)

    @field_validator("ca_bundle")
    @classmethod
    def _bundle_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        # Relative paths are taken from the config file's directory, like *_file secrets.
        if value is None:
            return None
        base = (info.context or {}).get("base_dir")
        path = value.expanduser()
        if not path.is_absolute() and isinstance(base, Path):
            path = base / path
        if not path.is_file():
            raise problem(f"no such file: {path}", quote=False)
        return path

    @model_validator(mode="after")
    def _one_address(self) -> Self:
        if self.url is not None and (self.server_url is not None or self.calendar is not None):
            raise problem("give url, or server_url + calendar, not both", key="url")
        if self.url is None and (self.server_url is None or self.calendar is None):
            missing = "calendar" if self.server_url is not None else "url"
            raise problem("required: give url, or server_url + calendar", key=missing)
        if self.create and self.url is not None:
            raise problem("only applies with server_url + calendar", key="create")
        if self.password is not None and not self.username:
            raise problem("a password needs a username", key="username")
        return self


class MemoryCalendarConfig(Section):
    """An in-process calendar for the demo and tests."""

    kind: Literal["memory"] = "memory"


CalendarConfig = Annotated[
    CalDAVCalendarConfig | MemoryCalendarConfig,
    Field(discriminator="kind"),
]


def _kinds(union: object) -> tuple[str, ...]:
    members = get_args(get_args(union)[0])
    return tuple(str(member.model_fields["kind"].default) for member in members)


PROVIDER_KINDS = _kinds(ProviderConfig)
CALENDAR_KINDS = _kinds(CalendarConfig)
