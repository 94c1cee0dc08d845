"""Reading a config: TOML text -> ``${ENV}`` and ``*_file`` resolved -> validated ``Config``.

Every problem is collected before anything is raised, so one ``syncd check`` shows the
whole list: environment and file problems, validation errors and references between
sections (a sync naming an unknown account) are all checked, each as one ``key: message``
line in a single ``ConfigError``. Nothing here lets a traceback or a secret reach the user.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from syncd.config.models import Config
from syncd.config.problems import SECRET_NAMES, describe, document_order, format_path, scrub
from syncd.errors import ConfigError

PathKey = tuple[str | int, ...]

#: Used when neither ``-c`` nor ``SYNCD_CONFIG`` names a file.
DEFAULT_CONFIG_NAME = "config.toml"

# ``${NAME}`` is replaced by the variable; ``$${NAME}`` stays as the literal text ``${NAME}``.
_ENV_REFERENCE = re.compile(r"\$(\$?)\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Unresolved:
    """Stands in for a value that could not be resolved; its own problem is reported."""


class _Preparer:
    """Expands ``${ENV}``, reads ``*_file`` secrets, and remembers what is sensitive."""

    def __init__(self, environ: Mapping[str, str], base_dir: Path | None) -> None:
        self.environ = environ
        self.base_dir = base_dir
        self.problems: list[tuple[PathKey, str]] = []
        self.sensitive: set[str] = set()

    def prepare(self, value: Any, path: PathKey = ()) -> Any:
        if isinstance(value, str):
            return self._expand(value, path)
        if isinstance(value, list):
            return [self.prepare(item, (*path, index)) for index, item in enumerate(value)]
        if isinstance(value, dict):
            table = {key: self.prepare(item, (*path, key)) for key, item in value.items()}
            self._read_secret_files(table, path)
            for key in SECRET_NAMES & table.keys():
                if isinstance(table[key], str):
                    self.sensitive.add(table[key])
            return table
        return value

    def _expand(self, text: str, path: PathKey) -> Any:
        missing: list[str] = []

        def substitute(match: re.Match[str]) -> str:
            escaped, name = match.groups()
            if escaped:
                return "${" + name + "}"
            if not _ENV_NAME.fullmatch(name):
                missing.append(f"${{{name}}} is not a valid environment variable reference")
                return ""
            if name not in self.environ:
                missing.append(f"environment variable {name} is not set")
                return ""
            value = self.environ[name]
            self.sensitive.add(value)  # any variable may carry a secret
            return value

        expanded = _ENV_REFERENCE.sub(substitute, text)
        if missing:
            self.problems.extend((path, message) for message in missing)
            return _Unresolved()
        if "://" in expanded and "@" in expanded:
            # A password written into a URL (postgresql://user:pw@host/db) is a secret too.
            try:
                password = urlsplit(expanded).password
            except ValueError:
                password = None
            if password:
                self.sensitive.add(password)
        return expanded

    def _read_secret_files(self, table: dict[str, Any], path: PathKey) -> None:
        for file_key in [k for k in table if k.endswith("_file") and k[:-5] in SECRET_NAMES]:
            key = file_key[:-5]
            where = table.pop(file_key)
            if key in table:
                self.problems.append(((*path, file_key), f"give {key} or {file_key}, not both"))
                table[key] = _Unresolved()
            elif isinstance(where, _Unresolved):
                table[key] = where
            elif not isinstance(where, str) or not where:
                self.problems.append(((*path, file_key), "must be a file path"))
                table[key] = _Unresolved()
            else:
                table[key] = self._read_secret(where, (*path, file_key))

    def _read_secret(self, where: str, path: PathKey) -> Any:
        # Relative to the config file, so the daemon's working directory does not matter.
        file = Path(where).expanduser()
        if not file.is_absolute() and self.base_dir is not None:
            file = self.base_dir / file
        try:
            secret = file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as err:
            self.problems.append((path, f"cannot read {file}: {err.strerror or err}"))
            return _Unresolved()
        except UnicodeDecodeError:
            self.problems.append((path, f"{file} is not UTF-8 text"))
            return _Unresolved()
        if not secret:
            self.problems.append((path, f"{file} is empty"))
            return _Unresolved()
        self.sensitive.add(secret)
        return secret


def check_references(data: Mapping[str, Any]) -> list[tuple[PathKey, str]]:
    """Names that point nowhere, and duplicate sync names, found in the raw tables.

    Works on the data before validation and skips whatever has the wrong shape (its own
    error is reported by validation), so these problems are listed alongside the others.
    """
    providers, calendars = _table(data, "providers"), _table(data, "calendars")
    syncs = data.get("syncs")
    problems: list[tuple[PathKey, str]] = []
    first_index: dict[str, int] = {}
    for index, sync in enumerate(syncs if isinstance(syncs, list) else []):
        if not isinstance(sync, dict):
            continue
        name = sync.get("name")
        if isinstance(name, str):
            if name in first_index:
                also = format_path(("syncs", first_index[name]))
                problems.append(
                    (("syncs", index, "name"), f"duplicate sync name {name!r} ({also})")
                )
            first_index.setdefault(name, index)
        account = sync.get("provider")
        if isinstance(account, str) and account not in providers:
            problems.append(
                (("syncs", index, "provider"), _unknown("provider", account, providers))
            )
        for key in ("calendars", "busy_from"):
            names = sync.get(key)
            for position, calendar in enumerate(names if isinstance(names, list) else []):
                if isinstance(calendar, str) and calendar not in calendars:
                    message = _unknown("calendar", calendar, calendars)
                    problems.append((("syncs", index, key, position), message))
    for feed_name, feed in _table(data, "feeds").items():
        target = feed.get("sync") if isinstance(feed, dict) else None
        if isinstance(target, str) and target not in first_index:
            problems.append((("feeds", feed_name, "sync"), _unknown("sync", target, first_index)))
    return problems


def _table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _unknown(what: str, name: str, known: Mapping[str, Any]) -> str:
    listed = ", ".join(sorted(known)) if known else "none are configured"
    return f"unknown {what} {name!r} (known: {listed})"


def parse_config(
    text: str,
    source: str = "<config>",
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Validate config ``text``; raise ``ConfigError`` listing every problem found.

    ``base_dir`` anchors relative ``*_file`` and ``ca_bundle`` paths (the config file's
    directory when loading a file); ``environ`` defaults to ``os.environ``.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([_syntax_problem(err)], source) from None
    preparer = _Preparer(os.environ if environ is None else environ, base_dir)
    data = preparer.prepare(raw)
    unresolved = [path for path, _ in preparer.problems]
    found = list(preparer.problems)
    config: Config | None = None
    try:
        config = Config.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        for error in err.errors(include_url=False):
            path, message = describe(error, data, preparer.sensitive)
            if not any(path[: len(bad)] == bad for bad in _targets(unresolved)):
                found.append((path, message))
    found.extend(check_references(data))
    if found or config is None:
        found.sort(key=lambda problem: document_order(problem[0], data))
        lines = list(dict.fromkeys(f"{format_path(path)}: {message}" for path, message in found))
        raise ConfigError(scrub(lines, preparer.sensitive), source)
    return config


def _targets(paths: list[PathKey]) -> list[PathKey]:
    """An unresolved ``x_file`` leaves ``x`` unresolved too: silence errors about both."""
    extra = [(*p[:-1], str(p[-1])[:-5]) for p in paths if p and str(p[-1]).endswith("_file")]
    return paths + extra


def _syntax_problem(err: tomllib.TOMLDecodeError) -> str:
    # Python 3.11's TOMLDecodeError has no line attributes; the position is in the text.
    message = str(err)
    where = re.search(r"\(at line (\d+), column (\d+)\)$", message)
    if where:
        text = message[: where.start()].strip()
        return f"line {where[1]}, column {where[2]}: TOML syntax error: {text}"
    return f"TOML syntax error: {message}"


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$SYNCD_CONFIG`` when set, else ``config.toml`` in the current directory."""
    value = (os.environ if environ is None else environ).get("SYNCD_CONFIG", "").strip()
    return Path(value).expanduser() if value else Path(DEFAULT_CONFIG_NAME)


