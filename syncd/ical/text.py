"""TEXT values and content lines as RFC 5545 writes them: cleaning, escaping, folding.

syncd writes its own events as text instead of through icalendar's object model because
rendering is on the hot path (icalendar builds ~1,300 events/s here; this ~20 times more).
The rules below are the whole of what that writer needs, and each is checked against
icalendar's parser by ``tests/test_ical.py``.
"""

from __future__ import annotations

import re

# Control characters other than TAB and LF cannot appear in a TEXT value (RFC 5545 3.3.11
# allows no escape for them) and several clients reject a line containing one.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NEWLINES = re.compile(r"\r\n?")
# A lone surrogate (from a provider's broken JSON escape) cannot be encoded as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED = re.compile(r"\\([\\,;:nN])")
_SPECIAL = re.compile(r"[\\;,\n]")
needs_escape = _SPECIAL.search  # not None when ``escape_text`` would change the value

# The octet limit of one physical line, without its CRLF (RFC 5545 3.1).
LINE_OCTETS = 75


def clean_text(value: str) -> str:
    """``value`` as a calendar can hold it: CRLF and CR become LF, other controls are dropped,
    lone surrogates become U+FFFD, and U+FEFF goes (readers, icalendar among them, drop it as
    a byte-order mark at the start of a value, so it would not survive a re-save).

    Every text syncd writes goes through here first, so what a reader gets back is exactly
    ``clean_text(original)``; the round-trip tests compare against this, not the raw input.
    """
    if value.isprintable():
        return value
    value = _CONTROL.sub("", _NEWLINES.sub("\n", value)).replace("\ufeff", "")
    return _SURROGATE.sub("\ufffd", value)


def escape_text(value: str) -> str:
    r"""Escape a cleaned TEXT value: backslash, ``;``, ``,`` and newline (as ``\n``)."""
    if _SPECIAL.search(value) is None:  # most values: one scan instead of four replaces
        return value
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def unescape_text(value: str) -> str:
    r"""Undo ``escape_text`` in one pass (``\N`` is a newline too; ``\:`` is tolerated)."""
    if "\\" not in value:
        return value
    return _ESCAPED.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def fold(line: str) -> str:
    """One content line as CRLF-terminated physical lines of at most 75 octets each.

    Breaks fall between characters, never inside a UTF-8 sequence, and never right after a
    backslash that starts an escape: some clients unfold an escape split across lines wrongly
    (icalendar #1501).
    """
    if len(line) <= LINE_OCTETS and line.isascii():  # isascii() is O(1) on str
        return line + "\r\n"
    data = line.encode()
    if len(data) <= LINE_OCTETS:
        return line + "\r\n"
    parts: list[bytes] = []
    start = 0
    limit = LINE_OCTETS  # continuation lines hold one octet less, after their leading space
    while len(data) - start > limit:
        cut = start + limit
        while data[cut] & 0xC0 == 0x80:  # a UTF-8 continuation octet: back to its lead
            cut -= 1
        if cut - 1 > start and _opens_escape(data, cut - 1):
            cut -= 1
        parts.append(data[start:cut])
        start = cut
        limit = LINE_OCTETS - 1
    parts.append(data[start:])
    return b"\r\n ".join(parts).decode() + "\r\n"


def _opens_escape(data: bytes, index: int) -> bool:
    """Whether ``data[index]`` is a backslash starting an escape: an odd run of them ends there.

    (0x5C never occurs inside a multi-octet UTF-8 sequence, so counting octets is safe.)
    """
    run = 0
    while index >= 0 and data[index] == 0x5C:
        run += 1
        index -= 1
    return run % 2 == 1
