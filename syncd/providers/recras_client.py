"""JSON calls to one Recras instance, and what their failures mean.

Promises:

* Every call carries ``Authorization: Bearer <api key>`` and speaks JSON. The key never leaves
  this object: it is not logged, not put in a message and not shown by ``repr``; transport
  errors are reported by their type only.
* HTTP trouble maps onto ``syncd.errors``: timeouts, resets and 5xx -> ``TransientError``,
  429 -> ``RateLimited`` with Retry-After, 401 -> ``AuthError`` (the key), 403 ->
  ``AuthError`` saying a right is missing (the API answers 403 for a key without, say,
  ``editBoeking``), 404 -> ``NotFound``, 406 -> ``Refused`` carrying the API's own message
  verbatim (it is what a person must read to fix the booking), anything else ->
  ``BackendError``. A 200 whose body is not JSON is a ``TransientError`` naming the call.
* Nothing is retried here; the scheduler owns backoff. ``requests`` counts calls by name,
  for the one-request-per-idle-cycle promise.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import httpx
import structlog

from syncd.errors import AuthError, BackendError, NotFound, RateLimited, Refused, TransientError
from syncd.providers.oa_client import retry_after

log = structlog.get_logger(__name__)


class RecrasClient:
    """One instance's connection. Without ``http`` it makes (and closes) its own client."""

    def __init__(
        self,
        backend: str,
        base_url: str,
        api_key: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.backend = backend
        self.base_url = base_url.rstrip("/")
        self.requests: Counter[str] = Counter()
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)

    def __repr__(self) -> str:
        return f"RecrasClient({self.backend!r}, {self.base_url!r})"

    @property
    def sent(self) -> int:
        return sum(self.requests.values())

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return await self.call("POST", path, body=body)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """The decoded JSON answer of ``method path``, or the error its failure means."""
        name = _name(path)
        self.requests[name] += 1
        try:
            response = await self._http.request(
                method,
                self.base_url + path,
                params=params,
                json=body,
                headers=self._headers,
            )
        except httpx.TimeoutException:
            raise TransientError(self.backend, f"{name}: timed out") from None
        except httpx.TransportError as err:
            raise TransientError(self.backend, f"{name}: {type(err).__name__}") from None
        self._check(name, response)
        try:
            return json.loads(response.content)
        except (ValueError, RecursionError):  # nested past the parser's depth
            log.warning("recras.unreadable_reply", backend=self.backend, call=name)
            raise TransientError(self.backend, f"{name}: the answer is not JSON") from None

    def _check(self, name: str, response: httpx.Response) -> None:
        status = response.status_code
        if status < 300:
            return
        if status == 429:
            wait = retry_after(response.headers.get("Retry-After"), 0.0)
            raise RateLimited(self.backend, f"{name}: HTTP 429", retry_after=wait)
        if status >= 500:
            raise TransientError(self.backend, f"{name}: HTTP {status}")
        if status == 401:
            raise AuthError(self.backend, f"{name}: HTTP 401, the API key was not accepted")
        if status == 403:
            raise AuthError(self.backend, f"{name}: HTTP 403, the API key lacks the right")
        if status == 404:
            raise NotFound(self.backend, f"{name}: not found")
        if status == 406:
            raise Refused(self.backend, error_message(response) or f"{name}: invalid input")
        raise BackendError(self.backend, f"{name}: HTTP {status} (is the instance right?)")


def error_message(response: httpx.Response) -> str:
    """The API's message from an error answer: ``{"error": {"message"}}``, ``{"error"}``,
    ``{"message"}``, or the text itself; one line, at most 500 characters."""
    text = response.text
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = text
    if isinstance(data, dict):
        inner = data.get("error", data)
        data = inner.get("message", "") if isinstance(inner, dict) else inner
    return " ".join(str(data).split())[:500]


def _name(path: str) -> str:
    """A call's name for counts and messages: the path without ids."""
    parts = [p for p in path.strip("/").split("/") if p and not p.isdigit()]
    return "/".join(parts[1:]) if parts and parts[0] == "api2" else "/".join(parts)
