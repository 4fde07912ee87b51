"""Request traces: the reference CSV format, the raw Azure 2023 trace, seeded Poisson traces.

A :class:`Trace` is three parallel numpy arrays (arrival seconds, prompt tokens, output tokens),
so a million requests take ~16 MB. ``token_size`` counts the first token (the one the prompt
phase produces), as in the reference simulator.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REFERENCE_COLUMNS = ("request_id", "request_type", "application_id", "arrival_timestamp",
                     "batch_size", "prompt_size", "token_size")
AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


class TraceError(ValueError):
    """A malformed trace; the message names the file, the row and the problem."""


@dataclass(frozen=True)
class Trace:
    """A request trace.

    Attributes:
        arrival_s: (n,) float64 arrival times in seconds, non-decreasing.
        prompt_tokens: (n,) int64 prompt sizes, >= 1.
        output_tokens: (n,) int64 output sizes including the first token, >= 1.
        request_id: (n,) int64 ids (row order when the source has none).
        name: a label for tables and plots.
    """

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    request_id: np.ndarray
    name: str = "trace"

    def __post_init__(self) -> None:
        for field in ("arrival_s", "prompt_tokens", "output_tokens", "request_id"):
            _check_column(self.name, field, getattr(self, field), integer=field != "arrival_s")
        n = len(self.arrival_s)
        for field in ("prompt_tokens", "output_tokens", "request_id"):
            if len(getattr(self, field)) != n:
                raise TraceError(f"{self.name}: {field} has {len(getattr(self, field))} "
                                 f"entries, arrival_s has {n}")
        _validate(self.name, self.arrival_s, self.prompt_tokens, self.output_tokens, first_row=0)

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1] - self.arrival_s[0]) if len(self) else 0.0

    def head(self, n: int) -> Trace:
        """The first ``n`` requests."""
        return Trace(self.arrival_s[:n], self.prompt_tokens[:n], self.output_tokens[:n],
                     self.request_id[:n], self.name)

    def to_csv(self, path: str | Path) -> None:
        """Write the reference simulator's CSV format (what its ``run.py`` reads)."""
        with open(path, "w", newline="") as f:
            f.write(",".join(REFERENCE_COLUMNS) + "\n")
            rows = zip(self.request_id.tolist(), self.arrival_s.tolist(),
                       self.prompt_tokens.tolist(), self.output_tokens.tolist(), strict=True)
            for rid, t, p, o in rows:
                f.write(f"{rid},2,0,{t!r},1,{p},{o}\n")


def _check_column(name: str, field: str, values: object, integer: bool) -> None:
    """Raise TraceError unless ``values`` is a 1-D numpy array of integers (``integer``) or of
    real numbers: a float token count would silently reach the simulator's integer arithmetic,
    a NaN one would pass every ``<= 0`` check."""
    if not isinstance(values, np.ndarray) or values.ndim != 1:
        shape = getattr(values, "shape", type(values).__name__)
        raise TraceError(f"{name}: {field} must be a 1-D numpy array, got {shape}")
    kinds = "iu" if integer else "iuf"  # numpy dtype kinds: signed, unsigned ints, floats
    if values.dtype.kind not in kinds and values.size:  # np.asarray([]) is float: fine
        what = "integers (token counts / ids)" if integer else "real numbers (seconds)"
        raise TraceError(f"{name}: {field} must hold {what}, got dtype {values.dtype}")


def _validate(name: str, arrival: np.ndarray, prompt: np.ndarray, output: np.ndarray,
              first_row: int) -> None:
    """Raise TraceError naming the first bad row (1-based data rows, header excluded)."""
    checks = (
        (~np.isfinite(arrival), "arrival time is not a finite number"),
        (arrival < 0, "arrival time is negative"),
        (prompt <= 0, "prompt size must be a positive number of tokens"),
        (output <= 0, "output size must be a positive number of tokens"),
    )
    for bad, problem in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise TraceError(f"{name}: row {first_row + i + 1}: {problem} "
                             f"(arrival={float(arrival[i])!r}, prompt={prompt[i]}, "
                             f"output={output[i]})")
    if len(arrival) > 1:
        back = np.diff(arrival) < 0
        if back.any():
            i = int(np.argmax(back)) + 1
            raise TraceError(f"{name}: row {first_row + i + 1}: arrivals out of order "
                             f"({float(arrival[i])!r} s comes after {float(arrival[i - 1])!r} s)")


def _read_columns(path: Path, wanted: tuple[str, ...]) -> dict[str, list[str]]:
    """Read the named columns as strings; reject a missing column or a short row by number."""
    text = Path(path).read_text()
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise TraceError(f"{path}: empty file (no header row)") from None
    missing = [c for c in wanted if c not in header]
    if missing:
        raise TraceError(f"{path}: missing column(s) {missing}; header is {header}")
    idx = [header.index(c) for c in wanted]
    cols: dict[str, list[str]] = {c: [] for c in wanted}
    for row_no, row in enumerate(reader, start=1):
        if not row:
            continue
        if len(row) < len(header):
            raise TraceError(f"{path}: row {row_no}: has {len(row)} fields, header has "
                             f"{len(header)}")
        for c, j in zip(wanted, idx, strict=True):
            cols[c].append(row[j])
    if not cols[wanted[0]]:
        raise TraceError(f"{path}: no requests (only a header)")
    return cols


