"""Reproduction and benchmark for the Z-loss paper.

``run``: (1) a word-level n-gram neural language model on the Brown corpus (vocabulary
44,050 words) trained with the log-softmax and with each spherical loss (Z-loss, spherical
softmax, Taylor softmax, MSE) through the factored O(d^2) layer; top-1/5/10 accuracy,
perplexity where the loss defines a distribution, and training time. (2) the speed claim:
seconds per output-layer SGD step against the vocabulary size, for the full softmax, the
adaptive softmax and the factored Z-loss layer. ``bench``: the vocabulary sweep alone.
"""

from __future__ import annotations

import gc
import itertools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from paperlab.core import plots, stats, timing
from paperlab.core.config import resolve_config
from paperlab.core.progress import track
from paperlab.core.results import Result, RunContext
from paperlab.core.seed import seed_everything, torch_threads
from paperlab.zloss.baselines import AdaptiveSoftmaxLayer, FullSoftmaxLayer
from paperlab.zloss.data import (
    BROWN_RELPATH,
    EXPECTED_TOKENS,
    HOW_TO_GET,
    LMCorpus,
    build_corpus,
    ngram_examples,
    read_brown,
)
from paperlab.zloss.factored import SphericalOutputLayer

PAPER_VOCAB = 793_471  # One Billion Word vocabulary in the paper's timing
METHODS = ("log_softmax", "z", "spherical_softmax", "taylor_softmax", "mse")


@dataclass(frozen=True)
class LMConfig:
    """The language model and its training. Output-layer learning rates are per loss
    (their gradients differ in scale by orders of magnitude), chosen on the validation split."""

    context: int = 4
    embed_dim: int = 64
    hidden_dim: int = 128
    batch_size: int = 128
    train_examples: int | None = None  # None: the whole training split
    epochs: int = 1
    test_examples: int | None = None
    encoder_lr: float = 2e-3  # (sparse) Adam on embeddings + hidden layer, every method alike
    output_lr: dict[str, float] = field(default_factory=lambda: {
        "log_softmax": 0.5, "z": 0.03, "spherical_softmax": 2.0,
        "taylor_softmax": 0.5, "mse": 0.01})
    z_a: float = 1.0
    z_b: float = 10.0
    stabilize_every: int = 100
    methods: tuple[str, ...] = METHODS


@dataclass(frozen=True)
class SweepConfig:
    """The output-layer timing against vocabulary size."""

    sizes: tuple[int, ...] = (10_000, 31_623, 100_000, 316_228, PAPER_VOCAB)
    dim: int = 512
    batch_size: int = 128  # m: softmax logits are m x D floats (406 MB at D = 793,471)
    warmup: int = 1
    repeats: int = 3


@dataclass(frozen=True)
class TuneConfig:
    """The Z-loss tuned for top-10 and both losses compared at equal training time.

    ``(a, b)`` and the Z-loss's output learning rate are searched on the validation split
    (``search_examples`` training examples each) for top-10 by successive halving: every
    setting trains one epoch, the best ``search_keep`` retrain for ``search_epochs`` epochs
    and the best of those after ``search_epochs`` is the pick; then the log-softmax trains its
    usual epochs and the tuned Z-loss ``zloss_epochs`` epochs over the same examples, both
    scored on ``eval_examples`` test examples at ``checkpoints`` points per epoch against
    training CPU seconds (thread time: the machine is shared, wall time measures the load).
    """

    a_values: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)
    b_values: tuple[float, ...] = (3.0, 10.0, 30.0)
    lr_values: tuple[float, ...] = (0.03, 0.1, 0.3)
    search_examples: int = 20_000
    search_eval: int = 2_000
    search_keep: int = 12  # settings carried into the several-epoch round (a third of 36)
    search_epochs: int = 4  # that round's epochs: one-epoch ranks tie within noise (#20)
    zloss_epochs: int = 16  # one log-softmax epoch costs ~15 factored Z-loss epochs (CPU)
    checkpoints: int = 2
    eval_examples: int = 2_000


