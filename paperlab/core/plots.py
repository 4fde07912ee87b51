"""Matplotlib helpers with one house style; figures are saved atomically.

Importing this module does not touch matplotlib's backend: the first figure picks the file
backend Agg only when the user chose none (no ``MPLBACKEND``, no ``backend`` in a matplotlibrc,
no ``matplotlib.use``), so a notebook or a GUI session keeps its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def _pyplot() -> Any:
    """``matplotlib.pyplot``, with Agg chosen first if no backend was chosen by the user."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and _backend_unset(matplotlib):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _backend_unset(matplotlib: Any) -> bool:
    if os.environ.get("MPLBACKEND"):
        return False
    get = getattr(matplotlib.rcParams, "_get_backend_or_none", None)  # matplotlib >= 3.8
    if get is not None:
        return get() is None
    from matplotlib import rcsetup

    return dict.__getitem__(matplotlib.rcParams, "backend") is rcsetup._auto_backend_sentinel


def figure(nrows: int = 1, ncols: int = 1, title: str | None = None, size: float = 3.6) -> Any:
    """A new figure in the house style: returns ``(fig, axes)`` like ``plt.subplots``.

    ``size`` is the width and height of one panel in inches; ``axes`` is squeezed as in
    matplotlib (a single ``Axes`` for 1x1).
    """
    plt = _pyplot()
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols * 1.25, size * nrows))
    if title:
        fig.suptitle(title)
    return fig, axes


def save(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as PNG at ``path`` (temp file, then rename) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    plt = _pyplot()
    with plt.rc_context(STYLE):
        fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def errorbars(ax: Any, x: Any, y: Any, intervals: Any, **kwargs: Any) -> Any:
    """Plot ``y`` against ``x`` with asymmetric error bars from interval dicts.

    ``intervals`` holds one ``{"lo", "hi", ...}`` (see :mod:`paperlab.core.stats`) or ``None``
    per point; a point without one gets no bar. The axis is widened to hold every bar, so an
    axis never spans less than the intervals it shows. Other keyword arguments go to
    ``ax.errorbar`` (``label``, ``marker``, ``color``, ...). Returns its container.
    """
    xs, ys = [float(v) for v in x], [float(v) for v in y]
    if not len(xs) == len(ys) == len(intervals):
        raise ValueError(f"x, y and intervals need one length, got {len(xs)}, {len(ys)}, "
                         f"{len(intervals)}")
    below = [0.0 if ci is None else max(0.0, yv - float(ci["lo"]))
             for yv, ci in zip(ys, intervals, strict=True)]
    above = [0.0 if ci is None else max(0.0, float(ci["hi"]) - yv)
             for yv, ci in zip(ys, intervals, strict=True)]
    kwargs.setdefault("capsize", 3)
    kwargs.setdefault("marker", "o")
    container = ax.errorbar(xs, ys, yerr=[below, above], **kwargs)
    ends = [yv - b for yv, b in zip(ys, below, strict=True)] + [
        yv + a for yv, a in zip(ys, above, strict=True)]
    lo, hi = ax.get_ylim()
    if ends and (min(ends) < lo or max(ends) > hi):
        pad = 0.05 * (max(ends) - min(ends) or 1.0)
        ax.set_ylim(min(lo, min(ends) - pad), max(hi, max(ends) + pad))
    return container


def legend_outside(ax: Any, **kwargs: Any) -> Any:
    """A legend to the right of the axes, where it covers no data."""
    kwargs.setdefault("loc", "upper left")
    kwargs.setdefault("bbox_to_anchor", (1.02, 1.0))
    kwargs.setdefault("borderaxespad", 0.0)
    return ax.legend(**kwargs)
