"""Authenticated calls to the Qmatic Cloud Appointments API (``external/v1``), in JSON.

Promises:

* Authentication is the OAuth2 client credentials grant: ``POST {base}/oauth2/token`` with
  HTTP Basic ``client_id:client_secret``, the ``X-ACCOUNT`` header and
  ``grant_type=client_credentials``. The token is kept and used until ``REFRESH_MARGIN``
  before the expiry the server gave (``expires_in``, 3,600 s when it gives none), then
  replaced before it is sent stale. A call answered 401 all the same (the server revoked or
  forgot the token) gets a fresh token and is sent once more, never twice: a request refused
  for its token was not executed, so repeating it is safe for writes too.
* Every API call carries the bearer token, ``X-TENANT-ID`` and ``Accept-Language``.
* The client secret and the tokens never leave this object: not logged, not put in a message,
  not shown by ``repr``. Transport errors are reported by type only.
* HTTP trouble maps onto ``syncd.errors``: timeouts, resets and 5xx -> ``TransientError``;
  429 -> ``RateLimited`` with Retry-After; a 401 that a new token does not cure, a 403 or a
  refused token request -> ``AuthError``; 404 -> ``NotFound``; 400, 409 and 422 (the API
  understood and said no) -> ``Refused`` with the server's message; 410 (a reservation hold
  that lapsed) -> ``TransientError``, since doing it again later can succeed. A body that is
  not JSON is named in a warning and raised as ``TransientError``. Nothing else is retried
  here: the scheduler owns backoff.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from syncd.errors import AuthError, BackendError, NotFound, RateLimited, Refused, TransientError
from syncd.providers.oa_client import retry_after

log = structlog.get_logger(__name__)

API = "/external/v1"
DEFAULT_LIFETIME = 3600.0
REFRESH_MARGIN = 60.0  # a token this close to its expiry is replaced before it is used


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the token endpoint wants. ``repr`` leaves the secret out."""

    account: str
    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"Credentials(account={self.account!r}, client_id={self.client_id!r})"


@dataclass(slots=True)
class _Token:
    value: str
    expires: float  # on the client's clock

    def fresh(self, now: float) -> bool:
        return now < self.expires - REFRESH_MARGIN


class QmaticClient:
    """One account and tenant. ``requests`` counts HTTP requests by name (``token`` too).

    Without ``http`` it makes (and closes) its own client with ``timeout`` seconds per request.
    ``now`` is a clock in seconds, for the token's expiry only.
    """

    def __init__(
        self,
        backend: str,
        base_url: str,
        credentials: Credentials,
        tenant_id: str,
        *,
        language: str = "en",
        http: httpx.AsyncClient | None = None,
        now: Callable[[], float] = time.monotonic,
        timeout: float = 30.0,
    ) -> None:
        self.backend = backend
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self.language = language
        self.requests: Counter[str] = Counter()
        self._credentials = credentials
        self._now = now
        self._token: _Token | None = None
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)

    def __repr__(self) -> str:
        return f"QmaticClient({self.backend!r}, {self.base_url!r})"

    @property
    def sent(self) -> int:
        return sum(self.requests.values())

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        name: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """The JSON answer of one API call (``None`` for 204), or the typed error it means.

        ``name`` labels the call in counters, logs and messages (``search``, ``reserve``...).
        """
        response = await self._send(method, path, name, body, params, await self._bearer())
        if response.status_code == 401:
            log.info("qmatic.token_refused", backend=self.backend, call=name)
            self._token = None
            response = await self._send(method, path, name, body, params, await self._bearer())
        self._check(name, response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except (ValueError, RecursionError) as err:  # nested past the parser's depth
            log.warning("qmatic.unreadable_reply", backend=self.backend, call=name, reason=str(err))
            raise TransientError(self.backend, f"{name}: the answer is not JSON ({err})") from None

    async def _bearer(self) -> str:
        if self._token is None or not self._token.fresh(self._now()):
            self._token = await self._new_token()
        return self._token.value

    async def _new_token(self) -> _Token:
        creds = self._credentials
        self.requests["token"] += 1
        try:
            response = await self._http.post(
                f"{self.base_url}/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(creds.client_id, creds.client_secret),
                headers={"X-ACCOUNT": creds.account, "Accept": "application/json"},
            )
        except httpx.TimeoutException:
            raise TransientError(self.backend, "token: timed out") from None
        except httpx.TransportError as err:
            raise TransientError(self.backend, f"token: {type(err).__name__}") from None
        if response.status_code in (400, 401, 403):
            reason = _field(response, "error") or f"HTTP {response.status_code}"
            raise AuthError(self.backend, f"the token endpoint refused the client ({reason})")
        self._check("token", response)
        try:
            data = response.json()
            value = str(data["access_token"])
            given = data.get("expires_in")
            lifetime = DEFAULT_LIFETIME if given is None else float(given)
        except (ValueError, KeyError, TypeError, RecursionError):
            raise TransientError(self.backend, "token: the answer holds no access_token") from None
        log.info("qmatic.token", backend=self.backend, lifetime=lifetime)
        return _Token(value, self._now() + lifetime)

    async def _send(
        self,
        method: str,
        path: str,
        name: str,
        body: Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
        token: str,
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {token}",
            "X-TENANT-ID": self.tenant_id,
            "Accept-Language": self.language,
            "Accept": "application/json",
        }
        self.requests[name] += 1
        try:
            return await self._http.request(
                method,
                f"{self.base_url}{API}{path}",
                json=dict(body) if body is not None else None,
                params=params,
                headers=headers,
            )
        except httpx.TimeoutException:
            raise TransientError(self.backend, f"{name}: timed out") from None
        except httpx.TransportError as err:
            raise TransientError(self.backend, f"{name}: {type(err).__name__}") from None

    def _check(self, name: str, response: httpx.Response) -> None:
        status = response.status_code
        if status < 300:
            return
        message = f"{name}: " + (_field(response, "errorMessage") or f"HTTP {status}")
        if status == 429:
            wait = retry_after(response.headers.get("Retry-After"), time.time())
            raise RateLimited(self.backend, f"{name}: HTTP 429", retry_after=wait)
        if status >= 500 or status == 410:
            raise TransientError(self.backend, message)
        if status in (401, 403):
            raise AuthError(self.backend, message)
        if status == 404:
            raise NotFound(self.backend, message)
        if status in (400, 409, 422):
            raise Refused(self.backend, message)
        raise BackendError(self.backend, f"{message} (is base_url right?)")


def _field(response: httpx.Response, key: str) -> str:
    """One text field of a JSON error body, or ``""`` when the body has none."""
    try:
        data = response.json()
    except (ValueError, RecursionError):
        return ""
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""