@dataclass(frozen=True)
class Config:
    """Both parts of the reproduction and the benchmark's sweep; ``quick()`` finishes in
    minutes, ``full()`` is larger."""

    lm: LMConfig
    sweep: SweepConfig  # run's sweep
    bench_sweep: SweepConfig = SweepConfig()
    threads: int = 1  # torch threads for every method alike (the 2-core machine is shared)
    tune: TuneConfig | None = None  # None: no (a, b) search and no equal-time curves

    @classmethod
    def quick(cls) -> Config:
        return cls(LMConfig(train_examples=20_000, test_examples=3_000),
                   # 3 timed steps per layer (not 1): the speed-up's interval needs repeats
                   SweepConfig(sizes=(10_000, 100_000, PAPER_VOCAB), repeats=3),
                   bench_sweep=SweepConfig(repeats=2),
                   tune=TuneConfig(a_values=(0.3, 1.0), b_values=(3.0, 10.0),
                                   lr_values=(0.1, 0.3), search_examples=10_000,
                                   search_eval=1_000, search_keep=3, search_epochs=3,
                                   zloss_epochs=16, eval_examples=1_000))

    @classmethod
    def full(cls) -> Config:
        return cls(LMConfig(train_examples=300_000, test_examples=20_000), SweepConfig(),
                   tune=TuneConfig())

    def with_options(self, options: Mapping[str, Any]) -> Config:
        """``train_examples`` (the system's ``--train-examples``) sizes the LM comparison and
        the equal-time curves alike (the (a, b, lr) search keeps its own size)."""
        if options.get("train_examples"):
            return replace(self, lm=replace(self.lm, train_examples=int(options["train_examples"])))
        return self


# ---- the language model ----------------------------------------------------------------
class NGramEncoder(nn.Module):
    """Bengio-style n-gram encoder: ``h = [tanh(Linear(concat(embeddings))), 1]``.

    The constant 1 makes the (bias-free) output layer's last column a per-word bias. The
    embedding gradient is sparse, so the input side, too, costs nothing per step that
    grows with the vocabulary (see :func:`encoder_optimizers`).
    """

    def __init__(self, vocab_size: int, context: int, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, sparse=True)
        self.hidden = nn.Linear(context * embed_dim, hidden_dim)

    def forward(self, contexts: Tensor) -> Tensor:
        h = torch.tanh(self.hidden(self.embed(contexts).flatten(1)))
        return torch.cat([h, h.new_ones(h.shape[0], 1)], 1)


def encoder_optimizers(encoder: NGramEncoder, lr: float) -> list[torch.optim.Optimizer]:
    """Adam on the hidden layer, its sparse variant on the embeddings (rows in the batch only)."""
    return [torch.optim.SparseAdam(list(encoder.embed.parameters()), lr=lr),
            torch.optim.Adam(encoder.hidden.parameters(), lr=lr)]


def output_layer(method: str, dim: int, num_classes: int, cfg: LMConfig) -> nn.Module:
    """The log-softmax layer or the factored layer for a spherical loss."""
    lr = cfg.output_lr[method]
    if method == "log_softmax":
        return FullSoftmaxLayer(dim, num_classes, lr=lr)
    params = {"a": cfg.z_a, "b": cfg.z_b} if method == "z" else {}
    return SphericalOutputLayer(dim, num_classes, method, lr=lr,
                                stabilize_every=cfg.stabilize_every, **params)


def log_probs(layer: nn.Module, h: Tensor, y: Tensor) -> Tensor | None:
    """``log p(y | h)`` when the layer's loss defines a distribution, else ``None``."""
    if isinstance(layer, SphericalOutputLayer) and layer.loss_fn.log_prob is None:
        return None
    return layer.log_prob(h, y)


