"""Experiments made of an image part and a text part (``--parts vision,text``).

A system whose ``run`` compares its methods on images and on sentences declares
``Option("parts", parse_parts, ...)`` (and ``Option("text_seeds", int, ...)``); its ``Config``
has ``vision: bool`` and ``text: <its TextConfig> | None`` (a text configuration with
``seeds``), which :func:`with_parts` sets from those options, and its ``run`` returns
:func:`join_parts` of what each part gave (its rows, summary keys, data and notes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from paperlab.core.registry import comma_list
from paperlab.core.results import Result

PARTS = ("vision", "text")

C = TypeVar("C")
Part = tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any], list[str]]


def parse_parts(text: str) -> tuple[str, ...]:
    """``"vision,text"`` -> ``("vision", "text")``; each part once, at least one."""
    parts = comma_list(text)
    if not set(parts) <= set(PARTS) or len(set(parts)) != len(parts):
        raise ValueError(f"parts must be vision, text or both, got {text!r}")
    return parts


def with_parts(cfg: C, options: Mapping[str, Any], text_config: Callable[[], Any]) -> C:
    """``cfg`` with the ``parts`` and ``text_seeds`` options applied (others leave it as it is).

    ``parts``: ``cfg.vision`` is whether ``"vision"`` is named; ``cfg.text`` stays (or becomes
    ``text_config()`` where the size had none) when ``"text"`` is named, else None.
    ``text_seeds``: the text part's ``seeds`` (ignored when the text part is off).
    """
    if "parts" in options:
        parts = options["parts"]
        cfg = dataclasses.replace(cfg, vision="vision" in parts,
                                  text=(cfg.text or text_config()) if "text" in parts else None)
    if "text_seeds" in options and cfg.text is not None:
        cfg = dataclasses.replace(
            cfg, text=dataclasses.replace(cfg.text, seeds=int(options["text_seeds"])))
    return cfg


def join_parts(vision: Part | None, text: Part | None) -> Result:
    """One :class:`~paperlab.core.results.Result` of an experiment's parts, each its rows,
    summary keys, data and notes (None: not run): the text part's rows and notes follow the
    image part's, its keys join the summary and its data is ``data["text"]``.

    Raises:
        ValueError: neither part ran.
    """
    if vision is None and text is None:
        raise ValueError("nothing to run: neither the vision nor the text part")
    rows, summary, data, notes = vision if vision is not None else ([], {}, {}, [])
    if text is not None:
        text_rows, text_summary, data["text"], text_notes = text
        rows = rows + text_rows
        summary.update(text_summary)
        notes = [*notes, *text_notes]
    return Result(results=rows, summary=summary, data=data, notes=notes)
