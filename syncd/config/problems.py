"""Turning validation errors into ``key.path: message`` lines a user can act on.

Pydantic locations are machine paths (``('providers', 'salon', 'agendize', 'api_key')``);
here they become the keys the user wrote (``providers.salon.api_key``), and pydantic's
wording becomes the product's. The offending value is quoted back only when it is a short
scalar that cannot be a secret: never for secret keys, unknown keys, or anything that came
from the environment or a secret file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Sequence
from datetime import date, datetime, time
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from syncd.config.backends import CALENDAR_KINDS, PROVIDER_KINDS
from syncd.config.models import Config, secret_field_names
from syncd.config.types import PROBLEM

Path = tuple[str | int, ...]

SECRET_NAMES = secret_field_names()

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TYPE_WORDS = {
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
}


_BOUND_WORDS = {
    "greater_than": ("greater than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
}


def format_path(path: Path) -> str:
    """``('syncs', 2, 'conflict')`` -> ``syncs[2].conflict``; odd keys are quoted TOML-style."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = part if _PLAIN_KEY.fullmatch(part) else '"' + part.replace('"', '\\"') + '"'
            text += f".{key}" if text else key
    return text


def document_path(loc: Sequence[str | int], data: Any) -> Path:
    """The keys the user wrote, from a pydantic location: union tags and ``[key]`` dropped."""
    path: list[str | int] = []
    node: Any = data
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(node, dict) and part not in node and node.get("kind") == part:
            continue  # the discriminated union's tag, not a key in the file
        path.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(path)


def describe(error: ErrorDetails, data: Any, sensitive: Collection[str]) -> tuple[Path, str]:
    """One pydantic error as ``(path, message)``."""
    path = document_path(error["loc"], data)
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    shown: Any = error.get("input")
    quote = "[key]" not in error["loc"]
    if kind == PROBLEM:
        if "key" in ctx:
            path = (*path, ctx["key"])
        message = str(ctx["message"])
        quote = quote and bool(ctx.get("quote", True))
    elif kind == "extra_forbidden":
        message, quote = "unknown key" + _did_you_mean(path, data), False
    elif kind == "missing":
        message, quote = "required", False
        if path and path[-1] in SECRET_NAMES:
            message += f" (or give {path[-1]}_file)"
    elif kind in ("literal_error", "enum"):
        message = "must be one of " + ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        known = CALENDAR_KINDS if path[:1] == ("calendars",) else PROVIDER_KINDS
        path, shown = (*path, "kind"), ctx.get("tag")
        lead = "unknown kind" if kind == "union_tag_invalid" else "required"
        message = f"{lead}; known kinds: {', '.join(known)}"
    elif kind in _TYPE_WORDS:
        message = _TYPE_WORDS[kind]
    elif kind in _BOUND_WORDS:
        word, bound = _BOUND_WORDS[kind]
        message = f"must be {word} {ctx[bound]}"
    elif kind == "too_short":
        message, quote = f"needs at least {ctx['min_length']} item(s)", False
    else:
        message = re.sub(r"^(Value error|Assertion failed), ", "", error["msg"])
        message = message[:1].lower() + message[1:]
    if quote and not (path and path[-1] in SECRET_NAMES):
        text = _show(shown, sensitive, scalars_only=kind == PROBLEM)
        if text:
            message += f" (got {text})"
    return path, message


def _show(value: Any, sensitive: Collection[str], scalars_only: bool) -> str:
    """How a bad value is quoted back; empty when it must not or need not be."""
    if isinstance(value, str):
        if any(secret in value for secret in sensitive if secret) or _has_password(value):
            return ""
        return repr(value) if len(value) <= 60 else f"a string of {len(value)} characters"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if scalars_only:
        return ""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, datetime | date | time):
        return "a date/time"
    return ""


def _has_password(text: str) -> bool:
    try:
        return "://" in text and urlsplit(text).password is not None
    except ValueError:
        return True


def _did_you_mean(path: Path, data: Any) -> str:
    allowed = _keys_at(path[:-1], data)
    close = difflib.get_close_matches(str(path[-1]), allowed, n=1) if path else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def _keys_at(path: Path, data: Any) -> list[str]:
    """Keys the table at ``path`` accepts, found by walking the models along the way."""
    annotation: Any = Config
    node: Any = data
    for part in path:
        annotation = _resolve(annotation, node)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        else:
            args = get_args(annotation)
            if not args:
                return []
            annotation = args[-1] if get_origin(annotation) is dict else args[0]
        node = node.get(part) if isinstance(node, dict) else None
    model = _resolve(annotation, node)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    keys = list(model.model_fields)
    return keys + [f"{key}_file" for key in keys if key in SECRET_NAMES]


def _resolve(annotation: Any, node: Any) -> Any:
    """Strip ``Annotated`` and pick the union member the data's ``kind`` selects."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _resolve(get_args(annotation)[0], node)
    if origin in (Union, UnionType):
        kind = node.get("kind") if isinstance(node, dict) else None
        for member in get_args(annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                field = member.model_fields.get("kind")
                if field is None or field.default == kind:
                    return member
    return annotation


def document_order(path: Path, data: Any) -> tuple[int, ...]:
    """Where ``path`` sits in the file, so problems can be listed top to bottom.

    Keys the file does not have (a missing required key) sort after their table's keys.
    """
    order: list[int] = []
    node: Any = data
    for part in path:
        if isinstance(node, dict) and part in node:
            order.append(list(node).index(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            order.append(part)
            node = node[part]
        else:
            order.append(1 << 30)
            node = None
    return tuple(order)


def scrub(lines: list[str], sensitive: Collection[str]) -> list[str]:
    """Last line of defence: replace any sensitive value that got through with ``***``.

    Values under six characters are left alone: scrubbing them would mangle the message
    (a feed token ``short`` inside "too short") and protects nothing worth a message.
    """
    for secret in sorted((s for s in sensitive if len(s) >= 6), key=len, reverse=True):
        lines = [line.replace(secret, "***") for line in lines]
    return lines
