"""``syncd sandbox PROVIDER``: a simulated provider API on loopback, for trying syncd out.

Sandboxes by provider name, imported lazily as backends are: ``SANDBOXES`` maps a name to
``"module:function"``, where the function serves until interrupted and prints its URL and
the credentials to configure. It is given ``port`` and ``seed`` when it takes them. Adding
a provider's sandbox is one line here.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from syncd.errors import UserError

SANDBOXES: dict[str, str] = {
    "onlineafspraken": "syncd.sandbox.onlineafspraken:main",
    "agendize": "syncd.sandbox.agendize:main",
    "recras": "syncd.sandbox.recras:main",
    "qmatic": "syncd.sandbox.qmatic:main",
}


def entry_point(provider: str) -> Callable[..., Any]:
    target = SANDBOXES.get(provider)
    if target is None:
        known = ", ".join(sorted(SANDBOXES))
        hint = (
            " (the memory provider runs inside syncd and needs none)"
            if provider == "memory"
            else ""
        )
        raise UserError(f"no sandbox for provider {provider!r}{hint}; sandboxes: {known}")
    module, _, name = target.partition(":")
    try:
        found: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise UserError(
            f"the {provider} sandbox is not available in this version of syncd"
        ) from None
    return found


def main(provider: str, port: int | None, seed: int | None) -> int:
    serve = entry_point(provider)
    accepted = inspect.signature(serve).parameters
    options = {k: v for k, v in (("port", port), ("seed", seed)) if v is not None}
    unsupported = sorted(set(options) - set(accepted))
    if unsupported:
        raise UserError(f"the {provider} sandbox does not take --{', --'.join(unsupported)}")
    serve(**options)
    return 0
