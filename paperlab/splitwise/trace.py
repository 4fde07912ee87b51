"""Request traces: the reference CSV format, the raw Azure 2023 trace, seeded Poisson traces.

A :class:`Trace` is three parallel numpy arrays (arrival seconds, prompt tokens, output tokens),
so a million requests take ~16 MB. ``token_size`` counts the first token (the one the prompt
phase produces), as in the reference simulator.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
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
              first_row: int, where: Callable[[int, int], str] | None = None) -> None:
    """Raise TraceError naming the first bad row (1-based data rows, header excluded);
    ``where(i, field)`` (field 0 arrival, 1 prompt, 2 output) adds the file's line and column
    of row ``i``'s field when the arrays were read from a file."""
    checks = (
        (~np.isfinite(arrival), 0, "arrival time is not a finite number"),
        (arrival < 0, 0, "arrival time is negative"),
        (prompt <= 0, 1, "prompt size must be a positive number of tokens"),
        (output <= 0, 2, "output size must be a positive number of tokens"),
    )
    for bad, field, problem in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise TraceError(f"{name}: row {first_row + i + 1}: {problem} "
                             f"(arrival={float(arrival[i])!r}, prompt={prompt[i]}, "
                             f"output={output[i]}){where(i, field) if where else ''}")
    if len(arrival) > 1:
        back = np.diff(arrival) < 0
        if back.any():
            i = int(np.argmax(back)) + 1
            raise TraceError(f"{name}: row {first_row + i + 1}: arrivals out of order "
                             f"({float(arrival[i])!r} s comes after {float(arrival[i - 1])!r} s)"
                             f"{where(i, 0) if where else ''}")


@dataclass(frozen=True)
class _Table:
    """Columns read from a trace CSV, as strings, and where each data row came from."""

    path: Path
    cols: dict[str, list[str]]
    lines: list[int]  # the file line each data row ends on
    numbers: dict[str, int]  # 1-based column number of each column read

    def where(self, i: int, column: str) -> str:
        """`` (line L, column C)`` of data row ``i``'s ``column``."""
        return f" (line {self.lines[i]}, column {self.numbers[column]})"

    def locator(self, arrival: str, prompt: str, output: str) -> Callable[[int, int], str]:
        """:func:`_validate`'s ``where`` for these columns."""
        return lambda i, field: self.where(i, (arrival, prompt, output)[field])


def _read_columns(path: Path, wanted: tuple[str, ...]) -> _Table:
    """Read the named columns as strings; reject a missing column or a short row by number."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not a UTF-8 text CSV file ({exc.reason} at byte "
                         f"{exc.start})") from None
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
    lines: list[int] = []
    for row_no, row in enumerate(reader, start=1):
        if not row:
            continue
        if len(row) < len(header):
            raise TraceError(f"{path}: row {row_no}: has {len(row)} fields, header has "
                             f"{len(header)} (line {reader.line_num})")
        for c, j in zip(wanted, idx, strict=True):
            cols[c].append(row[j])
        lines.append(reader.line_num)
    if not lines:
        raise TraceError(f"{path}: no requests (only a header)")
    return _Table(path, cols, lines, {c: j + 1 for c, j in zip(wanted, idx, strict=True)})


def _numbers(table: _Table, column: str, kind: type) -> np.ndarray:
    """Parse a column; a non-number names its row, line and column."""
    path, values = table.path, table.cols[column]
    try:
        arr = np.array(values, dtype=np.float64)
    except ValueError:
        for i, v in enumerate(values):
            try:
                float(v)
            except ValueError:
                raise TraceError(f"{path}: row {i + 1}: column {column} is not a number: "
                                 f"{v!r}{table.where(i, column)}") from None
        raise
    if kind is int:
        frac = arr != np.floor(arr)
        if np.isfinite(arr).all() and frac.any():
            i = int(np.argmax(frac))
            raise TraceError(f"{path}: row {i + 1}: column {column} must be a whole number of "
                             f"tokens, got {values[i]!r}{table.where(i, column)}")
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argmax(bad))
            raise TraceError(f"{path}: row {i + 1}: column {column} is not finite: "
                             f"{values[i]!r}{table.where(i, column)}")
        return arr.astype(np.int64)
    return arr


def read_reference_csv(path: str | Path) -> Trace:
    """Read the reference simulator's trace CSV (columns ``REFERENCE_COLUMNS``)."""
    path = Path(path)
    table = _read_columns(path, ("request_id", "arrival_timestamp", "prompt_size", "token_size"))
    arrival = _numbers(table, "arrival_timestamp", float)
    prompt, output = _numbers(table, "prompt_size", int), _numbers(table, "token_size", int)
    _validate(str(path), arrival, prompt, output, 0,
              table.locator("arrival_timestamp", "prompt_size", "token_size"))
    return Trace(arrival_s=arrival, prompt_tokens=prompt, output_tokens=output,
                 request_id=_numbers(table, "request_id", int), name=path.stem)


