"""Logging: JSON or console lines, and no configured secret ever reaches the output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
import structlog
from structlog.testing import LogCapture

from syncd.log import REDACTED, RedactSecrets, configure_logging, get_logger

SECRET = "s3cr3t-Api-Key-9f8e7d"
OTHER = "pw-Other-4711"


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def fail_with_secret() -> None:
    raise RuntimeError(f"401 for https://api.example.org/?key={SECRET}")


def test_redaction_reaches_every_value() -> None:
    class Holder:
        def __repr__(self) -> str:
            return f"Holder({SECRET})"

    event = {
        "event": f"calling with {SECRET}",
        "nested": {"headers": [("Authorization", f"Bearer {SECRET}")], "n": 3},
        "tags": {f"x{OTHER}x"},
        SECRET: "as a key",
        "error": RuntimeError(f"bad {OTHER}"),
        "holder": Holder(),
        "count": 7,
        "flag": None,
    }
    redacted = RedactSecrets([SECRET, OTHER])(None, "info", dict(event))
    assert redacted == {
        "event": f"calling with {REDACTED}",
        "nested": {"headers": [("Authorization", f"Bearer {REDACTED}")], "n": 3},
        "tags": {f"x{REDACTED}x"},
        REDACTED: "as a key",
        "error": f"RuntimeError('bad {REDACTED}')",
        "holder": f"Holder({REDACTED})",
        "count": 7,
        "flag": None,
    }
    assert event["event"] == f"calling with {SECRET}"  # the input is left alone


def test_objects_without_secrets_are_kept_as_objects() -> None:
    moment = datetime(2025, 3, 30, 2, 30)
    redacted = RedactSecrets([SECRET])(None, "info", {"event": "x", "at": moment})
    assert redacted["at"] is moment


def test_short_secrets_are_ignored_and_longest_wins() -> None:
    redact = RedactSecrets(["abc", "abcd", "abcdefgh"])
    assert redact(None, "info", {"event": "abc abcd abcdefgh"}) == {"event": "abc *** ***"}


def test_no_secrets_changes_nothing() -> None:
    event = {"event": "hello"}
    assert RedactSecrets(["", "ab"])(None, "info", event) is event


def test_processor_in_a_structlog_chain() -> None:
    capture = LogCapture()
    structlog.configure(processors=[RedactSecrets([SECRET]), capture])
    structlog.get_logger().warning("token refused", token=SECRET, sync="salon")
    assert capture.entries == [
        {"event": "token refused", "token": REDACTED, "sync": "salon", "log_level": "warning"}
    ]


def lines_of(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging(secrets=[SECRET], stream=stream)
    get_logger("syncd.sync").info(f"pulled with {SECRET}", detail={"url": [f"?k={SECRET}"]})
    (line,) = lines_of(stream)
    assert line["event"] == f"pulled with {REDACTED}"
    assert line["detail"] == {"url": [f"?k={REDACTED}"]}
    assert (line["level"], line["logger"]) == ("info", "syncd.sync")
    assert datetime.fromisoformat(str(line["timestamp"])).utcoffset() is not None
    assert SECRET not in stream.getvalue()


def test_formatted_exceptions_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging(secrets=[SECRET], stream=stream)
    try:
        fail_with_secret()
    except RuntimeError:
        get_logger("syncd.providers").exception("pull failed")
    (line,) = lines_of(stream)
    assert "Traceback" in str(line["exception"])
    assert f"RuntimeError: 401 for https://api.example.org/?key={REDACTED}" in str(
        line["exception"]
    )
    assert SECRET not in stream.getvalue()


def test_standard_library_records_take_the_same_path() -> None:
    stream = io.StringIO()
    configure_logging(secrets=[SECRET], stream=stream)
    logging.getLogger("httpx").info("HTTP Request: GET %s", f"https://x.test/?key={SECRET}")
    (line,) = lines_of(stream)
    assert line["event"] == f"HTTP Request: GET https://x.test/?key={REDACTED}"
    assert (line["level"], line["logger"]) == ("info", "httpx")


def test_console_on_a_terminal() -> None:
    stream = TerminalStream()
    configure_logging(secrets=[SECRET], stream=stream)
    try:
        fail_with_secret()
    except RuntimeError:
        get_logger("syncd").exception("sync failed", sync="salon", key=SECRET)
    text = stream.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])
    assert "sync failed" in text
    assert "Traceback" in text
    assert REDACTED in text
    assert SECRET not in text


@pytest.mark.parametrize(
    ("stream", "fmt", "is_json"),
    [
        (TerminalStream(), "json", True),
        (io.StringIO(), "console", False),
        (io.StringIO(), "auto", True),
    ],
)
def test_format_choice(stream: io.StringIO, fmt: str, is_json: bool) -> None:
    configure_logging(fmt=fmt, stream=stream)  # type: ignore[arg-type]
    get_logger("syncd").info("hello")
    first = stream.getvalue().splitlines()[0]
    assert first.startswith("{") is is_json


def test_level_filters_both_kinds_of_logger() -> None:
    stream = io.StringIO()
    configure_logging(level="warning", stream=stream)
    get_logger("syncd").info("quiet")
    logging.getLogger("uvicorn").info("quiet too")
    get_logger("syncd").warning("loud")
    assert [line["event"] for line in lines_of(stream)] == ["loud"]


def test_configuring_again_replaces_the_output() -> None:
    log = get_logger("syncd.early")  # made before configuration, as module loggers are
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(level="debug", secrets=[OTHER], stream=second)
    log.debug(f"after {OTHER}")
    assert first.getvalue() == ""
    assert [line["event"] for line in lines_of(second)] == [f"after {REDACTED}"]


def test_unknown_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'verbose'"):
        configure_logging(level="verbose")
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        configure_logging(fmt="xml")  # type: ignore[arg-type]
