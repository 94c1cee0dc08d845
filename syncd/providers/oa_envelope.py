"""The OnlineAfspraken reply envelope: parsing it safely, and what a failure means.

Every reply is ``<Response><Status>...</Status><Objects>...</Objects>[<Stats>]</Response>``
with ``Status/Status`` ``success`` or ``failed``, the server's local ``Date`` and unix
``Timestamp``, and on failure a ``Code`` and ``Message``. Promises:

* Parsing is defusedxml: entities and DTDs are refused, never expanded or salvaged.
* A list reply that is not well-formed but complete is salvaged item by item, so one broken
  appointment costs only itself (it comes back as a ``Fragment``); a truncated reply or one
  without a readable status is refused whole, so nothing is silently dropped.
* A failure becomes ``ApiAuthError``, ``ApiNotFound`` or ``ApiRefused``, subclasses of the
  ``syncd.errors`` types that also carry the provider's ``code`` and ``api_message``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from syncd.errors import AuthError, BackendError, NotFound, Refused

# The API's failure codes are not public beyond one example (B57, a missing parameter). These
# are the codes the bundled sandbox uses. Whatever the code, a message about the key, the
# signature or the salt is an authentication failure; everything else the API declines is a
# business refusal. NotFound is only ever decided by code: mistaking "parameter not found"
# for "appointment not found" would read as a deletion.
AUTH_CODES = frozenset({"A01", "A02", "A03"})
NOT_FOUND_CODES = frozenset({"N01"})
_AUTH_WORDS = re.compile(r"signature|api.?key|salt|credential", re.IGNORECASE)


class ApiFailure:
    """Mixed into the errors of a failed call: the provider's own ``Code`` and ``Message``."""

    code: str = ""
    api_message: str = ""


class ApiAuthError(ApiFailure, AuthError):
    pass


class ApiNotFound(ApiFailure, NotFound):
    pass


class ApiRefused(ApiFailure, Refused):
    pass


@dataclass(frozen=True, slots=True)
class Fragment:
    """A list item that could not be parsed; ``native_id`` is empty when not even that was."""

    position: int
    native_id: str
    message: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One response envelope. ``date`` is the server's local wall time, as sent."""

    ok: bool
    date: str = ""
    timestamp: int | None = None
    code: str = ""
    message: str = ""
    objects: tuple[Element, ...] = ()
    broken: tuple[Fragment, ...] = ()
    total: int | None = None


def parse_reply(body: bytes, items: str | None = None) -> Reply:
    """The envelope of ``body``; ``items`` names the list element, which enables salvage.

    Raises ``ValueError`` when there is no envelope to read at all, and ``DefusedXmlException``
    for entities or a DTD, which are never salvaged.
    """
    try:
        root = SafeET.fromstring(body)
    except ParseError:
        if items is None:
            raise ValueError("reply is not well-formed XML") from None
        return _salvage(body.decode("utf-8", "replace"), items)
    status = root.find("Status")
    if root.tag != "Response" or status is None:
        raise ValueError("reply has no <Response><Status> envelope")
    objects = root.find("Objects")
    total = root.findtext(".//Stats/TotalRecords")
    return Reply(
        ok=(status.findtext("Status") or "").strip().lower() == "success",
        date=(status.findtext("Date") or "").strip(),
        timestamp=_int(status.findtext("Timestamp")),
        code=(status.findtext("Code") or "").strip(),
        message=(status.findtext("Message") or "").strip(),
        objects=tuple(objects) if objects is not None else (),
        total=_int(total),
    )


def _salvage(body: str, items: str) -> Reply:
    """Read what can be read of a list reply one item at a time.

    Only a complete reply (ending in ``</Response>``) is salvaged: a truncated one would drop
    items without a trace, so it fails whole and is fetched again later.
    """
    head = body.split("<Objects", 1)[0]
    status = re.search(r"<Status>\s*(success|failed)\s*</Status>", head, re.IGNORECASE)
    if status is None or not body.rstrip().endswith("</Response>"):
        raise ValueError("reply is not well-formed XML and cannot be salvaged")
    objects: list[Element] = []
    broken: list[Fragment] = []
    for position, match in enumerate(re.finditer(rf"<{items}>.*?</{items}>", body, re.DOTALL)):
        try:
            objects.append(SafeET.fromstring(match.group(0)))
        except (ParseError, DefusedXmlException) as err:
            found = re.search(r"<Id>\s*(\d+)\s*</Id>", match.group(0))
            reason = f"not well-formed XML ({type(err).__name__})"
            broken.append(Fragment(position, found.group(1) if found else "", reason))
    return Reply(
        ok=status.group(1).lower() == "success",
        date=_grab(head, "Date"),
        timestamp=_int(_grab(head, "Timestamp")),
        code=_grab(head, "Code"),
        message=_grab(head, "Message"),
        objects=tuple(objects),
        broken=tuple(broken),
        total=_int(_grab(body, "TotalRecords")),
    )


def _grab(body: str, tag: str) -> str:
    found = re.search(rf"<{tag}>([^<]*)</{tag}>", body)
    return found.group(1).strip() if found else ""


def _int(value: str | None) -> int | None:
    try:
        return int((value or "").strip())
    except ValueError:
        return None


def failure(backend: str, method: str, reply: Reply) -> BackendError:
    """The typed error for a failed reply; its text is the provider's, never a credential."""
    kind: type[ApiAuthError | ApiNotFound | ApiRefused]
    if reply.code in AUTH_CODES or _AUTH_WORDS.search(reply.message):
        kind = ApiAuthError
    elif reply.code in NOT_FOUND_CODES:
        kind = ApiNotFound
    else:
        kind = ApiRefused
    text = f"{method} failed: {reply.message or 'no message'} [code {reply.code or '?'}]"
    error = kind(backend, text)
    error.code = reply.code
    error.api_message = reply.message
    return error
