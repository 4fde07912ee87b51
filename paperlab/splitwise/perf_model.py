"""Iteration-time models: the profiled piecewise-linear model and an analytic roofline.

Both answer three questions for one model instance (model, hardware, tensor parallel):
``prompt_time(batch_tokens)`` for a prefill-only iteration, ``token_time(num_decodes)`` for a
decode-only iteration, and ``mixed_time(prompt_tokens, num_decodes)`` for a mixed one. Times
are seconds.

The profiled model follows the reference simulator: per key, take the median time per
``x = prompt_size * batch_size`` over the profiling rows, then interpolate linearly between
the x points and extrapolate linearly beyond them. A decode iteration is looked up at x = the
number of decode requests (context length is ignored, as upstream); a mixed iteration is the
prompt predictor at (prompt tokens + decodes) times 1.1.
"""

from __future__ import annotations

import csv
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PERF_COLUMNS = ("model", "hardware", "tensor_parallel", "prompt_size", "batch_size",
                "prompt_time", "token_time")
MIXED_PENALTY = 1.1  # the reference's slowdown of a mixed prompt+decode iteration


class PiecewiseLinear:
    """y(x) on sorted knots; linear inside, linear extrapolation outside (scipy interp1d's
    'linear' with fill_value='extrapolate': the end segments are extended)."""

    __slots__ = ("xs", "ys", "_cache")

    def __init__(self, xs: list[float], ys: list[float]) -> None:
        if len(xs) < 2:
            raise ValueError(f"need at least two distinct x points to interpolate, got {xs}")
        if len(ys) != len(xs):
            raise ValueError(f"need one y per x point: {len(xs)} x points, {len(ys)} y values")
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
            raise ValueError(f"x points and y values must be finite, got xs={list(xs)}, "
                             f"ys={list(ys)}")
        if any(b <= a for a, b in zip(xs, xs[1:], strict=False)):
            raise ValueError("x points must be strictly increasing")
        self.xs, self.ys = list(map(float, xs)), list(map(float, ys))
        self._cache: dict[float, float] = {}

    def __call__(self, x: float) -> float:
        y = self._cache.get(x)
        if y is None:
            xs, ys = self.xs, self.ys
            i = min(max(bisect_left(xs, x), 1), len(xs) - 1)
            x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
            y = (y1 - y0) / (x1 - x0) * (x - x0) + y0
            self._cache[x] = y
        return y


class IterationModel:
    """What the simulator asks of a performance model (seconds per iteration)."""

    def prompt_time(self, batch_tokens: int) -> float:
        raise NotImplementedError

    def token_time(self, num_decodes: int) -> float:
        raise NotImplementedError

    def mixed_time(self, prompt_tokens: int, num_decodes: int) -> float:
        return self.prompt_time(prompt_tokens + num_decodes) * MIXED_PENALTY


class ProfiledModel(IterationModel):
    """Piecewise-linear model over one (model, hardware, TP) slice of a profile.

    Args:
        prompt: the prompt-time predictor over batch tokens (seconds).
        token: the decode-time predictor over the number of decodes (seconds).
        prompt_scale: multiplies prompt times (e.g. 1.3 for a power cap never profiled).
    """

    def __init__(self, prompt: PiecewiseLinear, token: PiecewiseLinear,
                 prompt_scale: float = 1.0) -> None:
        self._prompt, self._token, self.prompt_scale = prompt, token, prompt_scale

    def prompt_time(self, batch_tokens: int) -> float:
        t = self._prompt(batch_tokens)
        return t * self.prompt_scale if self.prompt_scale != 1.0 else t

    def token_time(self, num_decodes: int) -> float:
        return self._token(num_decodes)


