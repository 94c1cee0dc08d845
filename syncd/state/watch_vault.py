"""What a provider's push subscription needs across restarts, kept in the state store.

A watch vault holds, per provider account, the hook credentials syncd generated for it and
the subscription's id and age (``syncd.providers.ag_watch`` says what Agendize keeps). It is a
row of the ``cursors`` table under the scope ``watch:<account>`` and the sync name ``""``
(no sync owns it; sync names cannot be empty), so it needs no schema change, survives restarts
and reloads, and is shared by every sync of the account.

The hook password is kept in clear: it must be sent again at every re-registration. It is a
random value that opens nothing but syncd's own hook for that account, it never reaches a log,
and the state database is as private as the config that holds the providers' own secrets.
Dropping the row is harmless: new credentials are generated and the watch registered again.
"""

from __future__ import annotations

from collections.abc import Mapping

from syncd.state.store import Store


def vault_scope(account: str) -> str:
    return f"watch:{account}"


class StoredWatchVault:
    """The ``WatchVault`` of one provider account in ``store``."""

    def __init__(self, store: Store, account: str) -> None:
        self.store = store
        self.scope = vault_scope(account)

    def __repr__(self) -> str:
        return f"StoredWatchVault({self.scope!r})"

    def load(self) -> Mapping[str, str] | None:
        return self.store.cursor(self.scope)

    def save(self, value: Mapping[str, str]) -> None:
        self.store.save_cursors("", {self.scope: dict(value)})
