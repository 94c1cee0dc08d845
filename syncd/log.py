"""Logging: structlog events as JSON lines or console text, with secrets redacted.

``configure_logging()`` sends structlog events and the standard library's records (httpx,
uvicorn, APScheduler) through one processor chain to one stream, so every line, whatever
wrote it, is rendered the same way and passes the same redaction:

    add level -> add logger name -> ISO timestamp (UTC) -> stack / exception to text
        -> RedactSecrets -> JSONRenderer (not a terminal, or fmt="json")
                            ConsoleRenderer (a terminal, or fmt="console")

Exceptions are turned into text *before* redaction, on the console too: a pretty
traceback renderer would print the exception after redaction had run, and exception
messages are exactly where secrets leak (an HTTP error quoting a URL with its api key).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

REDACTED = "***"

#: Secrets shorter than this are not redacted: replacing every "ab" would ruin the logs
#: and protect nothing a guess would not find.
MIN_SECRET_LENGTH = 4

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

Format = Literal["auto", "json", "console"]

_PLAIN = (int, float, bool, type(None))


class RedactSecrets:
    """A structlog processor replacing every configured secret with ``***``.

    It looks everywhere in the event dict: the message, every value, strings nested in
    dicts, lists and tuples, keys, and the text of other objects (an exception passed as
    a value is replaced by its redacted ``repr`` when that ``repr`` holds a secret). It
    returns a new dict and never changes the one it is given.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        kept = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        # Longest first, so a secret that contains another is replaced whole.
        self._pattern = re.compile("|".join(map(re.escape, kept))) if kept else None

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        if self._pattern is None:
            return event_dict
        return cast(EventDict, self.redact(event_dict))

    def redact(self, value: Any) -> Any:
        """``value`` with every secret in it replaced; unchanged parts are kept as they are."""
        if self._pattern is None or isinstance(value, _PLAIN):
            return value
        if isinstance(value, str):
            return self._pattern.sub(REDACTED, value)
        if isinstance(value, Mapping):
            return {self.redact(key): self.redact(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return type(value)(self.redact(item) for item in value)
        text = repr(value)
        return self._pattern.sub(REDACTED, text) if self._pattern.search(text) else value


def _renderer(fmt: str, stream: TextIO) -> Processor:
    tty = _is_tty(stream)
    if fmt == "console" or (fmt == "auto" and tty):
        return structlog.dev.ConsoleRenderer(
            colors=tty, exception_formatter=structlog.dev.plain_traceback
        )
    return structlog.processors.JSONRenderer()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _SyncdHandler(logging.StreamHandler[TextIO]):
    """The root handler ``configure_logging`` installs, so calling it again replaces it."""


def configure_logging(
    level: str = "info",
    fmt: Format = "auto",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Set up structlog and the standard ``logging`` root for the whole process.

    ``level`` is debug/info/warning/error; ``fmt`` is auto/json/console, where auto means
    JSON lines unless ``stream`` (default: standard error) is a terminal. ``secrets`` are
    redacted from every line (pass ``Config.secrets()``). Safe to call again, e.g. once
    with defaults at start-up and once the config is loaded.
    """
    if level.lower() not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    if fmt not in ("auto", "json", "console"):
        raise ValueError(f"unknown log format {fmt!r}; use auto, json or console")
    threshold = LEVELS[level.lower()]
    out = sys.stderr if stream is None else stream

    stamped: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=stamped,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            RedactSecrets(secrets),
            _renderer(fmt, out),
        ],
    )
    handler = _SyncdHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SyncdHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *stamped,
            # Resolve exc_info=True now, while the exception is still being handled.
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        # Not cached: module-level loggers must follow a later configure_logging() call.
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> FilteringBoundLogger:
    """The logger for a module: ``log = get_logger(__name__)``; the name is in every line."""
    return cast(FilteringBoundLogger, structlog.get_logger(name))
