"""Throughput and latency of image models: warm-up, then the median of interleaved repeats."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from paperlab.core import timing


@dataclass(frozen=True)
class Speed:
    """One model at one batch size.

    Attributes:
        batch_size: images per forward call.
        latency_ms: median wall-clock milliseconds per forward call.
        images_per_s: ``batch_size / median seconds``.
        iqr_ms: inter-quartile range of the per-call times (ms; 0 under 4 repeats).
        cpu_latency_ms, cpu_images_per_s: the same from the calling thread's CPU time, which
            on a shared machine does not count waiting for a core (meaningful with one torch
            thread, when all the work runs in the calling thread).
        times, cpu_times: wall-clock and thread-CPU seconds per call, one per repeat (what an
            interval of a speed ratio needs, e.g. :func:`paperlab.core.stats.ratio_interval`).
    """

    batch_size: int
    latency_ms: float
    images_per_s: float
    iqr_ms: float
    cpu_latency_ms: float
    cpu_images_per_s: float
    times: tuple[float, ...] = ()
    cpu_times: tuple[float, ...] = ()


def measure_speed(
    models: Mapping[str, nn.Module],
    batch_size: int,
    image_shape: tuple[int, int, int] = (3, 32, 32),
    warmup: int = 2,
    repeats: int = 7,
    inner: int = 1,
    seed: int = 0,
) -> dict[str, Speed]:
    """Time ``model(images)`` for each model on one random batch, interleaved round-robin
    (:func:`paperlab.core.timing.compare`), in eval mode under ``torch.inference_mode``.

    The caller sets the thread count (e.g. ``paperlab.core.seed.torch_threads``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, *image_shape, generator=gen)
    for model in models.values():
        model.eval()

    def call(model: nn.Module):  # noqa: ANN202 - a closure for timing
        def run() -> None:
            with torch.inference_mode():
                model(images)

        return run

    timings = timing.compare(
        {name: call(m) for name, m in models.items()}, warmup=warmup, repeats=repeats, inner=inner
    )
    return {
        name: Speed(batch_size, t.median * 1e3, batch_size / t.median, t.iqr * 1e3,
                    t.cpu_median * 1e3, batch_size / t.cpu_median, t.times, t.cpu_times)
        for name, t in timings.items()
    }
