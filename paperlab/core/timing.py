"""Benchmark helpers: warm-up, median of repeats, ratios measured in one run, peak memory.

Timings are never asserted in tests (the machine is shared and noisy); benchmarks report
*ratios* of medians measured side by side, interleaved so that drift hits every contender.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated calls (after warm-up)."""

    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def iqr(self) -> float:
        """Inter-quartile range in seconds (0 for fewer than 4 repeats)."""
        if len(self.times) < 4:
            return 0.0
        q = statistics.quantiles(self.times, n=4)
        return q[2] - q[0]


def _once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(fn: Callable[[], Any], warmup: int = 1, repeats: int = 5) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    return Timing(tuple(_once(fn) for _ in range(repeats)))


def compare(
    contenders: Mapping[str, Callable[[], Any]], warmup: int = 1, repeats: int = 5
) -> dict[str, Timing]:
    """Time several functions round-robin in one run (each round calls each once).

    Interleaving means a slow spell on a shared machine lands on all contenders alike,
    so the ratios of medians are stable even when the absolute times are not.
    """
    if not contenders:
        raise ValueError("compare() needs at least one contender")
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            times[name].append(_once(fn))
    return {name: Timing(tuple(t)) for name, t in times.items()}


def ratios(timings: Mapping[str, Timing], baseline: str) -> dict[str, float]:
    """Speed-up of each contender over ``baseline``: baseline median / contender median."""
    if baseline not in timings:
        raise KeyError(f"baseline '{baseline}' not among {sorted(timings)}")
    base = timings[baseline].median
    return {name: base / t.median for name, t in timings.items()}


_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _status_bytes(field: str) -> int | None:
    """A ``VmXXX:`` field of ``/proc/self/status`` in bytes, or None off Linux."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_memory(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``fn`` once and return ``(its result, peak extra bytes it needed)``.

    On Linux this is the rise of the process's peak resident set (VmHWM, reset through
    ``/proc/self/clear_refs``), so it counts NumPy, torch and C allocations alike.
    Elsewhere it falls back to ``tracemalloc`` (Python allocations only).
    """
    gc.collect()
    rss = _status_bytes("VmRSS")
    try:
        _CLEAR_REFS.write_text("5")
        linux = rss is not None
    except OSError:
        linux = False
    if linux:
        result = fn()
        hwm = _status_bytes("VmHWM")
        return result, max(0, (hwm or 0) - rss)
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak
