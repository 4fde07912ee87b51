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
    """Seconds per call of repeated calls (after warm-up).

    Attributes:
        times: wall-clock seconds per call, one per repeat.
        cpu_times: CPU seconds of the calling thread per call, one per repeat. On a shared
            machine the wall clock also counts time spent waiting for a core; the thread's
            CPU clock does not, so single-threaded ratios stay meaningful under load.
    """

    times: tuple[float, ...]
    cpu_times: tuple[float, ...] = ()

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_times)

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


def _once(fn: Callable[[], Any], inner: int) -> tuple[float, float]:
    """(wall, thread-CPU) seconds per call of ``inner`` back-to-back calls."""
    start, start_cpu = time.perf_counter(), time.thread_time()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner, (time.thread_time() - start_cpu) / inner


def measure(fn: Callable[[], Any], warmup: int = 1, repeats: int = 5, inner: int = 1) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then time ``repeats`` samples of ``inner`` calls."""
    return compare({"fn": fn}, warmup, repeats, inner)["fn"]


def compare(
    contenders: Mapping[str, Callable[[], Any]],
    warmup: int = 1,
    repeats: int = 5,
    inner: int = 1,
    setup: Mapping[str, Callable[[], Any]] | None = None,
) -> dict[str, Timing]:
    """Time several functions round-robin in one run (each round samples each once).

    Interleaving means a slow spell on a shared machine lands on all contenders alike,
    so the ratios of medians are stable even when the absolute times are not. A sample is
    ``inner`` back-to-back calls (for calls too short to time alone); times are per call.
    ``setup[name]``, when given, runs untimed before each of that contender's warm-up calls
    and samples (e.g. the thread count it is timed with).
    """
    if not contenders:
        raise ValueError("compare() needs at least one contender")
    if repeats < 1 or inner < 1:
        raise ValueError(f"repeats and inner must be >= 1, got {repeats} and {inner}")
    setup = setup or {}
    unknown = set(setup) - set(contenders)
    if unknown:
        raise KeyError(f"setup for no contender: {sorted(unknown)}")

    def prepare(name: str) -> None:
        if name in setup:
            setup[name]()

    for name, fn in contenders.items():
        for _ in range(warmup):
            prepare(name)
            fn()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            prepare(name)
            samples[name].append(_once(fn, inner))
    return {
        name: Timing(tuple(w for w, _ in s), tuple(c for _, c in s))
        for name, s in samples.items()
    }


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