def load_config(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Config:
    """Read and validate the config file at ``path`` (default: ``default_config_path()``)."""
    file = Path(path) if path is not None else default_config_path(environ)
    try:
        content = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            ["file not found (pass -c PATH or set SYNCD_CONFIG)"], str(file)
        ) from None
    except IsADirectoryError:
        raise ConfigError(["is a directory, not a config file"], str(file)) from None
    except OSError as err:
        raise ConfigError([f"cannot read: {err.strerror or err}"], str(file)) from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError([f"not UTF-8 text (bad byte at offset {err.start})"], str(file)) from None
    return parse_config(text, str(file), base_dir=file.absolute().parent, environ=environ)


_DEMO_CONFIG = """
# The demo needs no account: a simulated provider and calendar, kept in this process.
[store]
url = "sqlite:///syncd-demo.db"

[server]
listen = "127.0.0.1:8765"

[providers.demo]
kind = "memory"
seed = 25

[calendars.demo-calendar]
kind = "memory"

[[syncs]]
name = "demo"
provider = "demo"
calendars = ["demo-calendar"]
direction = "two-way"
"""


def embedded_default_config() -> Config:
    """The built-in config of ``syncd demo``: one seeded memory account, one memory calendar,
    one two-way sync, state in ``syncd-demo.db`` in the current directory."""
    return parse_config(_DEMO_CONFIG, "<embedded demo config>", environ={})
