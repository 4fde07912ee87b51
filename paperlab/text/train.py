"""One fine-tuning trainer for sequence classification on the MiniLM encoder, with a cache.

``finetune(train_set, cfg)`` fine-tunes every weight of all-MiniLM-L6-v2 with a new linear head
(AdamW, linear warm-up then linear decay, BERT's recipe) and caches the weights under
``<cache>/text/checkpoints/minilm-<hash>.pt``, the hash covering the configuration and the
training sentences, so a second run (or another system with the same data and recipe) loads
them. Training resumes from the last finished epoch after an interruption. Checkpoints are
read with ``torch.load(..., weights_only=True)``.

With a ``validation`` set, ``finetune`` early-stops: after every epoch it scores the validation
sentences, keeps the weights of the best validation accuracy, stops after ``patience`` epochs
without a better one (``cfg.epochs`` is then the most it trains), and repeats this ``restarts``
times from fresh heads and shuffles, keeping the restart whose kept weights have the lowest
validation loss (the few-shot recipe of Mukherjee & Awadallah's UST code, which ALP's authors
use). Such a run is cached when it finishes (its key also covers the validation set, the
patience and the restarts) but not resumed mid-way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paperlab.core import checkpoint
from paperlab.core.data import cache_dir
from paperlab.core.progress import track
from paperlab.core.seed import derive_seed
from paperlab.text.data import TextSet
from paperlab.text.minilm import load_classifier, load_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    """How the classifier is fine-tuned (every field is part of the checkpoint's cache key).

    Attributes:
        epochs: passes over the training sentences.
        batch_size: sentences per step.
        lr: peak AdamW learning rate (BERT fine-tuning uses 2e-5 to 5e-5).
        weight_decay: AdamW decay (not on biases and norms).
        warmup: share of the steps spent warming the rate up from 0.
        max_length: tokens kept per sentence, ``[CLS]`` and ``[SEP]`` included.
        dropout: dropout in the encoder and before the head.
        seed: initialisation of the head, dropout and the shuffles.
    """

    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_length: int = 64
    dropout: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "max_length"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.max_length < 3:
            raise ValueError(f"max_length must be >= 3 ([CLS], a token, [SEP]), got "
                             f"{self.max_length}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup must be in [0, 1), got {self.warmup!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")

    def lr_at(self, step: int, total: int) -> float:
        """Linear warm-up to ``lr`` over ``warmup * total`` steps, then linear decay to 0."""
        warm = max(1, round(self.warmup * total))
        if step < warm:
            return self.lr * (step + 1) / warm
        return self.lr * max(0.0, (total - step) / max(1, total - warm))


@dataclass
class Finetuned:
    """A fine-tuned classifier.

    Attributes:
        model: ``BertForSequenceClassification`` in eval mode.
        tokenizer: its tokenizer.
        path: the checkpoint file (written or read).
        cached: loaded from the cache (True) or trained in this call (False).
        history: per epoch: ``epoch``, ``loss``, ``train_acc``, ``seconds`` (with a validation
            set also ``restart``, ``val_acc``, ``val_loss``).
        selected: with a validation set, the kept weights' ``restart``, ``epoch`` (1-based),
            ``val_acc`` and ``val_loss``, and the ``epochs`` trained over all restarts; empty
            without one.
    """

    model: nn.Module
    tokenizer: Any
    path: Path
    cached: bool
    history: list[dict[str, float]] = field(default_factory=list)
    selected: dict[str, float] = field(default_factory=dict)

    @property
    def train_seconds(self) -> float:
        return float(sum(h["seconds"] for h in self.history))


def checkpoint_path(data: TextSet, cfg: FinetuneConfig, num_labels: int,
                    validation: TextSet | None = None, patience: int = 5,
                    restarts: int = 1) -> Path:
    """``<cache>/text/checkpoints/minilm-<hash of config, labels count and sentences>.pt``; with
    a ``validation`` set the hash also covers it, ``patience`` and ``restarts``."""
    h = hashlib.sha256(json.dumps([dataclasses.asdict(cfg), num_labels], sort_keys=True).encode())
    _digest(h, data)
    if validation is not None:
        h.update(json.dumps(["early stopping", patience, restarts]).encode())
        _digest(h, validation)
    return cache_dir() / "text" / "checkpoints" / f"minilm-{h.hexdigest()[:16]}.pt"


def _digest(h: Any, data: TextSet) -> None:
    for text in data.texts:
        h.update(text.encode("utf-8") + b"\0")
    h.update(np.ascontiguousarray(data.labels, dtype=np.int64).tobytes())


def encode(tokenizer: Any, texts: tuple[str, ...] | list[str], max_length: int) -> dict[str, Any]:
    """``input_ids`` and ``attention_mask`` ``(n, longest)`` int64, padded on the right."""
    return tokenizer(list(texts), truncation=True, max_length=max_length, padding=True,
                     return_tensors="pt")


def _check(data: TextSet, num_labels: int) -> None:
    if len(data) == 0:
        raise ValueError(f"{data.name}: no training sentences")
    bad = [i for i, t in enumerate(data.texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"{data.name}: sentence {bad[0]} is empty or not text")
    if data.labels.min() < 0 or data.labels.max() >= num_labels:
        raise ValueError(f"{data.name}: labels must be in [0, {num_labels}), got "
                         f"[{data.labels.min()}, {data.labels.max()}]")


def finetune(data: TextSet, cfg: FinetuneConfig, num_labels: int = 2, *, retrain: bool = False,
             cache: bool = True, validation: TextSet | None = None, patience: int = 5,
             restarts: int = 1) -> Finetuned:
    """Fine-tune MiniLM with a linear head on ``data``, or load the cached result.

    Args:
        data: the training sentences and their labels.
        cfg: the recipe (with ``validation``, ``cfg.epochs`` is the most epochs per restart).
        num_labels: number of classes.
        retrain: ignore a cached checkpoint (and a partial one) and train from scratch.
        cache: write checkpoints (False: train in memory only, e.g. in tests).
        validation: sentences to early-stop and choose among restarts on (None: train
            ``cfg.epochs`` epochs once, resumable, as before).
        patience: with ``validation``, epochs without a better validation accuracy before a
            restart stops (default 5).
        restarts: with ``validation``, independent restarts; the one whose kept weights have
            the lowest validation loss is returned (default 1).

    Returns:
        a :class:`Finetuned` with the model in eval mode. The caller sets the thread count.

    Raises:
        ValueError: bad sentences or labels (in ``data`` or ``validation``), ``patience`` or
            ``restarts`` below 1, or ``restarts > 1`` without a validation set.
    """
    _check(data, num_labels)
    for name, v in (("patience", patience), ("restarts", restarts)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if validation is None and restarts > 1:
        raise ValueError("restarts choose on a validation set: pass validation=")
    if validation is not None:
        _check(validation, num_labels)
    path = checkpoint_path(data, cfg, num_labels, validation, patience, restarts)
    partial = path.with_suffix(".partial")
    tokenizer = load_tokenizer()
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = load_classifier(num_labels, cfg.dropout)
    if cache and path.exists() and not retrain:
        state = checkpoint.load(path)
        model.load_state_dict(state["model"])
        log.info("loaded cached classifier %s", path)
        return Finetuned(model.eval(), tokenizer, path, True, list(state.get("history", [])),
                         dict(state.get("selected", {})))
    if validation is not None:
        return _early_stopped(data, validation, cfg, num_labels, tokenizer, model, path,
                              patience, restarts, cache)

    opt = _optimizer(model, cfg)
    history, start = (checkpoint.resume(partial, model, opt, log) if cache and not retrain
                      else ([], 0))
    for epoch in track(range(start, cfg.epochs), "fine-tuning MiniLM", total=cfg.epochs - start):
        _epoch(model, opt, tokenizer, data, cfg, epoch, cfg.seed, history)
        if cache:
            checkpoint.save_partial(partial, model, opt, history)
    if cache:
        checkpoint.finish(path, partial, model, history)
    return Finetuned(model.eval(), tokenizer, path, False, history)


def _optimizer(model: nn.Module, cfg: FinetuneConfig) -> torch.optim.Optimizer:
    """AdamW with ``cfg.weight_decay`` on the weight matrices, none on biases and norms."""
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)


def _epoch(model: nn.Module, opt: torch.optim.Optimizer, tokenizer: Any, data: TextSet,
           cfg: FinetuneConfig, epoch: int, seed: int, history: list[dict[str, float]]) -> None:
    """One pass over ``data`` in a shuffle seeded by ``(seed, epoch)``, appended to
    ``history``."""
    n = len(data)
    steps = math.ceil(n / cfg.batch_size)
    total = steps * cfg.epochs
    labels = torch.from_numpy(np.asarray(data.labels, dtype=np.int64))
    epoch_seed = derive_seed(seed, "epoch", str(epoch))
    torch.manual_seed(epoch_seed)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed))
    model.train()
    tic, loss_sum, correct = time.perf_counter(), 0.0, 0
    for i in range(steps):
        idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
        batch = encode(tokenizer, [data.texts[j] for j in idx.tolist()], cfg.max_length)
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(epoch * steps + i, total)
        logits = model(**batch).logits
        loss = F.cross_entropy(logits, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(idx)
        correct += int((logits.argmax(-1) == labels[idx]).sum())
    checkpoint.end_epoch(log, history, epoch, cfg.epochs, n, loss_sum, correct,
                         time.perf_counter() - tic)


def _early_stopped(data: TextSet, validation: TextSet, cfg: FinetuneConfig, num_labels: int,
                   tokenizer: Any, model: nn.Module, path: Path, patience: int, restarts: int,
                   cache: bool) -> Finetuned:
    """``restarts`` early-stopped runs (the first from ``model``); the lowest validation loss
    of their kept weights wins."""
    history: list[dict[str, float]] = []
    best: tuple[float, dict[str, torch.Tensor], dict[str, float]] | None = None
    for r in range(restarts):
        seed = cfg.seed if r == 0 else derive_seed(cfg.seed, "restart", str(r))
        if r > 0:
            torch.manual_seed(derive_seed(seed, "init"))
            model = load_classifier(num_labels, cfg.dropout)
        opt = _optimizer(model, cfg)
        kept: tuple[float, float, int, dict[str, torch.Tensor]] | None = None
        for epoch in range(cfg.epochs):
            _epoch(model, opt, tokenizer, data, cfg, epoch, seed, history)
            val_acc, val_loss = evaluate(model, tokenizer, validation, cfg.max_length)
            history[-1].update(restart=r, val_acc=val_acc, val_loss=val_loss)
            if kept is None or val_acc > kept[0]:
                kept = (val_acc, val_loss, epoch, _state_copy(model))
            elif epoch - kept[2] >= patience:
                break
        assert kept is not None  # cfg.epochs >= 1
        choice = {"restart": r, "epoch": kept[2] + 1, "val_acc": kept[0], "val_loss": kept[1]}
        log.info("restart %d/%d: kept epoch %d, validation accuracy %.4f, loss %.4f", r + 1,
                 restarts, kept[2] + 1, kept[0], kept[1])
        if best is None or kept[1] < best[0]:
            best = (kept[1], kept[3], choice)
    assert best is not None  # restarts >= 1
    model.load_state_dict(best[1])
    selected = {**best[2], "epochs": len(history)}
    if cache:
        checkpoint.save(path, {"model": model.state_dict(), "history": history,
                               "selected": selected})
    return Finetuned(model.eval(), tokenizer, path, False, history, selected)


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def _logits(model: nn.Module, tokenizer: Any, texts: tuple[str, ...] | list[str],
            max_length: int, batch_size: int) -> torch.Tensor:
    """``(len(texts), classes)`` logits in eval mode, batched by length, in the input order."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    out: torch.Tensor | None = None
    model.eval()
    for s in range(0, len(order), batch_size):
        rows = order[s:s + batch_size]
        logits = model(**encode(tokenizer, [texts[i] for i in rows], max_length)).logits
        if out is None:
            out = torch.empty(len(texts), logits.shape[-1])
        out[torch.from_numpy(rows)] = logits
    return out if out is not None else torch.empty(0, 0)


def evaluate(model: nn.Module, tokenizer: Any, data: TextSet, max_length: int = 64,
             batch_size: int = 64) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy in nats)`` of the model on ``data`` (eval mode)."""
    logits = _logits(model, tokenizer, data.texts, max_length, batch_size)
    labels = torch.from_numpy(np.asarray(data.labels, dtype=np.int64))
    return (float((logits.argmax(-1) == labels).float().mean()),
            float(F.cross_entropy(logits, labels)))


def predict(model: nn.Module, tokenizer: Any, texts: tuple[str, ...] | list[str],
            max_length: int = 64, batch_size: int = 64) -> np.ndarray:
    """Predicted class of each sentence, ``int64`` ``(len(texts),)``.

    Sentences are batched by length (less padding) and returned in their original order.
    """
    if not len(texts):
        return np.empty(0, dtype=np.int64)
    return _logits(model, tokenizer, texts, max_length, batch_size).argmax(-1).numpy()


def predict_proba(model: nn.Module, tokenizer: Any, texts: tuple[str, ...] | list[str],
                  max_length: int = 64, batch_size: int = 64) -> np.ndarray:
    """Class probabilities (softmax of the logits) of each sentence, ``float32``
    ``(len(texts), classes)``, in the input order (e.g. to keep a self-training round's
    confident pseudo-labels); ``(0, 0)`` for no sentences."""
    if not len(texts):
        return np.empty((0, 0), dtype=np.float32)
    logits = _logits(model, tokenizer, texts, max_length, batch_size)
    return torch.softmax(logits, dim=-1).numpy().astype(np.float32)
