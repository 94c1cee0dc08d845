"""What one OnlineAfspraken account knows about ids: scopes, names, which agenda holds what.

A sync's scope names an ``agenda`` (required) and optionally a ``resource`` and an
``appointment_type``, each a numeric id; anything else is a configuration error, reported
with every problem at once.

Appointment elements carry ids only (type, resources, customer); titles want names. Names of
appointment types and resources are fetched with one list call each, when an id not yet known
appears, and kept for the life of the instance; an id the list lacks is remembered as nameless
so it does not trigger a refetch on every pull. Customer names come with the appointment as
``CustomerName``; only when that is empty (and privacy is off) is ``getCustomer`` asked, once
per customer, or again when a webhook says the customer changed.

Appointment elements do not say their agenda, yet ``setAppointment`` requires ``AgendaId``.
Every listing teaches it (each listing is per agenda); after a restart, an appointment not
seen since is found with one one-day listing per agenda.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from xml.etree.ElementTree import Element

import structlog

from syncd.errors import ConfigError, Refused
from syncd.providers.base import Scope
from syncd.providers.oa_client import Listing, OnlineAfsprakenClient
from syncd.providers.oa_envelope import ApiNotFound, ApiRefused, Reply
from syncd.providers.oa_mapping import Names, resource_ids, text

log = structlog.get_logger(__name__)

_SCOPE_KEYS = frozenset({"agenda", "resource", "appointment_type"})


@dataclass(frozen=True, slots=True)
class OAScope:
    """A sync's scope, checked: ids are digits, unknown keys are a configuration error."""

    agenda: str
    resource: str = ""
    appointment_type: str = ""

    @classmethod
    def parse(cls, scope: Scope, account: str) -> OAScope:
        problems = [f"scope.{key}: unknown key" for key in scope if key not in _SCOPE_KEYS]
        problems += [
            f"scope.{key}: must be a numeric id, got {value!r}"
            for key, value in scope.items()
            if key in _SCOPE_KEYS and not value.isdigit()
        ]
        if "agenda" not in scope:
            problems.append("scope.agenda: required")
        if problems:
            raise ConfigError(problems, source=f"providers.{account}")
        return cls(scope["agenda"], scope.get("resource", ""), scope.get("appointment_type", ""))

    def filters(self) -> dict[str, str]:
        found = {"AgendaId": self.agenda, "ResourceId": self.resource}
        found["AppointmentTypeId"] = self.appointment_type
        return {key: value for key, value in found.items() if value}


def _ident(value: str) -> bool:
    """An id as the API hands them out: a number of a sane length."""
    return value.isdigit() and len(value) <= 20


class Directory:
    """Names by id and agendas by appointment id, fetched lazily through ``api``."""

    def __init__(self, api: OnlineAfsprakenClient, private: bool) -> None:
        self.api = api
        self.private = private
        self.types: dict[str, str] = {}
        self.resources: dict[str, str] = {}
        self.customers: dict[str, str] = {}
        self.agendas: dict[str, str] = {}

    async def names(self, elements: Iterable[Element]) -> Names:
        """Every name ``elements`` need, fetching only what is not known yet."""
        elements = list(elements)
        types = {text(e, "AppointmentTypeId") for e in elements} - {""}
        resources = {r for e in elements for r in resource_ids(e)}
        if types - self.types.keys():
            self.types |= await self._name_list("getAppointmentTypes", "AppointmentType", types)
        if resources - self.resources.keys():
            self.resources |= await self._name_list("getResources", "Resource", resources)
        if not self.private:
            for e in elements:
                customer = text(e, "CustomerId")
                if not _ident(customer) or text(e, "CustomerName"):
                    continue  # an id that is no number names nobody: no request for it
                if customer not in self.customers:
                    await self.refresh_customer(customer)
        return Names(self.types, self.resources, self.customers)

    async def _name_list(self, method: str, tag: str, wanted: set[str]) -> dict[str, str]:
        """Id -> name from a list call. Names are cosmetic: a refusal leaves them empty."""
        try:
            reply = await self.api.call(method)
        except ApiRefused as err:
            log.warning("onlineafspraken.names_unavailable", method=method, code=err.code)
            reply = Reply(ok=True)
        found = {text(e, "Id"): text(e, "Name") for e in reply.objects if e.tag == tag}
        return dict.fromkeys(wanted, "") | found

    async def refresh_customer(self, customer_id: str) -> None:
        """Look a customer's name up (again); a customer that is gone has no name."""
        try:
            reply = await self.api.call("getCustomer", {"Id": customer_id})
        except (ApiNotFound, ApiRefused):
            self.customers[customer_id] = ""
            return
        for e in reply.objects:
            parts = (text(e, "FirstName"), text(e, "Insertions"), text(e, "LastName"))
            self.customers[customer_id] = " ".join(p for p in parts if p)

    def learn(self, listing: Listing, agenda: str) -> None:
        for _, element in listing.elements:
            self.agendas[text(element, "Id")] = agenda

    async def agenda_of(self, native_id: str, element: Element, day: date) -> str:
        """The appointment's agenda: said by the element, learned, or found on ``day``."""
        known = text(element, "AgendaId") or self.agendas.get(native_id, "")
        if known:
            return known
        reply = await self.api.call("getAgendas")
        agendas = [text(e, "Id") for e in reply.objects if e.tag == "Agenda"]
        if len(agendas) == 1:
            return agendas[0]
        for agenda in agendas:
            query = {"AgendaId": agenda, "StartDate": day.isoformat(), "EndDate": day.isoformat()}
            query["IncludeCancelled"] = "1"
            self.learn(await self.api.list_all("getAppointments", query, "Appointment"), agenda)
            if native_id in self.agendas:
                return self.agendas[native_id]
        raise Refused(self.api.backend, f"cannot tell which agenda holds appointment {native_id}")
