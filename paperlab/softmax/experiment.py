"""Reproduction and benchmark of the two-pass softmax (Dukhan & Ablavatski, 2020).

``run``: the paper's comparison. The four C kernels (two-pass, three-pass recompute,
three-pass reload, online) and torch.softmax on one thread, single rows of 2^10 to 2^26
float32 elements plus batched rows, with a pure read pass over the same array as the
bandwidth roof. ``bench``: the public API against torch.softmax (fresh output and
preallocated ``out``), scipy.special.softmax and NumPy, with 1 and 2 threads.

Timing: contenders run interleaved (``paperlab.core.timing.compare``). On a shared machine
wall time mostly measures the neighbours, so each one-thread call also records its own
thread CPU time (memory stalls count as CPU time; being descheduled does not) and the
one-thread figures use that, as the spec's measurements did. Two-thread figures must use
wall time. Inputs are standard-normal float32 from the run's seed; nothing is read from
disk, because the paper's claim is about memory traffic, not about data.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from paperlab.core import plots, stats, timing
from paperlab.core.config import resolve_config
from paperlab.core.progress import track
from paperlab.core.results import Result, RunContext
from paperlab.core.seed import set_torch_threads, torch_threads
from paperlab.softmax import twopass
from paperlab.softmax.functional import softmax
from paperlab.softmax.twopass import ALGORITHMS, STREAM_MIN_BYTES, backend

BYTES = 4  # float32
THREE_PASS = ("three_pass_recompute", "three_pass_reload")
READ_PASS = "read pass (max only)"


@dataclass(frozen=True)
class SweepConfig:
    """Sizes of the one-thread sweep. ``log2_sizes``: single rows of 2^k elements;
    ``batched``: (rows, row length) shapes; ``repeats``: timed rounds per size;
    ``min_elements``: small arrays are processed repeatedly until a timed sample covers
    this many elements (so timer resolution and call overhead stay small)."""

    log2_sizes: tuple[int, ...]
    batched: tuple[tuple[int, int], ...]
    repeats: int
    min_elements: int = 1 << 22


@dataclass(frozen=True)
class BenchConfig:
    """The benchmark's shapes (total 2^26 elements each), rounds, and thread counts."""

    shapes: tuple[tuple[int, int], ...]
    repeats: int
    threads: tuple[int, ...] = (1, 2)


@dataclass(frozen=True)
class Config:
    """``run``'s one-thread sweep and ``bench``'s shapes (2^26 elements each)."""

    sweep: SweepConfig
    bench: BenchConfig

    @classmethod
    def quick(cls) -> Config:
        return cls(SweepConfig(log2_sizes=tuple(range(10, 27, 2)), batched=((2048, 32768),),
                               repeats=5),
                   BenchConfig(shapes=((1, 1 << 26), (2048, 32768)), repeats=5))

    @classmethod
    def full(cls) -> Config:
        return cls(SweepConfig(log2_sizes=tuple(range(10, 27)),
                               batched=((2048, 32768), (65536, 1024)), repeats=11),
                   BenchConfig(shapes=((1, 1 << 26), (2048, 32768)), repeats=11))


def _time(contenders: dict[str, Callable[[], object]], inner: int, repeats: int,
          setup: dict[str, Callable[[], object]] | None = None):
    """Interleaved timing of each contender called ``inner`` times per sample (``setup``:
    untimed, before each sample of the named contenders).

    Returns {name: (median wall seconds, median thread-CPU seconds) per call}.
    """
    times = timing.compare(contenders, 1, repeats, inner, setup)
    return {k: (t.median, t.cpu_median) for k, t in times.items()}


def _kernel(algorithm: str, x: np.ndarray, y: np.ndarray) -> Callable[[], object]:
    """The C kernel on 2-D rows, called without the API's validation (one thread)."""
    if twopass._C is None:  # NumPy fallback: time what a user would get
        return lambda: softmax(x, out=y, algorithm=algorithm, threads=1)
    code, rows, stream = ALGORITHMS.index(algorithm), x.shape[0], y.nbytes >= STREAM_MIN_BYTES
    return lambda: twopass._C.rows(x, y, code, 0, 0, rows, stream)


def _read_pass(x: np.ndarray) -> Callable[[], object]:
    if twopass._C is None:
        return lambda: x.max()
    flat = x.reshape(-1)
    return lambda: twopass._C.read_pass(flat)


