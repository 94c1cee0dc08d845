"""Signed calls to the OnlineAfspraken REST API, and paging through its lists.

Promises:

* Every call is a GET signed as the API requires: every parameter except ``api_key``,
  ``api_salt`` and ``api_signature`` (so ``method`` too), sorted by key (code-point order,
  as PHP's ``ksort`` does), as ``key`` + ``value`` with all whitespace removed from the value,
  then the api_secret, then the salt; sha256, hex. The api_key is NOT part of it, whatever one
  sentence of the documentation says: the worked example and public clients leave it out.
* The salt is a unix time the server must find within its last 300 seconds. It comes from
  our clock corrected by the server's ``Status/Timestamp`` of the latest reply. A call the
  server refused while our salt was outside its window is sent once more with the corrected
  clock, never twice: a refused signature is not executed, so the retry is safe for writes.
* The api_secret never leaves this object: it is not sent, logged, put in a message or shown
  by ``repr``. Transport errors are reported by type, without the URL (it holds the key).
* A reply that cannot be read at all is named in a warning (method and reason) and raised
  as ``TransientError``; one with a DTD or entities as ``BackendError``.
* HTTP trouble maps onto ``syncd.errors``: timeouts, resets and 5xx -> ``TransientError``,
  429 -> ``RateLimited`` with Retry-After, 401/403 -> ``AuthError``. Nothing is retried here
  but the salt: the scheduler owns backoff.
* List calls page with ``Limit``/``Offset``. A listing that shifted while it was paged (its
  ``TotalRecords`` changed, or the ids seen do not add up to it) is read again from the start;
  offset paging over moving data would otherwise skip an item, and a skipped item in a full
  listing reads as a deletion.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from xml.etree.ElementTree import Element

import httpx
import structlog
from defusedxml import DefusedXmlException

from syncd.errors import AuthError, BackendError, RateLimited, TransientError
from syncd.providers.oa_envelope import Fragment, Reply, failure, parse_reply

log = structlog.get_logger(__name__)

SALT_WINDOW = 300
UNSIGNED = frozenset({"api_key", "api_salt", "api_signature"})
LISTING_ATTEMPTS = 3


def signature_base(params: Mapping[str, str], api_secret: str, salt: str) -> str:
    """The exact string that is hashed; the seed's example is ``id8methodgetResource`` + ..."""
    pairs = "".join(
        key + "".join(params[key].split()) for key in sorted(params) if key not in UNSIGNED
    )
    return pairs + api_secret + salt


def sign(params: Mapping[str, str], api_secret: str, salt: str) -> str:
    return hashlib.sha256(signature_base(params, api_secret, salt).encode()).hexdigest()


class SaltClock:
    """Unix time as the server sees it, learned from each reply's ``Timestamp``.

    The estimate errs early, never late: the server stamped its reply before we received it,
    so ``Timestamp - now`` underestimates the offset by the latency. A salt from the future
    is refused, one slightly in the past is not.
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self.offset = 0.0

    def now(self) -> float:
        return self._now() + self.offset

    def salt(self) -> int:
        return math.floor(self.now())

    def observe(self, server_timestamp: int) -> None:
        self.offset = server_timestamp - self._now()


def retry_after(value: str | None, now: float) -> float:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date); 0 when absent."""
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return 0.0


@dataclass(slots=True)
class Listing:
    """Every item of a paged list call; ``first`` is the first page's reply (its ``Date``)."""

    first: Reply
    elements: list[tuple[int, Element]] = field(default_factory=list)
    broken: list[Fragment] = field(default_factory=list)


