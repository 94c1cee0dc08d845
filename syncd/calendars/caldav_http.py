"""HTTP to one CalDAV server, through the ``caldav`` library's synchronous client.

Everything here blocks and runs in a worker thread; ``CaldavCalendar`` is the async face.
This module promises three things the rest of the backend builds on:

* **One spelling per href.** Servers disagree on percent-encoding (Radicale's sync report says
  ``u%40x.ics``, its PROPFIND ``u@x.ics``), so every href that leaves this module is the path
  decoded once and encoded again with only ``/`` kept (``canonical``). An href syncd stored
  from ``create`` compares equal to the one a later sync report names.
* **Every request counted.** A response hook counts round trips per worker thread, so a call
  knows exactly what it cost (``CalendarChanges.requests``; promise 6: an idle cycle is one).
* **No entities.** A multistatus that declares a DTD is refused whole (``BackendError``):
  the library does not expand entities, which would cut an item's text short unnoticed.
* **Failures in syncd's words.** ``translate`` turns library and transport exceptions into
  ``syncd.errors``; messages carry the calendar's name and a URL without userinfo, never a
  password (the library sends credentials through an auth object, never in logged headers).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit
from xml.sax.saxutils import escape

from caldav.davclient import DAVClient
from caldav.lib import error as dav_error
from caldav.lib.http_sync import requests as http
from caldav.response import DAVResponse

from syncd.errors import AuthError, BackendError, NotFound, RateLimited, TransientError

T = TypeVar("T")

DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"
NO_UID_CONFLICT = f"{CALDAV}no-uid-conflict"
VALID_SYNC_TOKEN = f"{DAV}valid-sync-token"
SUPPORTED_REPORT = f"{DAV}supported-report"

# A UID made only of these becomes the file name as it is; anything else (slashes, spaces,
# non-ASCII, very long UIDs) is hashed, so the href stays deterministic and safe everywhere.
_SAFE_NAME = re.compile(r"[A-Za-z0-9@._-]{1,128}")
_XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
_NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"'


def item_name(uid: str) -> str:
    """The file name ``create`` uses for ``uid``: the same UID always gives the same name."""
    if _SAFE_NAME.fullmatch(uid) and not uid.startswith("."):
        return quote(uid, safe="") + ".ics"
    return hashlib.sha256(uid.encode()).hexdigest() + ".ics"


def canonical(href: str) -> str:
    """The one spelling of an href (a full URL or a path) used everywhere in syncd."""
    path = urlsplit(href).path if "://" in href else href
    return quote(unquote(path), safe="/")


def display_url(url: str) -> str:
    """``url`` without any userinfo, fit for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