def train_lm(method: str, corpus: LMCorpus, cfg: LMConfig, seed: int,
             split: str = "test", checkpoints: int = 0,
             curve_examples: int | None = None) -> dict[str, Any]:
    """Train the n-gram LM with one output loss; top-k accuracy and perplexity on ``split``.

    The row (like each curve point) holds ``top10_hits``, which evaluation examples were in
    the top 10 (see :func:`evaluate`); the examples depend only on ``seed`` and the sizes in
    ``cfg``, so two methods' hits with one seed pair example by example.
    With ``checkpoints > 0`` the row also holds ``curve``: top-1/5/10 on the first
    ``curve_examples`` evaluation examples ``checkpoints`` times per epoch, against the
    training CPU seconds (thread time, evaluation excluded) and examples seen so far.
    """
    rng = seed_everything(seed)
    x_train, y_train = ngram_examples(corpus.train, cfg.context)
    x_eval, y_eval = ngram_examples(getattr(corpus, split), cfg.context)
    if cfg.train_examples is not None:
        keep = rng.choice(len(y_train), min(cfg.train_examples, len(y_train)), replace=False)
        x_train, y_train = x_train[keep], y_train[keep]
    if cfg.test_examples is not None:
        keep = rng.choice(len(y_eval), min(cfg.test_examples, len(y_eval)), replace=False)
        x_eval, y_eval = x_eval[keep], y_eval[keep]
    x_train, y_train = torch.from_numpy(x_train), torch.from_numpy(y_train)

    encoder = NGramEncoder(corpus.vocab_size, cfg.context, cfg.embed_dim, cfg.hidden_dim)
    layer = output_layer(method, cfg.hidden_dim + 1, corpus.vocab_size, cfg)
    optimizers = encoder_optimizers(encoder, cfg.encoder_lr)
    curve: list[dict[str, Any]] = []
    batches = math.ceil(len(y_train) / cfg.batch_size)
    every = max(1, batches // checkpoints) if checkpoints else 0
    x_curve, y_curve = x_eval[:curve_examples], y_eval[:curve_examples]

    def checkpoint(step: int, cpu_s: float) -> None:
        if every and (step % every == 0 or step == batches * cfg.epochs):
            epochs, rest = divmod(step, batches)  # the last batch of an epoch may be short
            examples = epochs * len(y_train) + min(rest * cfg.batch_size, len(y_train))
            curve.append({"step": step, "examples": examples,
                          "train_cpu_s": cpu_s, **evaluate(encoder, layer, x_curve, y_curve)})

    start = time.perf_counter()
    try:
        train_cpu = train_epochs(encoder, layer, optimizers, x_train, y_train, cfg, rng, method,
                                 checkpoint if every else None)
    except FloatingPointError as err:  # a learning rate too high: report, don't abort the run
        return {"method": method, "diverged": str(err), "train_examples": len(y_train)}
    train_seconds = time.perf_counter() - start
    row = {"method": method, **evaluate(encoder, layer, x_eval, y_eval),
           "train_s": train_seconds, "train_cpu_s": train_cpu,
           "train_examples": len(y_train) * cfg.epochs}
    if curve:
        row["curve"] = curve
    if isinstance(layer, SphericalOutputLayer):
        row["refreshes"] = layer.refreshes  # O(D d^2) fall-backs of stabilize()
    return row


def train_epochs(encoder: NGramEncoder, layer: nn.Module, optimizers: list[torch.optim.Optimizer],
                 x_train: Tensor, y_train: Tensor, cfg: LMConfig, rng: np.random.Generator,
                 method: str, after_step: Callable[[int, float], None] | None = None) -> float:
    """Minibatch SGD: the output layer steps itself and hands back ``grad_h``.

    Returns the training's thread CPU seconds; ``after_step(step, cpu_seconds)`` (if given)
    runs after every step, outside the timed part.
    """
    batches = math.ceil(len(y_train) / cfg.batch_size)
    cpu, step = 0.0, 0
    for epoch in range(cfg.epochs):
        order = torch.from_numpy(rng.permutation(len(y_train)))
        for i in track(range(batches), f"{method} epoch {epoch + 1}", total=batches):
            started = time.thread_time()
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            h = encoder(x_train[idx])
            if not torch.isfinite(h).all():
                raise FloatingPointError(f"hidden layer diverged at step {i} of epoch {epoch + 1}")
            loss, grad_h = layer.step(h, y_train[idx])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss diverged at step {i} of epoch {epoch + 1}")
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            h.backward(grad_h)
            for optimizer in optimizers:
                optimizer.step()
            if isinstance(layer, SphericalOutputLayer) and i == batches - 1:
                layer.refresh()  # O(D d^2) once an epoch: wipes accumulated rounding error
            cpu += time.thread_time() - started
            step += 1
            if after_step is not None:
                after_step(step, cpu)
    return cpu


@torch.no_grad()
def evaluate(encoder: nn.Module, layer: nn.Module, x: np.ndarray, y: np.ndarray,
             chunk: int = 2048) -> dict[str, Any]:
    """Top-1/5/10 accuracy (ranking by the loss's own score), perplexity where defined, the
    number of examples ``eval_examples`` and ``top10_hits``, a boolean array ``(len(y),)``:
    whether each example's word was in the top 10 (for paired intervals; not written out)."""
    hits = np.zeros(3)
    top10_hits: list[np.ndarray] = []
    nll: list[Tensor] = []
    for i in range(0, len(y), chunk):
        xb, yb = torch.from_numpy(x[i:i + chunk]), torch.from_numpy(y[i:i + chunk])
        h = encoder(xb)
        rank = (layer.topk(h, 10) == yb[:, None]).float()
        hits += [rank[:, :k].sum().item() for k in (1, 5, 10)]
        top10_hits.append(rank.sum(1).numpy() > 0)
        lp = log_probs(layer, h, yb)
        if lp is not None:
            nll.append(-lp)
    top1, top5, top10 = hits / len(y)
    ppl = math.exp(torch.cat(nll).mean().item()) if nll else None
    return {"top1": top1, "top5": top5, "top10": top10, "perplexity": ppl,
            "eval_examples": len(y), "top10_hits": np.concatenate(top10_hits)}


def top10_difference_interval(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """95 % interval of ``a``'s top-10 accuracy minus ``b``'s (fractions), from two
    evaluations of the same examples: exact paired (McNemar) over their ``top10_hits``."""
    if len(a["top10_hits"]) != len(b["top10_hits"]):
        raise ValueError(f"top-10 hits of {len(a['top10_hits'])} and "
                         f"{len(b['top10_hits'])} examples do not pair")
    return stats.paired_difference_interval(a["top10_hits"], b["top10_hits"])


def drop_hits(rows: list[dict[str, Any]]) -> None:
    """Remove the per-example ``top10_hits`` from rows (and their curve points) in place:
    the summary holds their intervals; the JSON keeps the counts."""
    for row in rows:
        row.pop("top10_hits", None)
        for point in row.get("curve", ()):
            point.pop("top10_hits", None)


def load_corpus(ctx: RunContext) -> tuple[LMCorpus, dict[str, Any]]:
    path = ctx.require(BROWN_RELPATH, HOW_TO_GET)
    corpus = build_corpus(read_brown(path))
    info = {"name": "Brown corpus (NLTK)", "path": str(path), "files": corpus.num_files,
            "tokens": corpus.num_tokens, "vocab_size": corpus.vocab_size,
            "train/valid/test tokens incl. </s>": [len(corpus.train), len(corpus.valid),
                                                   len(corpus.test)]}
    return corpus, info


# ---- the Z-loss tuned for top-10, and both losses at equal training time ----------------
def search_zloss(corpus: LMCorpus, lm: LMConfig, tune: TuneConfig, seed: int
                 ) -> list[dict[str, Any]]:
    """Successive halving over ``(a, b, lr)``, scored by the Z-loss LM's top-k on the
    validation split only (the test split is never read).

    Round 1 trains every setting one epoch over ``search_examples`` examples; round 2
    retrains the ``search_keep`` best of round 1 from scratch for ``search_epochs`` epochs
    (what the equal-time run uses a setting for). Returns every row of both rounds, each
    with ``a``, ``b``, ``output_lr`` and ``search_epochs``; :func:`best_setting` picks.
    """
    def score(a: float, b: float, lr: float, epochs: int) -> dict[str, Any]:
        cfg = replace(lm, train_examples=tune.search_examples, test_examples=tune.search_eval,
                      epochs=epochs, z_a=a, z_b=b, output_lr={**lm.output_lr, "z": lr})
        row = train_lm("z", corpus, cfg, seed, split="valid")
        return {**row, "method": f"z (a, b, lr) search, validation, {epochs} epoch(s)",
                "a": a, "b": b, "output_lr": lr, "search_epochs": epochs}

    first = [score(a, b, lr, 1)
             for a, b, lr in itertools.product(tune.a_values, tune.b_values, tune.lr_values)]
    if tune.search_epochs <= 1:
        return first
    ranked = sorted((r for r in first if "top10" in r), key=lambda r: -r["top10"])
    second = [score(r["a"], r["b"], r["output_lr"], tune.search_epochs)
              for r in ranked[:tune.search_keep]]
    return first + second


def best_setting(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The search row with the best validation top-10 among those trained the most epochs
    (``None`` if every setting diverged)."""
    scored = [r for r in rows if "top10" in r]
    if not scored:
        return None
    most = max(r["search_epochs"] for r in scored)
    return max((r for r in scored if r["search_epochs"] == most), key=lambda r: r["top10"])


def at_time(curve: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The last checkpoint of ``curve`` trained for at most ``seconds`` CPU seconds (the
    first checkpoint if even that took longer)."""
    within = [p for p in curve if p["train_cpu_s"] <= seconds]
    return within[-1] if within else curve[0]


def equal_time_summary(softmax: dict[str, Any], zloss: dict[str, Any],
                       best: dict[str, Any]) -> dict[str, Any]:
    """The tuned Z-loss against the log-softmax at the softmax's training time and epochs.

    Both curves are scored on the same examples, so ``top10_zloss_at_softmax_time`` minus
    ``top10_softmax_curve_end`` gets its exact paired interval (``..._minus_softmax_ci95``).
    """
    curve_s, curve_z = softmax["curve"], zloss["curve"]
    seconds = curve_s[-1]["train_cpu_s"]
    epoch_one = [p for p in curve_z if p["examples"] <= curve_s[-1]["examples"]]
    at_softmax_time = at_time(curve_z, seconds)
    return {
        "zloss_tuned_a": best["a"], "zloss_tuned_b": best["b"],
        "zloss_tuned_lr": best["output_lr"],
        "top10_softmax_curve_end": curve_s[-1]["top10"],
        "top10_zloss_at_softmax_time": at_softmax_time["top10"],
        "top10_zloss_at_softmax_time_minus_softmax_ci95": top10_difference_interval(
            at_softmax_time, curve_s[-1]),
        "top10_zloss_tuned_equal_epochs": epoch_one[-1]["top10"] if epoch_one else None,
        "top10_zloss_tuned_end": curve_z[-1]["top10"],
        "zloss_cpu_share_of_softmax_per_epoch": (
            curve_z[-1]["train_cpu_s"] / curve_z[-1]["examples"]
            / (seconds / curve_s[-1]["examples"])),
    }


def accuracy_interval(accuracy: float, examples: int) -> dict[str, Any]:
    """Clopper-Pearson 95 % interval of one accuracy measured on ``examples`` examples."""
    return stats.proportion_interval(round(accuracy * examples), examples)


def plot_curves(curves: dict[str, list[dict[str, Any]]], ctx: RunContext) -> None:
    """Top-10 against training CPU seconds, each checkpoint with its binomial 95 % interval."""
    fig, ax = plots.figure(title="Top-10 (test) against training CPU seconds")
    for label, curve in curves.items():
        plots.errorbars(ax, [p["train_cpu_s"] for p in curve], [p["top10"] for p in curve],
                        [accuracy_interval(p["top10"], p["eval_examples"]) for p in curve],
                        label=label, ms=3, capsize=2)
    ax.set_xscale("log")
    ax.set_xlabel("training CPU seconds (one thread)")
    ax.set_ylabel("top-10 accuracy (95% CI)")
    plots.legend_outside(ax)
    plots.save(fig, ctx.plot_path("topk_vs_time"))


# ---- the speed claim: one output-layer step against D -----------------------------------
def zipf_targets(num_classes: int, m: int, rng: np.random.Generator) -> Tensor:
    """``m`` classes drawn with ``p(rank r) ~ 1/r`` (word frequencies), most frequent = 0."""
    p = 1.0 / np.arange(1, num_classes + 1)
    return torch.from_numpy(rng.choice(num_classes, m, p=p / p.sum()))


def sweep_contenders(dim: int) -> dict[str, Callable[[int], nn.Module]]:
    """Builders of the three output layers at ``D`` classes (one lives at a time)."""
    return {
        "full_softmax": lambda D: FullSoftmaxLayer(dim, D, lr=0.01),
        "adaptive_softmax": lambda D: AdaptiveSoftmaxLayer(dim, D, lr=0.01),
        "zloss_factored": lambda D: SphericalOutputLayer(dim, D, "z", lr=0.01, a=1.0, b=10.0),
    }


def time_step(layer: nn.Module, h: Tensor, y: Tensor, cfg: SweepConfig) -> list[float]:
    """Seconds of ``layer.step(h, y)``, one per repeat; for the factored layer each repeat
    plus its amortised ``stabilize()`` (one O(d^3) inversion every ``stabilize_every`` steps,
    timed as many times)."""
    seconds = list(timing.measure(lambda: layer.step(h, y), cfg.warmup, cfg.repeats).times)
    if isinstance(layer, SphericalOutputLayer) and layer.stabilize_every:
        stabilize = timing.measure(layer.stabilize, 0, cfg.repeats).times
        seconds = [t + s / layer.stabilize_every for t, s in zip(seconds, stabilize, strict=True)]
    return seconds


def vocabulary_sweep(cfg: SweepConfig, seed: int) -> list[dict[str, Any]]:
    """Seconds per SGD step of each output layer for each vocabulary size in ``cfg.sizes``.

    The layers are built and timed one after another (never two D x d matrices in memory
    at once), so these are not interleaved timings; each contender's step runs on the same
    minibatch ``h`` ``(m, d)`` with Zipf-distributed targets.
    """
    rng = seed_everything(seed)
    return [time_contenders(D, cfg, rng)
            for D in track(cfg.sizes, "vocabulary sweep", total=len(cfg.sizes))]


def time_contenders(D: int, cfg: SweepConfig, rng: np.random.Generator) -> dict[str, Any]:
    """One row of the sweep: each output layer built, timed and freed in turn."""
    h = torch.randn(cfg.batch_size, cfg.dim)
    y = zipf_targets(D, cfg.batch_size, rng)
    row: dict[str, Any] = {"method": "output-layer step", "vocab_size": D,
                           "batch_size": cfg.batch_size}
    for name, build in sweep_contenders(cfg.dim).items():
        layer = build(D)
        repeats = time_step(layer, h, y, cfg)
        row[f"{name}_s"] = float(np.median(repeats))
        row[f"{name}_repeats_s"] = repeats
        del layer
        gc.collect()
    row["speedup_vs_softmax"] = row["full_softmax_s"] / row["zloss_factored_s"]
    row["speedup_vs_adaptive"] = row["adaptive_softmax_s"] / row["zloss_factored_s"]
    return row


def _size_label(n: int) -> str:
    """``793471 -> "793k"``, ``400 -> "400"``: sizes in summary keys."""
    return f"{n // 1000}k" if n >= 1000 else str(n)


def speedup_interval(row: dict[str, Any], baseline: str = "full_softmax"
                     ) -> dict[str, Any] | None:
    """95 % interval of ``baseline``'s step time over the factored layer's in one sweep row
    (bootstrap of the ratio of medians over each layer's repeats); ``None`` with fewer than
    two repeats."""
    slow, fast = row[f"{baseline}_repeats_s"], row["zloss_factored_repeats_s"]
    if min(len(slow), len(fast)) < 2:
        return None
    return stats.ratio_interval(slow, fast)


def sweep_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    first, last = rows[0], rows[-1]
    out: dict[str, Any] = {
        "sweep_sizes": [r["vocab_size"] for r in rows],
        f"speedup_vs_softmax_at_{last['vocab_size']}": last["speedup_vs_softmax"],
        f"speedup_vs_adaptive_at_{last['vocab_size']}": last["speedup_vs_adaptive"],
    }
    if last["vocab_size"] == PAPER_VOCAB:
        out["speedup_vs_softmax_at_793k"] = last["speedup_vs_softmax"]
        out["speedup_vs_softmax_at_793k_ci95"] = speedup_interval(last)
    span = f"{_size_label(first['vocab_size'])}_to_{_size_label(last['vocab_size'])}"
    for name, key in (("", "zloss_factored_s"), ("_softmax", "full_softmax_s"),
                      ("_adaptive", "adaptive_softmax_s")):
        out[f"step_time_growth{name}_{span}"] = last[key] / first[key]
    return out


def plot_sweep(rows: list[dict[str, Any]], ctx: RunContext, name: str) -> None:
    fig, ax = plots.figure(title="SGD step of the output layer (d = 512)")
    sizes = [r["vocab_size"] for r in rows]
    for key, label in (("full_softmax_s", "full softmax"),
                       ("adaptive_softmax_s", "adaptive softmax"),
                       ("zloss_factored_s", "Z-loss, factored")):
        ax.loglog(sizes, [r[key] for r in rows], "o-", label=label)
    ax.set_xlabel("vocabulary size D")
    ax.set_ylabel(f"seconds per step (m = {rows[0].get('batch_size', 128)})")
    plots.legend_outside(ax)
    plots.save(fig, ctx.plot_path(name))


def plot_topk(rows: list[dict[str, Any]], ctx: RunContext) -> None:
    """Top-1/5/10 per output loss, each bar with its binomial 95 % interval."""
    fig, ax = plots.figure(title="Brown n-gram LM: top-k accuracy on test", size=4.0)
    width = 0.8 / len(rows)
    for j, row in enumerate(rows):
        xs, accs = np.arange(3) + j * width, [row["top1"], row["top5"], row["top10"]]
        ax.bar(xs, accs, width, label=row["method"])
        plots.errorbars(ax, xs, accs, [accuracy_interval(a, row["eval_examples"]) for a in accs],
                        fmt="none", color="k", capsize=2)
    ax.set_xticks(np.arange(3) + 0.4 - width / 2, ["top-1", "top-5", "top-10"])
    ax.set_ylabel("accuracy (95% CI)")
    plots.legend_outside(ax)
    plots.save(fig, ctx.plot_path("topk"))


# ---- entry points ----------------------------------------------------------------------
def run(ctx: RunContext, config: Config | None = None) -> Result:
    cfg = resolve_config(ctx, Config, config)
    corpus, data = load_corpus(ctx)
    tune, curves, tune_summary, search_rows = cfg.tune, {}, {}, []
    curve_args = {"checkpoints": tune.checkpoints, "curve_examples": tune.eval_examples} \
        if tune and "log_softmax" in cfg.lm.methods else {}
    with torch_threads(cfg.threads):
        lm_rows = [train_lm(method, corpus, cfg.lm, ctx.seed,
                            **(curve_args if method == "log_softmax" else {}))
                   for method in cfg.lm.methods]
        if curve_args:
            search_rows = search_zloss(corpus, cfg.lm, tune, ctx.seed)
            best = best_setting(search_rows)
            softmax = next(r for r in lm_rows if r["method"] == "log_softmax")
            if best is not None and "curve" in softmax:
                tuned_cfg = replace(cfg.lm, epochs=tune.zloss_epochs, z_a=best["a"],
                                    z_b=best["b"], output_lr={**cfg.lm.output_lr,
                                                              "z": best["output_lr"]})
                tuned = train_lm("z", corpus, tuned_cfg, ctx.seed, **curve_args)
                if "curve" in tuned:
                    tune_summary = equal_time_summary(softmax, tuned, best)
                    curves = {"log-softmax (1 epoch)": softmax["curve"],
                              f"Z-loss a={best['a']:g} b={best['b']:g} lr={best['output_lr']:g} "
                              f"({tune.zloss_epochs} epochs)": tuned["curve"]}
                    tuned["method"] = "z (tuned, equal-time run)"
                    lm_rows.append(tuned)
        sweep_rows = vocabulary_sweep(cfg.sweep, ctx.seed)
    by_method = {r["method"]: r for r in lm_rows}
    z_row, softmax_row = by_method.get("z", {}), by_method.get("log_softmax", {})
    # both trained with ctx.seed on cfg.lm's sizes, so scored on the same test examples
    topk_ci = top10_difference_interval(z_row, softmax_row) \
        if "top10" in z_row and "top10" in softmax_row else None
    drop_hits(lm_rows + search_rows)
    for row in lm_rows:
        row.pop("curve", None)  # kept whole in data["curves"]
    if curves:
        plot_curves(curves, ctx)
    plot_topk([row for row in lm_rows if "top10" in row and row["method"] in METHODS], ctx)
    plot_sweep(sweep_rows, ctx, "step_time")
    softmax_s, zloss_s = (by_method.get(m, {}).get("train_s") for m in ("log_softmax", "z"))
    summary = {
        "top10_acc_softmax": softmax_row.get("top10"),
        "top10_acc_zloss": z_row.get("top10"),
        "top10_zloss_minus_softmax_ci95": topk_ci,
        "lm_train_speedup_zloss_vs_softmax": softmax_s / zloss_s if softmax_s and zloss_s else None,
        **sweep_summary(sweep_rows),
        **tune_summary,
    }
    if curves:
        data = {**data, "curves": curves}
    notes = [
        f"LM: {cfg.lm.context}-word context, {cfg.lm.hidden_dim}+1 hidden units, vocabulary "
        f"{corpus.vocab_size}; output layers by plain SGD, the encoder by (sparse) Adam; "
        f"one seed; {cfg.lm.train_examples or len(corpus.train)} training examples; "
        f"{cfg.threads} torch thread(s) for everything.",
        f"Z-loss a={cfg.lm.z_a:g}, b={cfg.lm.z_b:g}; spherical layers are trained through the "
        "factored O(d^2) update, the log-softmax through an O(Dd) in-place SGD step.",
        "Sweep: layers timed one after another (one D x d matrix in memory at a time), "
        f"minibatch m={cfg.sweep.batch_size}, d={cfg.sweep.dim}, Zipf targets; the factored "
        f"time includes its amortised re-stabilisation; {cfg.sweep.repeats} timed steps per "
        "layer (median; speedup_vs_softmax_at_793k_ci95: bootstrap of the ratio of medians).",
        "top10_zloss_minus_softmax_ci95 and top10_zloss_at_softmax_time_minus_softmax_ci95: "
        "exact paired (McNemar) 95% intervals of the top-10 differences over the test "
        "examples both models were scored on.",
    ]
    if corpus.num_tokens != EXPECTED_TOKENS:
        notes.append(f"Brown has {corpus.num_tokens} tokens, PROVENANCE says {EXPECTED_TOKENS}.")
    if tune_summary:
        notes.append(
            f"Z-loss tuned on the validation split for top-10 over a in {list(tune.a_values)}, "
            f"b in {list(tune.b_values)}, lr in {list(tune.lr_values)} "
            f"({tune.search_examples} examples each; all one epoch, then the best "
            f"{tune.search_keep} for {tune.search_epochs} epochs, the pick the best of those); "
            "top10_zloss_at_softmax_time is the tuned "
            "Z-loss's top-10 at the last checkpoint within the log-softmax's training CPU "
            f"seconds, both scored on the first {tune.eval_examples} test examples.")
    return Result(results=lm_rows + search_rows + sweep_rows, summary=summary, data=data,
                  notes=notes)


def bench(ctx: RunContext, config: Config | None = None) -> Result:
    """The vocabulary sweep alone (``config.bench_sweep``), the paper's sizes."""
    full = resolve_config(ctx, Config, config)
    cfg, threads = full.bench_sweep, full.threads
    with torch_threads(threads):
        rows = vocabulary_sweep(cfg, ctx.seed)
    plot_sweep(rows, ctx, "bench_step_time")
    return Result(results=rows, summary=sweep_summary(rows),
                  data={"synthetic": f"h ~ N(0, I_{cfg.dim}), Zipf targets, m={cfg.batch_size}"},
                  notes=["Peer: torch.nn.AdaptiveLogSoftmaxWithLoss and a full softmax with an "
                         "in-place SGD step; the layers are timed one after another, "
                         f"{threads} torch thread(s) each."])