class PerfDatabase:
    """A profile CSV (the reference's ``perf_model.csv`` format) as per-key predictors.

    Columns used: model, hardware, tensor_parallel, prompt_size, batch_size, prompt_time (ms,
    whole batch), token_time (ms per decode iteration). Other columns are ignored.

    Example:
        >>> db = PerfDatabase.from_csv("perf_model.csv")
        >>> m = db.model("bloom-176b", "h100-80gb", 8)
        >>> m.prompt_time(4096)  # seconds
    """

    def __init__(self, rows: dict[tuple[str, str, int], dict[int, tuple[list, list]]]) -> None:
        self._rows = rows
        self._models: dict[tuple[str, str, int], ProfiledModel] = {}

    @classmethod
    def from_csv(cls, path: str | Path) -> PerfDatabase:
        """Parse a profile; a missing column or a bad value names its row."""
        path = Path(path)
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in PERF_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: missing column(s) {missing}")
            rows: dict[tuple[str, str, int], dict[int, tuple[list, list]]] = {}
            for i, r in enumerate(reader, start=1):
                try:
                    key = (r["model"], r["hardware"], int(float(r["tensor_parallel"])))
                    x = int(float(r["prompt_size"])) * int(float(r["batch_size"]))
                    pt, tt = float(r["prompt_time"]) / 1000, float(r["token_time"]) / 1000
                except (TypeError, ValueError) as e:
                    raise ValueError(f"{path}: row {i}: bad value ({e})") from None
                if not (np.isfinite(pt) and np.isfinite(tt)) or pt <= 0 or tt <= 0 or x <= 0:
                    raise ValueError(f"{path}: row {i}: times and sizes must be positive, got "
                                     f"prompt_time={pt * 1000}, token_time={tt * 1000}, x={x}")
                p, t = rows.setdefault(key, {}).setdefault(x, ([], []))
                p.append(pt)
                t.append(tt)
        if not rows:
            raise ValueError(f"{path}: no profiling rows")
        return cls(rows)

    def keys(self) -> list[tuple[str, str, int]]:
        return sorted(self._rows)

    def model(self, model: str, hardware: str, tensor_parallel: int = 8,
              prompt_scale: float = 1.0) -> ProfiledModel:
        """The predictor for one key; KeyError lists the profiled keys."""
        key = (model, hardware, tensor_parallel)
        if key not in self._rows:
            raise KeyError(f"no profile for {key}; profiled: {self.keys()}")
        cache_key = (*key, prompt_scale)
        if cache_key not in self._models:
            by_x = self._rows[key]
            xs = sorted(by_x)
            prompt = PiecewiseLinear(xs, [float(np.median(by_x[x][0])) for x in xs])
            token = PiecewiseLinear(xs, [float(np.median(by_x[x][1])) for x in xs])
            self._models[cache_key] = ProfiledModel(prompt, token, prompt_scale)
        return self._models[cache_key]


@dataclass(frozen=True)
class RooflineModel(IterationModel):
    """Analytic model for hardware that was never profiled.

    A prefill of n tokens costs max(compute, weight read): 2·params·n FLOPs at
    ``flops · mfu`` versus weights bytes at ``mem_bw · mbu``; a decode iteration of b requests
    reads the weights once plus b contexts of KV cache (``mean_context`` tokens each) and does
    2·params·b FLOPs. All quantities are per model instance (already summed over its GPUs).

    Attributes:
        params: model parameters.
        weight_bytes: bytes of weights read per iteration.
        kv_bytes_per_token: KV-cache bytes per token.
        flops: peak dense FLOP/s of the instance (e.g. 8 × 989e12 for 8 H100 at bf16).
        mem_bw: memory bandwidth of the instance in bytes/s.
        mfu, mbu: achievable fractions of peak compute / bandwidth.
        mean_context: context tokens per decode request assumed for KV reads.
        overhead_s: fixed per-iteration overhead (kernel launches, communication).
    """

    params: float
    weight_bytes: float
    kv_bytes_per_token: float
    flops: float
    mem_bw: float
    mfu: float = 0.5
    mbu: float = 0.6
    mean_context: float = 1024.0
    overhead_s: float = 0.005

    def __post_init__(self) -> None:
        for name in ("params", "flops", "mem_bw", "mfu", "mbu"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"RooflineModel.{name} must be a positive finite number, "
                                 f"got {value}")
        for name in ("weight_bytes", "kv_bytes_per_token", "mean_context", "overhead_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"RooflineModel.{name} must be a non-negative finite number, "
                                 f"got {value}")
        if self.mfu > 1 or self.mbu > 1:
            raise ValueError(f"mfu and mbu are fractions of peak in (0, 1], got mfu={self.mfu}, "
                             f"mbu={self.mbu}")

    def prompt_time(self, batch_tokens: int) -> float:
        compute = 2 * self.params * batch_tokens / (self.flops * self.mfu)
        memory = self.weight_bytes / (self.mem_bw * self.mbu)
        return max(compute, memory) + self.overhead_s

    def token_time(self, num_decodes: int) -> float:
        compute = 2 * self.params * num_decodes / (self.flops * self.mfu)
        read = self.weight_bytes + num_decodes * self.mean_context * self.kv_bytes_per_token
        return max(compute, read / (self.mem_bw * self.mbu)) + self.overhead_s