class HttpStatus(Exception):
    """An HTTP status the caller has no special meaning for; ``translate`` maps it."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


@dataclass(frozen=True, slots=True)
class Member:
    """One ``<response>`` of a multistatus: an href, its status, and the props we ask for."""

    href: str
    status: int
    etag: str | None = None
    data: str | None = None
    kinds: frozenset[str] = frozenset()  # the resourcetype's children, in Clark notation
    displayname: str | None = None

    @property
    def collection(self) -> bool:
        return f"{DAV}collection" in self.kinds

    @property
    def calendar(self) -> bool:
        return f"{CALDAV}calendar" in self.kinds


def _status(text: str | None) -> int:
    """The code in ``HTTP/1.1 404 Not Found``; 200 when there is none."""
    parts = (text or "").split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 200


def declares_entities(tree: Any) -> bool:
    """Whether a parsed reply (lxml) has a DOCTYPE, and so may declare entities."""
    if tree is None or not hasattr(tree, "getroottree"):
        return False
    docinfo = tree.getroottree().docinfo
    return bool(docinfo.doctype or docinfo.internalDTD is not None)


def parse_multistatus(tree: Any) -> list[Member]:
    """The responses of a parsed multistatus (lxml tree), in order.

    Props in a non-2xx propstat are left out. Calendar data is not parsed (that is the
    engine's job, which skips a malformed item naming its href), only its line ends restored.
    """
    members: list[Member] = []
    if tree is None:
        return members
    for response in tree.iter(f"{DAV}response"):
        href = response.findtext(f"{DAV}href")
        if not href:
            continue
        status = _status(response.findtext(f"{DAV}status"))  # no status of its own: 200
        props: dict[str, Any] = {}
        for propstat in response.iter(f"{DAV}propstat"):
            if _status(propstat.findtext(f"{DAV}status")) // 100 != 2:
                continue
            for prop in propstat.iter(f"{DAV}prop"):
                props.update({child.tag: child for child in prop})
        kind = props.get(f"{DAV}resourcetype")
        members.append(
            Member(
                href=canonical(href.strip()),
                status=status,
                etag=_text(props.get(f"{DAV}getetag")),
                data=_crlf(_text(props.get(f"{CALDAV}calendar-data"))),
                kinds=frozenset() if kind is None else frozenset(str(c.tag) for c in kind),
                displayname=_text(props.get(f"{DAV}displayname")),
            )
        )
    return members


def _text(element: Any) -> str | None:
    return None if element is None or element.text is None else str(element.text)


def _crlf(ics: str | None) -> str | None:
    """XML parsing turns the CRLF of iCalendar lines into LF (XML 1.0, 2.11); put it back."""
    return None if ics is None else re.sub(r"\r?\n", "\r\n", ics)


def multiget_body(hrefs: Sequence[str]) -> str:
    links = "".join(f"<D:href>{escape(h)}</D:href>" for h in hrefs)
    return (
        f"{_XML_HEAD}<C:calendar-multiget {_NS}><D:prop><D:getetag/><C:calendar-data/>"
        f"</D:prop>{links}</C:calendar-multiget>"
    )


def query_body(inner_filter: str) -> str:
    return (
        f"{_XML_HEAD}<C:calendar-query {_NS}><D:prop><D:getetag/><C:calendar-data/></D:prop>"
        f'<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f"{inner_filter}</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )


def propfind_body(*props: str) -> str:
    inner = "".join(f"<D:{p}/>" for p in props)
    return f"{_XML_HEAD}<D:propfind {_NS}><D:prop>{inner}</D:prop></D:propfind>"


class DavSession:
    """One authenticated connection to a CalDAV server, used from worker threads only.

    Credentials are negotiated the first time the server answers 401 (Basic or Digest, as
    it asks), which costs one extra round trip per process and none after that.
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        username: str | None,
        password: str | None,
        ca_bundle: str | None,
        timeout: float,
    ) -> None:
        self.name = name
        self.client = DAVClient(
            url=url,
            username=username,
            password=password,
            ssl_verify_cert=ca_bundle if ca_bundle else True,
            enable_rfc6764=False,
        )
        self.client.timeout = timeout  # type: ignore[assignment]  # niquests takes float seconds
        self._local = threading.local()
        self.client.session.hooks["response"].append(self._count)

    def _count(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self._local.requests = getattr(self._local, "requests", 0) + 1
        return response

    def counted(
        self, what: str, url: str, fn: Callable[[], T], missing: str | None = None
    ) -> tuple[T, int]:
        """Run ``fn`` here (a worker thread): its result and the requests it made."""
        self._local.requests = 0
        with self.translate(what, url, missing):
            result = fn()
        return result, self._local.requests

    def request(
        self, method: str, url: str, body: str = "", headers: Mapping[str, str] | None = None
    ) -> DAVResponse:
        return self.client.request(url, method, body, dict(headers or {}))

    def members(self, method: str, url: str, body: str, depth: int | None) -> list[Member]:
        """A PROPFIND or REPORT answered with a multistatus; any other status raises."""
        headers = {"Content-Type": 'application/xml; charset="utf-8"'}
        if depth is not None:
            headers["Depth"] = str(depth)
        response = self.request(method, url, body, headers)
        if response.status != 207:
            raise HttpStatus(response.status)
        if declares_entities(response.tree):
            # The library's parser leaves entities unexpanded, so the text around one is cut
            # short without a word; a DAV server never needs them: refuse the reply whole.
            where = f"{method} {display_url(url)}"
            raise BackendError(self.name, f"{where}: the reply declares a DTD or entities")
        return parse_multistatus(response.tree)

    def _failure(self, status: int, where: str, missing: str | None) -> BackendError:
        if status in (401, 403):
            return AuthError(self.name, f"{where}: the server refused the credentials ({status})")
        if status == 404:
            return NotFound(self.name, missing or f"{where}: not found")
        message = f"{where} failed: HTTP {status}"
        if status in (408, 429) or status >= 500:
            return TransientError(self.name, message)
        return BackendError(self.name, message)

    @contextmanager
    def translate(self, what: str, url: str, missing: str | None = None) -> Iterator[None]:
        """Turn ``caldav``, HTTP-library and ``HttpStatus`` exceptions into ``syncd.errors``.

        ``missing`` is the message for a 404: callers on the collection say which setting
        to check, since there a 404 is a configuration problem, not a vanished item.
        """
        where = f"{what} {display_url(url)}"
        try:
            yield
        except HttpStatus as exc:
            raise self._failure(exc.status, where, missing) from exc
        except dav_error.RateLimitError as exc:
            wait = exc.retry_after_seconds or 0.0
            raise RateLimited(self.name, f"{where}: rate limited ({exc.status})", wait) from exc
        except dav_error.DAVError as exc:
            raise self._failure(exc.status or 500, where, missing) from exc
        except http.exceptions.SSLError as exc:
            raise BackendError(
                self.name, f"{where}: TLS verification failed, check ca_bundle ({exc})"
            ) from exc
        except (http.exceptions.Timeout, http.exceptions.ConnectionError) as exc:
            raise TransientError(self.name, f"{where}: {type(exc).__name__}") from exc
        except http.exceptions.RequestException as exc:
            raise BackendError(self.name, f"{where}: {type(exc).__name__}") from exc
        except SyntaxError as exc:  # lxml's XMLSyntaxError: a proxy's error page, a cut body
            raise TransientError(self.name, f"{where}: the server sent malformed XML") from exc

    def close(self) -> None:
        self.client.close()
