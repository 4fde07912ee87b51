"""Matplotlib (Agg) helpers with one house style; figures are saved atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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


def figure(nrows: int = 1, ncols: int = 1, title: str | None = None, size: float = 3.6) -> Any:
    """A new figure in the house style: returns ``(fig, axes)`` like ``plt.subplots``.

    ``size`` is the width and height of one panel in inches; ``axes`` is squeezed as in
    matplotlib (a single ``Axes`` for 1x1).
    """
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
    with plt.rc_context(STYLE):
        fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path
