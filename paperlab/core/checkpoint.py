"""Checkpoints of the trainers (vision and text substrates): atomic saves, safe loads, and the
per-epoch record that lets an interrupted training resume.

A trainer keeps ``<name>.pt`` (the finished weights and the history) and, while it trains,
``<name>.partial`` (weights, optimizer state, history and the epochs done), written after every
epoch; :func:`finish` replaces the second by the first. Checkpoints are read with
``torch.load(..., weights_only=True)``: a checkpoint file never runs code.
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn


def save(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` through a temp file in the same folder, then rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


class CheckpointError(ValueError):
    """A file where a checkpoint should be is not one (garbage bytes, another program's file,
    a checkpoint without the expected fields); the message names the file."""


def load(path: str | os.PathLike[str], fields: tuple[str, ...] = ("model",),
         what: str = "a checkpoint this program wrote") -> dict[str, Any]:
    """A checkpoint's tensors and plain values, on the CPU (``weights_only=True``).

    Args:
        path: the file.
        fields: entries the checkpoint must have.
        what: what the file should be, for the error message.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is not a ``torch.save`` archive (garbage bytes, another
            program's zip) or lacks ``fields``; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):
        with path.open("rb") as f:
            head = f.read(8)
        raise CheckpointError(f"{path} is not {what}: expected a torch.save zip archive, got "
                              f"{path.stat().st_size} bytes starting {head!r}")
    with zipfile.ZipFile(path) as archive:
        if not any(name.endswith("data.pkl") for name in archive.namelist()):
            raise CheckpointError(f"{path} is not {what}: a zip archive without torch.save's "
                                  "data.pkl")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise CheckpointError(f"{path} is not {what}: {exc}") from None
    if not isinstance(payload, dict) or any(k not in payload for k in fields):
        got = sorted(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not {what}: expected the fields "
                              f"{', '.join(fields)}, got {got}")
    return payload


def resume(partial: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
           log: logging.Logger) -> tuple[list[dict[str, float]], int]:
    """Load a partial checkpoint, if there is one, into ``model`` and ``optimizer``; returns
    the history so far and the number of epochs done (``[], 0`` without one)."""
    if not partial.exists():
        return [], 0
    state = load(partial)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    history, start = list(state["history"]), int(state["epoch"])
    log.info("resuming %s at epoch %d", partial, start)
    return history, start


def end_epoch(log: logging.Logger, history: list[dict[str, float]], epoch: int, epochs: int,
              examples: int, loss_sum: float, correct: int, seconds: float) -> None:
    """Append epoch ``epoch`` (0-based) to ``history`` (mean loss, training accuracy, seconds)
    and log it."""
    history.append({"epoch": epoch + 1, "loss": loss_sum / examples,
                    "train_acc": correct / examples, "seconds": seconds})
    log.info("epoch %d/%d loss %.4f train acc %.4f (%.0f s)", epoch + 1, epochs,
             loss_sum / examples, correct / examples, seconds)


def save_partial(partial: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                 history: list[dict[str, float]]) -> None:
    """What resuming after the last finished epoch needs."""
    save(partial, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "history": history, "epoch": len(history)})


def finish(path: Path, partial: Path, model: nn.Module, history: list[dict[str, float]]) -> None:
    """Write the finished checkpoint and drop the partial one."""
    save(path, {"model": model.state_dict(), "history": history})
    partial.unlink(missing_ok=True)
