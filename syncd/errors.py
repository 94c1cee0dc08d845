"""The exceptions syncd raises, and what each promises to the code that catches it.

    SyncdError                  base of everything below
    ├── UserError               the user must act; printed as one line, exit code 2, no traceback
    │   └── ConfigError         the config file is wrong; carries every problem with its key path
    ├── StoreError              the state database cannot be used (locked, newer schema, corrupt)
    ├── BackendError            a provider or a calendar failed; names the backend
    │   ├── AuthError           credentials refused (401/403); retrying will not help
    │   ├── NotFound            the item (or the collection) does not exist
    │   ├── PreconditionFailed  an etag did not match: someone else changed the item
    │   │   └── AlreadyExists   a create found the item there already (a replay after a crash)
    │   ├── Refused             the provider understood and said no (slot taken, outside hours)
    │   ├── TransientError      timeouts, connection resets, 5xx, 429; safe to retry later
    │   │   └── RateLimited     429 or equivalent, with the server's Retry-After in seconds
    │   └── TokenExpired        a sync token or cursor was rejected: resync the window
    ├── BadItem                 one item from a backend is malformed; the item and field are named,
    │                           the rest of the sync goes on
    └── GuardTripped            a plan would delete too much; nothing was applied

Only ``TransientError`` (and subclasses) are retried by the scheduler. Everything else is
recorded against the run or the item and shown in ``syncd status``. No message built here ever
contains a secret: backends build messages from names and URLs only.
"""

from __future__ import annotations


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""


class UserError(SyncdError):
    """Something the user must fix; the CLI prints ``str(err)`` and exits with 2."""


class ConfigError(UserError):
    """The configuration is invalid. ``problems`` holds one ``key.path: message`` line each."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))

    def __str__(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s)"]
        lines.extend(f"  {p}" for p in self.problems)
        return "\n".join(lines)


class StoreError(SyncdError):
    """The state database cannot be opened or written."""


class BackendError(SyncdError):
    """A provider or calendar call failed. ``backend`` is the configured name."""

    def __init__(self, backend: str, message: str) -> None:
        self.backend = backend
        self.message = message
        super().__init__(f"{backend}: {message}")


class AuthError(BackendError):
    """Credentials were refused. Not retried: the user must fix the credentials."""


class NotFound(BackendError):
    """The item or collection does not exist (404, or the provider's equivalent)."""


class PreconditionFailed(BackendError):
    """The item changed since its etag was read (HTTP 412 on If-Match)."""


class AlreadyExists(PreconditionFailed):
    """A create (If-None-Match: *) found an item at that place: adopt it, never duplicate."""

    def __init__(self, backend: str, message: str, href: str = "") -> None:
        super().__init__(backend, message)
        self.href = href


class Refused(BackendError):
    """The provider refused a write for a business reason; recorded as a conflict."""


class TransientError(BackendError):
    """A failure that may pass: timeout, reset, 5xx, 507. Retried with backoff and jitter."""


class RateLimited(TransientError):
    """The backend asked us to slow down; ``retry_after`` is in seconds (0 when not given)."""

    def __init__(self, backend: str, message: str, retry_after: float = 0.0) -> None:
        super().__init__(backend, message)
        self.retry_after = retry_after


class TokenExpired(BackendError):
    """A sync token or cursor was rejected. The caller drops it and resyncs the window once."""


class BadItem(SyncdError):
    """One item could not be read. Names the item and the field; the sync goes on without it."""

    def __init__(self, item: str, field: str, message: str) -> None:
        self.item = item
        self.field = field
        self.message = message
        super().__init__(f"{item}: {field}: {message}")


class GuardTripped(SyncdError):
    """The mass-delete guard stopped a plan. Nothing was applied and no cursor moved."""