def _numbers(path: Path, column: str, values: list[str], kind: type) -> np.ndarray:
    """Parse a column; a non-number names its row."""
    try:
        arr = np.array(values, dtype=np.float64)
    except ValueError:
        for i, v in enumerate(values):
            try:
                float(v)
            except ValueError:
                raise TraceError(f"{path}: row {i + 1}: column {column} is not a number: "
                                 f"{v!r}") from None
        raise
    if kind is int:
        frac = arr != np.floor(arr)
        if np.isfinite(arr).all() and frac.any():
            i = int(np.argmax(frac))
            raise TraceError(f"{path}: row {i + 1}: column {column} must be a whole number of "
                             f"tokens, got {values[i]!r}")
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argmax(bad))
            raise TraceError(f"{path}: row {i + 1}: column {column} is not finite: {values[i]!r}")
        return arr.astype(np.int64)
    return arr


def read_reference_csv(path: str | Path) -> Trace:
    """Read the reference simulator's trace CSV (columns ``REFERENCE_COLUMNS``)."""
    path = Path(path)
    cols = _read_columns(path, ("request_id", "arrival_timestamp", "prompt_size", "token_size"))
    return Trace(arrival_s=_numbers(path, "arrival_timestamp", cols["arrival_timestamp"], float),
                 prompt_tokens=_numbers(path, "prompt_size", cols["prompt_size"], int),
                 output_tokens=_numbers(path, "token_size", cols["token_size"], int),
                 request_id=_numbers(path, "request_id", cols["request_id"], int),
                 name=path.stem)


def read_azure_csv(path: str | Path) -> Trace:
    """Read the raw Azure LLM inference trace 2023 (TIMESTAMP, ContextTokens, GeneratedTokens).

    Arrivals are seconds since the first request.
    """
    path = Path(path)
    cols = _read_columns(path, AZURE_COLUMNS)
    try:
        stamps = np.array(cols["TIMESTAMP"], dtype="datetime64[ns]")
    except ValueError:
        for i, v in enumerate(cols["TIMESTAMP"]):
            try:
                np.datetime64(v)
            except ValueError:
                raise TraceError(f"{path}: row {i + 1}: TIMESTAMP is not a date-time: "
                                 f"{v!r}") from None
        raise
    arrival = (stamps - stamps[0]).astype(np.int64) / 1e9
    n = len(arrival)
    return Trace(arrival_s=arrival,
                 prompt_tokens=_numbers(path, "ContextTokens", cols["ContextTokens"], int),
                 output_tokens=_numbers(path, "GeneratedTokens", cols["GeneratedTokens"], int),
                 request_id=np.arange(n, dtype=np.int64), name=path.stem)


def write_generated_trace(azure_csv: str | Path, dest: str | Path, rate: float,
                          duration_s: float, seed: int = 0,
                          max_requests: int | None = None) -> None:
    """Write the reference's ``rr_code_<rate>_2min.csv``-style trace made from an Azure CSV.

    ``paperlab data fetch`` regenerates the staged traces with this (byte for byte the same as
    splitwise-sim's generator made them, for the pinned parameters).
    """
    poisson_trace(read_azure_csv(azure_csv), rate, duration_s, seed=seed,
                  max_requests=max_requests).to_csv(dest)


def poisson_trace(source: Trace, rate: float, duration_s: float, seed: int = 0,
                  max_requests: int | None = None, name: str | None = None) -> Trace:
    """Poisson arrivals at ``rate`` req/s for ``duration_s``, sizes resampled from ``source``.

    Prompt and output sizes are drawn independently with replacement (so their pairing is lost,
    as in the reference generator). With ``max_requests`` = the reference's ``max_requests`` and
    a ``source`` read from the Azure CSV, the draws follow the same numpy stream as the
    reference ``generate_trace`` after ``numpy.random.seed(seed)``; the default draws
    just enough requests to cover ``duration_s``.
    """
    if not (rate > 0 and np.isfinite(rate)):
        raise ValueError(f"rate must be a positive number of requests per second, got {rate}")
    if not (duration_s > 0 and np.isfinite(duration_s)):
        raise ValueError(f"duration_s must be a positive finite number of seconds, got "
                         f"{duration_s}")
    if max_requests is not None and (not isinstance(max_requests, int | np.integer)
                                     or max_requests < 0):
        raise ValueError(f"max_requests must be a non-negative integer or None, got "
                         f"{max_requests!r}")
    if len(source) == 0:
        raise ValueError("source trace is empty")
    n = max_requests if max_requests is not None else int(rate * duration_s * 1.2 + 50)
    rs = np.random.RandomState(seed)
    arrival = np.cumsum(rs.standard_exponential(n) * (1.0 / rate))
    while max_requests is None and arrival[-1] < duration_s:  # rare: extend the tail
        more = np.cumsum(rs.standard_exponential(n) * (1.0 / rate)) + arrival[-1]
        arrival = np.concatenate([arrival, more])
        n = len(arrival)
    prompt = source.prompt_tokens[rs.randint(0, len(source), n)]
    output = source.output_tokens[rs.randint(0, len(source), n)]
    keep = arrival < duration_s
    m = int(keep.sum())
    return Trace(arrival_s=arrival[keep], prompt_tokens=prompt[:m], output_tokens=output[:m],
                 request_id=np.arange(m, dtype=np.int64),
                 name=name or f"poisson_{rate:g}rps_{duration_s:g}s")
