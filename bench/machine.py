"""What machine a benchmark ran on, and what it cost the process: shared by every bench.

``calibration_ms`` is the best of five runs of a fixed pure-Python loop: divide it out to
compare figures taken on different machines.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from typing import Any


def environment() -> dict[str, Any]:
    """Where the figures come from: Python, the system, the CPUs, the load, the calibration."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": platform.system(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_before": load_average(),
        "calibration_ms": calibration_ms(),
    }


def calibration_ms() -> float:
    best = float("inf")
    for _ in range(5):
        begin = time.process_time()
        sum(range(1_000_000))
        best = min(best, time.process_time() - begin)
    return best * 1000


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return None


def peak_rss_mib() -> float:
    """The process's peak resident set size; Linux reports KiB, macOS bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes vs KiB
