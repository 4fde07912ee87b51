"""Progress bars for long work (rich), quiet when not attached to a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.progress import track as _rich_track

T = TypeVar("T")
_hidden = False


def enabled() -> bool:
    """Bars show on an interactive terminal unless ``PAPERLAB_NO_PROGRESS`` is set or inside
    :func:`hidden`."""
    return sys.stderr.isatty() and not os.environ.get("PAPERLAB_NO_PROGRESS") and not _hidden


@contextmanager
def hidden(hide: bool = True) -> Iterator[None]:
    """No progress bars inside the block when ``hide`` (the command line's ``--quiet``)."""
    global _hidden
    before, _hidden = _hidden, hide or _hidden
    try:
        yield
    finally:
        _hidden = before


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` with a progress bar labelled ``description`` (on stderr)."""
    if not enabled():
        yield from items
        return
    from rich.console import Console

    yield from _rich_track(
        items, description=description, total=total, console=Console(stderr=True), transient=True
    )