def _sweep_point(rows: int, n: int, rng: np.random.Generator, cfg: SweepConfig) -> list[dict]:
    import torch

    x = rng.standard_normal((rows, n), dtype=np.float32)
    y = np.empty_like(x)
    x_torch, y_torch = torch.from_numpy(x), torch.from_numpy(y)  # contenders share buffers
    contenders = {a: _kernel(a, x, y) for a in ALGORITHMS}
    contenders["torch.softmax (out=)"] = lambda: torch.softmax(x_torch, -1, out=y_torch)
    contenders["torch.softmax"] = lambda: torch.softmax(x_torch, -1)
    contenders[READ_PASS] = _read_pass(x)
    inner = max(1, cfg.min_elements // x.size)
    times = timing.compare(contenders, 1, cfg.repeats, inner)
    read_gbps = BYTES * x.size / times[READ_PASS].cpu_median / 1e9
    shape = f"1x2^{n.bit_length() - 1}" if rows == 1 else f"{rows}x{n}"
    out = []
    for name, t in times.items():
        gbps = BYTES * x.size / t.cpu_median / 1e9
        out.append({
            "shape": shape, "elements": x.size, "method": name, "ms_cpu": t.cpu_median * 1e3,
            "ms_wall": t.median * 1e3, "gbps": gbps, "fraction_of_read_bw": gbps / read_gbps,
            # every round's thread CPU time: the spread behind the ratios' intervals
            "ms_cpu_repeats": [1e3 * c for c in t.cpu_times],
        })
    return out


def _row(rows: list[dict], shape: str, method: str) -> dict:
    return next(r for r in rows if r["shape"] == shape and r["method"] == method)


def _ms(rows: list[dict], shape: str, method: str) -> float:
    return _row(rows, shape, method)["ms_cpu"]


def best_three_pass_interval(rows: list[dict], shape: str) -> dict | None:
    """95 % interval of best three-pass / two-pass CPU time at ``shape`` (a ratio, 1 = a tie).

    The best three-pass kernel is the one with the lower median, as in the figure itself;
    the interval is the bootstrap of the ratio of medians over each side's rounds
    (:func:`paperlab.core.stats.ratio_interval`). ``None`` with a single round: one timing
    has no spread.
    """
    if len(_row(rows, shape, "two_pass")["ms_cpu_repeats"]) < 2:
        return None
    best = min(THREE_PASS, key=lambda a: _ms(rows, shape, a))
    return stats.ratio_interval(_row(rows, shape, best)["ms_cpu_repeats"],
                                _row(rows, shape, "two_pass")["ms_cpu_repeats"])


def _best_three_pass_ratio(rows: list[dict], shape: str) -> float:
    """Best three-pass over two-pass median CPU time at ``shape`` (> 1: two-pass is faster)."""
    return min(_ms(rows, shape, a) for a in THREE_PASS) / _ms(rows, shape, "two_pass")


def _plot(rows: list[dict], ctx: RunContext, single: list[str], batched: list[str]) -> None:
    """GB/s against row length, the claim's ratio with its 95 % intervals against row
    length, and GB/s of batched rows; legends sit under their panels, off the data."""
    fig, (ax, cx, bx) = plots.figure(1, 3, "Two-pass vs three-pass softmax, float32, one thread")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    elements = {r["shape"]: r["elements"] for r in rows}
    for m in methods:
        pts = [(r["elements"], r["gbps"]) for r in rows
               if r["method"] == m and r["shape"] in single]
        style = "k--" if m == READ_PASS else "o-"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=m, markersize=3)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("elements in the row")
    ax.set_ylabel("GB/s of input (thread CPU time)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2)
    plots.errorbars(cx, [elements[s] for s in single],
                    [_best_three_pass_ratio(rows, s) for s in single],
                    [best_three_pass_interval(rows, s) for s in single], ms=3)
    cx.axhline(1.0, color="k", lw=0.8, ls=":")
    cx.set_xscale("log", base=2)
    cx.set_xlabel("elements in the row")
    cx.set_ylabel("best three-pass / two-pass time (95% CI)")
    width = 0.8 / max(1, len(batched))
    for i, shape in enumerate(batched):
        vals = [next(r["gbps"] for r in rows if r["shape"] == shape and r["method"] == m)
                for m in methods]
        bx.bar(np.arange(len(methods)) + i * width, vals, width, label=shape)
    bx.set_xticks(np.arange(len(methods)) + 0.4 - width / 2)
    bx.set_xticklabels(methods, rotation=60, ha="right", fontsize=7)
    bx.set_yscale("log", base=2)
    bx.set_ylabel("GB/s of input, batched rows")
    plots.legend_outside(bx, fontsize=7, title="rows x length")
    plots.save(fig, ctx.plot_path("throughput"))


def run(ctx: RunContext, config: Config | None = None) -> Result:
    """One-thread sweep of the four algorithms and torch.softmax from 2^10 to 2^26."""
    cfg = resolve_config(ctx, Config, config).sweep
    rng = np.random.default_rng(ctx.seed)
    shapes = [(1, 1 << k) for k in cfg.log2_sizes] + list(cfg.batched)
    rows: list[dict] = []
    with torch_threads(1):
        for r, n in track(shapes, "softmax sizes", total=len(shapes)):
            rows += _sweep_point(r, n, rng, cfg)
    single = list(dict.fromkeys(r["shape"] for r in rows if r["shape"].startswith("1x")))
    batched = [f"{r}x{n}" for r, n in cfg.batched]
    big = single[-1]
    two = _ms(rows, big, "two_pass")
    read_gbps = next(r["gbps"] for r in rows if r["shape"] == big and r["method"] == READ_PASS)
    elements = 1 << cfg.log2_sizes[-1]
    # two-pass moves 12 bytes per element: two reads of x and one streamed write of y
    roofline_ms = 3 * BYTES * elements / (read_gbps * 1e9) * 1e3
    summary = {
        "ratio_two_pass_vs_best_three_pass": _best_three_pass_ratio(rows, big),
        "ratio_two_pass_vs_best_three_pass_ci95": best_three_pass_interval(rows, big),
        "ratio_two_pass_vs_torch": _ms(rows, big, "torch.softmax (out=)") / two,
        "ratio_two_pass_vs_torch_fresh_output": _ms(rows, big, "torch.softmax") / two,
        "ratio_two_pass_vs_online": _ms(rows, big, "online") / two,
        "fraction_of_roofline": roofline_ms / two,
        "read_bandwidth_gbps": read_gbps,
        "ratio_two_pass_vs_best_three_pass_batched": {
            s: _best_three_pass_ratio(rows, s) for s in batched},
        "size": big,
        "backend": backend(),
    }
    _plot(rows, ctx, single, batched)
    notes = [
        "Times are medians of thread CPU time over interleaved rounds on a shared 2-core VM; "
        "ms_wall shows the wall clock of the same calls.",
        f"fraction_of_roofline = (12 bytes x {elements} elements / read bandwidth) / two-pass "
        "time; read bandwidth = one max-only pass over the same array.",
        "torch.softmax is ratio'd with a preallocated out= (as the C kernels); "
        "ratio_two_pass_vs_torch_fresh_output includes its 256 MiB allocation.",
    ]
    if backend() == "numpy-fallback":
        notes.append("C extension not built: these are NumPy-fallback timings, not the kernels.")
    data = {"source": "synthetic standard-normal float32 rows (seeded)", "shapes": shapes}
    return Result(results=rows, summary=summary, data=data, notes=notes)


def _bench_contenders(x: np.ndarray, y: np.ndarray, threads: int) -> dict[str, Callable]:
    import scipy.special
    import torch

    x_torch, y_torch = torch.from_numpy(x), torch.from_numpy(y)

    def torch_call(out: bool) -> Callable[[], object]:
        def call() -> object:  # its thread count is set untimed, by _bench_setup
            return torch.softmax(x_torch, -1, out=y_torch) if out else torch.softmax(x_torch, -1)

        return call

    def numpy_softmax() -> None:  # max-subtract in place: no temporaries
        np.subtract(x, x.max(axis=-1, keepdims=True), out=y)
        np.exp(y, out=y)
        np.divide(y, y.sum(axis=-1, keepdims=True), out=y)

    c: dict[str, Callable] = {
        f"{a} [{threads}t]": (lambda a=a: softmax(x, out=y, algorithm=a, threads=threads))
        for a in ALGORITHMS
    }
    c[f"torch.softmax (out=) [{threads}t]"] = torch_call(True)
    c[f"torch.softmax [{threads}t]"] = torch_call(False)
    if threads == 1:
        c["scipy.special.softmax [1t]"] = lambda: scipy.special.softmax(x, axis=-1)
        c["numpy, in place [1t]"] = numpy_softmax
    return c


def _bench_shape(r: int, n: int, cfg: BenchConfig, rng: np.random.Generator,
                 ) -> tuple[list[dict], dict]:
    """Rows of every contender on an ``r x n`` float32 array, and the shape's ratios."""
    import scipy.special

    x = rng.standard_normal((r, n), dtype=np.float32)
    y = np.empty_like(x)
    contenders: dict[str, Callable] = {}
    for t in cfg.threads:
        contenders.update(_bench_contenders(x, y, t))
    # torch's contenders are timed with their own thread count, set before each sample (the
    # setting itself is not timed); the C kernels take theirs as an argument.
    setup = {name: functools.partial(set_torch_threads, t) for t in cfg.threads
             for name in (f"torch.softmax (out=) [{t}t]", f"torch.softmax [{t}t]")}
    times = _time(contenders, 1, cfg.repeats, setup)
    shape = f"{r}x{n}"
    rows = []
    for name, (wall, cpu) in times.items():
        rows.append({"shape": shape, "method": name, "ms_wall": wall * 1e3,
                     "ms_cpu_1t": cpu * 1e3 if name.endswith("[1t]") else None,
                     "gbps_wall": BYTES * x.size / wall / 1e9})
    wall = {k: v[0] for k, v in times.items()}
    cpu = {k: v[1] for k, v in times.items() if k.endswith("[1t]")}
    two1 = "two_pass [1t]"
    ratios = {
        "cpu_two_pass_vs_best_three_pass_1t":
            min(cpu[f"{a} [1t]"] for a in THREE_PASS) / cpu[two1],
        "cpu_two_pass_vs_torch_out_1t": cpu["torch.softmax (out=) [1t]"] / cpu[two1],
        "cpu_two_pass_vs_torch_fresh_1t": cpu["torch.softmax [1t]"] / cpu[two1],
        "cpu_two_pass_vs_scipy_1t": cpu["scipy.special.softmax [1t]"] / cpu[two1],
        "cpu_two_pass_vs_numpy_1t": cpu["numpy, in place [1t]"] / cpu[two1],
        "wall_two_pass_vs_best_three_pass_1t":
            min(wall[f"{a} [1t]"] for a in THREE_PASS) / wall[two1],
        "wall_two_pass_vs_torch_out_1t": wall["torch.softmax (out=) [1t]"] / wall[two1],
    }
    if 2 in cfg.threads:
        ratios.update({
            "wall_two_pass_2t_vs_1t": wall[two1] / wall["two_pass [2t]"],
            "wall_two_pass_vs_torch_out_2t":
                wall["torch.softmax (out=) [2t]"] / wall["two_pass [2t]"],
            "wall_two_pass_vs_best_three_pass_2t":
                min(wall[f"{a} [2t]"] for a in THREE_PASS) / wall["two_pass [2t]"],
        })
    _, ours = timing.peak_memory(lambda x=x: softmax(x, threads=1))
    _, theirs = timing.peak_memory(lambda x=x: scipy.special.softmax(x, axis=-1))
    ratios["peak_extra_mib_two_pass_fresh"] = ours / 2**20
    ratios["peak_extra_mib_scipy"] = theirs / 2**20
    return rows, ratios


def bench(ctx: RunContext, config: Config | None = None) -> Result:
    """The public API against torch, scipy and NumPy at 2^26 elements, 1 and 2 threads."""
    cfg = resolve_config(ctx, Config, config).bench
    rows: list[dict] = []
    summary: dict = {"backend": backend()}
    rng = np.random.default_rng(ctx.seed)
    with torch_threads(1):  # the torch contenders set their own count; this one is restored
        for r, n in cfg.shapes:
            shape_rows, summary[f"{r}x{n}"] = _bench_shape(r, n, cfg, rng)
            rows += shape_rows
    notes = [
        "Interleaved rounds on a shared 2-core VM (other jobs running): one-thread ratios "
        "use thread CPU time, two-thread ratios wall time; both are printed per row.",
        "With one long row, the three-pass and online kernels are not split across threads "
        "(only two-pass combines per-block (value, exponent) sums), so their [2t] rows "
        "run on one thread; the 2048x32768 shape splits rows for every algorithm.",
    ]
    data = {"source": "synthetic standard-normal float32 (seeded)", "shapes": cfg.shapes}
    return Result(results=rows, summary=summary, data=data, notes=notes)