class OnlineAfsprakenClient:
    """One account's signed connection. ``requests`` counts every HTTP request by method.

    Without ``http`` it makes (and closes) its own client with ``timeout`` seconds per request.
    """

    def __init__(
        self,
        backend: str,
        base_url: str,
        api_key: str,
        api_secret: str,
        *,
        http: httpx.AsyncClient | None = None,
        now: Callable[[], float] = time.time,
        page_size: int = 500,
        timeout: float = 30.0,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be positive, got {page_size}")
        self.backend = backend
        self.base_url = base_url
        self.page_size = page_size
        self.requests: Counter[str] = Counter()
        self.clock = SaltClock(now)
        self._now = now
        self._api_key = api_key
        self._api_secret = api_secret
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)

    def __repr__(self) -> str:
        return f"OnlineAfsprakenClient({self.backend!r}, {self.base_url!r})"

    @property
    def sent(self) -> int:
        return sum(self.requests.values())

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def call(
        self, method: str, params: Mapping[str, str] | None = None, *, items: str | None = None
    ) -> Reply:
        """One successful reply of ``method``, or the typed error its failure means."""
        params = dict(params or {})
        reply, salt = await self._send(method, params, items)
        if not reply.ok and _salt_refused(reply, salt):
            log.info(
                "onlineafspraken.salt_retry",
                backend=self.backend,
                method=method,
                sent_salt=salt,
                server_timestamp=reply.timestamp,
            )
            reply, salt = await self._send(method, params, items)
        if not reply.ok:
            raise failure(self.backend, method, reply)
        return reply

    async def list_all(self, method: str, params: Mapping[str, str], items: str) -> Listing:
        """Every ``items`` element of a paged list call, read again if it shifted meanwhile."""
        for attempt in range(1, LISTING_ATTEMPTS + 1):
            listing = await self._page_through(method, params, items)
            if listing is not None:
                return listing
            log.info("onlineafspraken.listing_shifted", backend=self.backend, attempt=attempt)
        raise TransientError(self.backend, f"{method}: the listing kept changing while paged")

    async def _page_through(
        self, method: str, params: Mapping[str, str], items: str
    ) -> Listing | None:
        listing: Listing | None = None
        totals: set[int] = set()
        seen: set[str] = set()
        offset = 0
        while True:
            page = {**params, "Limit": str(self.page_size), "Offset": str(offset)}
            reply = await self.call(method, page, items=items)
            listing = listing or Listing(reply)
            found = [e for e in reply.objects if e.tag == items]
            before = len(seen)
            for index, element in enumerate(found):
                listing.elements.append((offset + index, element))
                seen.add((element.findtext("Id") or "").strip() or f"#{offset + index}")
            for fragment in reply.broken:
                fragment = replace(fragment, position=offset + fragment.position)
                listing.broken.append(fragment)
                seen.add(fragment.native_id or f"#{fragment.position}")
            count = len(found) + len(reply.broken)
            offset += count
            if reply.total is not None:
                totals.add(reply.total)
            if count and len(seen) == before:
                return None  # a page of nothing new: the server is not honouring Offset
            if count == 0:
                break
            if reply.total is not None:
                if offset >= reply.total:
                    break
            elif count < self.page_size:  # without Stats, a short page is the last one
                break
        if len(totals) > 1 or (totals and len(seen) != totals.pop()):
            return None
        return listing

    async def _send(
        self, method: str, params: Mapping[str, str], items: str | None
    ) -> tuple[Reply, int]:
        salt = self.clock.salt()
        query = {**params, "method": method}
        query |= {"api_key": self._api_key, "api_salt": str(salt)}
        query["api_signature"] = sign(query, self._api_secret, str(salt))
        self.requests[method] += 1
        try:
            response = await self._http.get(self.base_url, params=query)
        except httpx.TimeoutException:
            raise TransientError(self.backend, f"{method}: timed out") from None
        except httpx.TransportError as err:
            raise TransientError(self.backend, f"{method}: {type(err).__name__}") from None
        except httpx.InvalidURL:  # a parameter from a reply too long for any URL
            raise BackendError(self.backend, f"{method}: the request is too long") from None
        self._check_http(method, response)
        try:
            reply = parse_reply(response.content, items)
        except DefusedXmlException:
            self._unreadable(method, "reply with a DTD or entities")
            raise BackendError(self.backend, f"{method}: reply with a DTD or entities") from None
        except ValueError as err:
            self._unreadable(method, str(err))
            raise TransientError(self.backend, f"{method}: {err}") from None
        if reply.timestamp is not None:
            self.clock.observe(reply.timestamp)
        return reply, salt

    def _unreadable(self, method: str, reason: str) -> None:
        """A whole reply lost is named in a warning, whatever the caller does with the error."""
        log.warning(
            "onlineafspraken.unreadable_reply", backend=self.backend, method=method, reason=reason
        )

    def _check_http(self, method: str, response: httpx.Response) -> None:
        status = response.status_code
        if status == 429:
            wait = retry_after(response.headers.get("Retry-After"), self._now())
            raise RateLimited(self.backend, f"{method}: HTTP 429", retry_after=wait)
        if status >= 500:
            raise TransientError(self.backend, f"{method}: HTTP {status}")
        if status in (401, 403):
            raise AuthError(self.backend, f"{method}: HTTP {status}")
        if status != 200:
            raise BackendError(self.backend, f"{method}: HTTP {status} (is base_url right?)")


def _salt_refused(reply: Reply, salt: int) -> bool:
    """Refused while our salt lay outside the server's window, whatever the error code."""
    if reply.timestamp is None:
        return False
    return not reply.timestamp - SALT_WINDOW <= salt <= reply.timestamp
