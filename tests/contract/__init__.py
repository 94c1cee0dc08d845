"""Contract tests shared by every provider and calendar backend (see the two *_contract modules)."""