def read_trace_csv(path: str | Path) -> Trace:
    """A trace in either format, told apart by its header: the Azure 2023 trace's columns
    (``AZURE_COLUMNS``) or else the reference simulator's (``REFERENCE_COLUMNS``)."""
    path = Path(path)
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        header = {h.strip() for h in next(csv.reader(f), [])}
    return read_azure_csv(path) if set(AZURE_COLUMNS) <= header else read_reference_csv(path)


def read_azure_csv(path: str | Path) -> Trace:
    """Read the raw Azure LLM inference trace 2023 (TIMESTAMP, ContextTokens, GeneratedTokens).

    Arrivals are seconds since the first request.
    """
    path = Path(path)
    table = _read_columns(path, AZURE_COLUMNS)
    try:
        stamps = np.array(table.cols["TIMESTAMP"], dtype="datetime64[ns]")
    except ValueError:
        for i, v in enumerate(table.cols["TIMESTAMP"]):
            try:
                np.datetime64(v)
            except ValueError:
                raise TraceError(f"{path}: row {i + 1}: TIMESTAMP is not a date-time: "
                                 f"{v!r}{table.where(i, 'TIMESTAMP')}") from None
        raise
    arrival = (stamps - stamps[0]).astype(np.int64) / 1e9
    prompt, output = _numbers(table, "ContextTokens", int), _numbers(table, "GeneratedTokens", int)
    _validate(str(path), arrival, prompt, output, 0, table.locator(*AZURE_COLUMNS))
    return Trace(arrival_s=arrival, prompt_tokens=prompt, output_tokens=output,
                 request_id=np.arange(len(arrival), dtype=np.int64), name=path.stem)


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
    arrival = _arrivals(rs, n, rate)
    while max_requests is None and arrival[-1] < duration_s:  # rare: extend the tail
        more = _arrivals(rs, n, rate)
        more += arrival[-1]
        arrival = np.concatenate([arrival, more])
        n = len(arrival)
    # the arrivals increase: those before duration_s are a prefix (cut copies, so the drawn
    # surplus is freed; the index draws too, one at a time: 10^7 requests peak near 0.4 GB)
    m = int(np.searchsorted(arrival, duration_s, side="left"))
    arrival = arrival[:m].copy()
    prompt = source.prompt_tokens[rs.randint(0, len(source), n)[:m]]
    output = source.output_tokens[rs.randint(0, len(source), n)[:m]]
    return Trace(arrival_s=arrival, prompt_tokens=prompt, output_tokens=output,
                 request_id=np.arange(m, dtype=np.int64),
                 name=name or f"poisson_{rate:g}rps_{duration_s:g}s")


def _arrivals(rs: np.random.RandomState, n: int, rate: float) -> np.ndarray:
    """``n`` Poisson arrival times at ``rate`` from ``rs`` (exponential gaps, summed in place:
    the same numbers as ``cumsum(gaps * (1 / rate))``)."""
    arrival = rs.standard_exponential(n)
    arrival *= 1.0 / rate
    return np.cumsum(arrival, out=arrival)
