"""HTTP calls to the Agendize scheduling API v2.1, and paging through its listings.

Promises:

* Every call carries the credentials as the API wants them: headers ``apiKey`` and ``token``,
  or ``Authorization: Bearer`` with an OAuth token. They are never logged, put in a message
  or shown by ``repr``; transport errors are reported by type only.
* A JSON ``error`` object is a failure whatever the HTTP status: the API sends some under
  HTTP 200. The status that counts is the object's ``code`` when it has one.
* Failures map onto ``syncd.errors``: timeouts, resets and 5xx -> ``TransientError``; 429 ->
  ``RateLimited`` with Retry-After; 401/403 -> ``AuthError``; 404 -> ``NotFound``; 410 ->
  ``TokenGone``; any other refusal -> ``ApiRefusal`` with the API's message. A reply that is
  not JSON is named in a warning and raised as ``TransientError``; one over ``MAX_REPLY``
  bytes is refused unread. Nothing is retried here: the scheduler owns backoff.
* ``list_all`` follows ``nextPageToken`` to the last page and returns its ``nextSyncToken``
  (only the last page has one). A page token seen twice is an error, not a loop.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from syncd.errors import AuthError, BackendError, NotFound, RateLimited, TransientError
from syncd.providers.oa_client import retry_after

log = structlog.get_logger(__name__)

MAX_REPLY = 64 * 1024 * 1024
MAX_PAGES = 10_000


class ApiRefusal(BackendError):
    """The API understood the call and said no; ``code`` is its status, ``reason`` its text."""

    def __init__(self, backend: str, message: str, code: int, reason: str) -> None:
        super().__init__(backend, message)
        self.code = code
        self.reason = reason


class TokenGone(BackendError):
    """HTTP 410 (or an error object with code 410): the sync token is no longer valid."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """An API key plus token, or an OAuth bearer token; ``repr`` shows which, never them."""

    api_key: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    oauth_token: str = field(default="", repr=False)

    def headers(self) -> dict[str, str]:
        if self.oauth_token:
            return {"Authorization": f"Bearer {self.oauth_token}"}
        return {"apiKey": self.api_key, "token": self.token}


@dataclass(slots=True)
class Listing:
    """Every item of a paged listing, and the sync token its last page gave (may be empty)."""

    items: list[Any]
    sync_token: str
    pages: int


class AgendizeClient:
    """One company's connection. ``requests`` counts HTTP requests by operation name.

    Without ``http`` it makes (and closes) its own client with ``timeout`` seconds per request.
    """

    def __init__(
        self,
        backend: str,
        base_url: str,
        company_id: str,
        credentials: Credentials,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self.root = f"{base_url.rstrip('/')}/companies/{quote(company_id, safe='')}/appointments"
        self.requests: Counter[str] = Counter()
        self._credentials = credentials
        self._now = now
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)

    def __repr__(self) -> str:
        return f"AgendizeClient({self.backend!r}, {self.root!r})"

    @property
    def sent(self) -> int:
        return sum(self.requests.values())

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def call(
        self,
        operation: str,
        method: str,
        path: str = "",
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        """The decoded JSON of a successful call (``None`` for an empty body)."""
        self.requests[operation] += 1
        headers = {**self._credentials.headers(), "Accept": "application/json"}
        request = self._http.build_request(
            method, self.root + path, params=dict(params or {}), json=body, headers=headers
        )
        try:
            response = await self._http.send(request, stream=True)
            try:
                content = await self._read(operation, response)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise TransientError(self.backend, f"{operation}: timed out") from None
        except httpx.TransportError as err:
            raise TransientError(self.backend, f"{operation}: {type(err).__name__}") from None
        return self._decode(operation, response, content)

    async def _read(self, operation: str, response: httpx.Response) -> bytes:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_REPLY:
                log.warning("agendize.reply_too_large", backend=self.backend, op=operation)
                raise BackendError(
                    self.backend, f"{operation}: reply larger than {MAX_REPLY} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _decode(self, operation: str, response: httpx.Response, content: bytes) -> Any:
        status = response.status_code
        payload: Any = None
        if content.strip():
            try:
                payload = json.loads(content)
            except (ValueError, RecursionError) as err:  # nested past the parser's depth
                if status < 400:
                    log.warning(
                        "agendize.unreadable_reply",
                        backend=self.backend,
                        op=operation,
                        error=str(err),
                    )
                    raise TransientError(
                        self.backend, f"{operation}: reply is not JSON: {err}"
                    ) from None
        problem = payload.get("error") if isinstance(payload, dict) else None
        if status >= 400 or problem is not None:
            raise self._failure(operation, status, problem, response.headers.get("Retry-After"))
        return payload

    def _failure(self, operation: str, status: int, problem: Any, wait: str | None) -> BackendError:
        code, reason = status, ""
        if isinstance(problem, dict):
            if isinstance(problem.get("code"), int) and problem["code"] >= 400:
                code = problem["code"]
            said = problem.get("message")
            reason = said if isinstance(said, str) else ""
        elif isinstance(problem, str):
            reason = problem
        reason = " ".join(reason.split())[:300]  # the provider's words, on one short line
        message = f"{operation}: HTTP {status}" + (f" ({code})" if code != status else "")
        message += f": {reason}" if reason else ""
        if code in (401, 403):
            return AuthError(self.backend, message)
        if code == 404:
            return NotFound(self.backend, message)
        if code == 410:
            return TokenGone(self.backend, message)
        if code == 429:
            return RateLimited(self.backend, message, retry_after(wait, self._now()))
        if code >= 500:
            return TransientError(self.backend, message)
        return ApiRefusal(self.backend, message, code, reason)

    async def list_all(self, params: Mapping[str, str]) -> Listing:
        """Every page of a listing with ``params``; the last page's ``nextSyncToken``."""
        items: list[Any] = []
        seen: set[str] = set()
        query = dict(params)
        for page in range(1, MAX_PAGES + 1):
            reply = await self.call("list", "GET", params=query)
            found = reply.get("items", []) if isinstance(reply, dict) else None
            if not isinstance(found, list):
                raise BackendError(self.backend, "list: the reply has no list of items")
            items.extend(found)
            following = reply.get("nextPageToken")
            if isinstance(following, str) and following:
                if following in seen:
                    raise TransientError(self.backend, "list: the API repeated a page token")
                seen.add(following)
                query = {**params, "pageToken": following}
                continue
            token = reply.get("nextSyncToken")
            return Listing(items, token if isinstance(token, str) else "", page)
        raise TransientError(self.backend, f"list: more than {MAX_PAGES} pages")
