"""DiffRate on a fine-tuned BERT encoder (all-MiniLM-L6-v2) on SST-2: a comparison no paper
reports (the DiffRate paper is on ViTs only).

For each fine-tuning seed, MiniLM with a linear head is fine-tuned on the SST-2 training
sentences (:mod:`paperlab.text.train`, cached, with the recipe PiToMe's text comparison uses, so
the two systems share the checkpoints). DiffRate's rates are then searched on training
sentences at the FLOPs of PiToMe at keep ratio 0.65 with the reference code's text schedule
(merging in the first three layers only), computed analytically with
:func:`~paperlab.merging.bert.bert_flops` over each sentence's own token schedule, and evaluated
without fine-tuning on the SST-2 dev sentences against: the full model; ToMe given that PiToMe
schedule's merge count in every layer (the same token counts, so exactly the target FLOPs, per
sentence); the uniform schedule (DiffRate's own merge, the same share removed in every layer
after the first) at DiffRate's achieved FLOPs. Two ablations at DiffRate's own token counts
say where the gap to ToMe comes from: the counts reached by DiffRate's merge alone (no token
pruned: ``prune[l]`` = the tokens coming in, the same FLOPs), and ToMe given each sentence's
DiffRate counts (bipartite matching merges at most half a layer's tokens, the rest carried to
the next layers, so at somewhat more FLOPs).

Uncertainty: accuracies are averaged over the fine-tuning seeds; their 95 % intervals are a
bootstrap over dev sentences crossed with the seeds, and DiffRate against ToMe and against the
uniform schedule also gets an exact McNemar test per seed.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from paperlab.core import plots
from paperlab.core.progress import track
from paperlab.core.results import RunContext
from paperlab.core.seed import torch_threads
from paperlab.core.stats import crossed_bootstrap_interval, mcnemar
from paperlab.diffrate.bert import num_labels
from paperlab.diffrate.model import SearchConfig, apply, rates_flops, search, uniform_rates
from paperlab.diffrate.rates import Rates
from paperlab.merging import tome
from paperlab.merging.bert import bert_depth, bert_flops, mean_bert_flops
from paperlab.merging.energy import bert_rule
from paperlab.text import data as text_data
from paperlab.text.minilm import load_tokenizer
from paperlab.text.train import FinetuneConfig, finetune, predict

log = logging.getLogger(__name__)

DATASET, EVAL_SPLIT = "sst2", "dev"
MERGE_ONLY, TOME_AT_COUNTS = "DiffRate counts, merge only", "ToMe at DiffRate's counts"
METHODS = ("full", "DiffRate", "uniform", "ToMe", MERGE_ONLY, TOME_AT_COUNTS)


@dataclass(frozen=True)
class TextConfig:
    """The text comparison's size.

    Attributes:
        seeds: fine-tuning seeds (``ctx.seed``, ``ctx.seed + 1``, ...), one search each.
        finetune: the fine-tuning recipe (its ``seed`` is replaced per seed); PiToMe's text
            comparison uses the same, so the cached classifiers are shared.
        train_examples: training sentences (None: all 6,920), drawn with ``ctx.seed``.
        eval_examples: dev sentences evaluated (None: all 872), drawn with ``ctx.seed``.
        target_keep: the FLOPs target is PiToMe's at this keep ratio with the reference's text
            schedule (merging in the first three layers).
        search: the search's settings (its ``seed`` is the fine-tuning seed).
        search_examples: training sentences searched on (drawn with ``ctx.seed``).
        eval_batch: sentences per forward call when evaluating.
        threads: torch threads.
    """

    seeds: int = 1
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    train_examples: int | None = None
    eval_examples: int | None = None
    target_keep: float = 0.65
    search: SearchConfig = SearchConfig(epochs=3, batch_size=32, lr=0.05, lr_min=0.005)
    search_examples: int = 2000
    eval_batch: int = 64
    threads: int = 2

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if not 0.5 <= self.target_keep < 1:
            raise ValueError(f"target_keep must be in [0.5, 1), got {self.target_keep}")
        if self.search_examples < 1:
            raise ValueError(f"search_examples must be >= 1, got {self.search_examples}")

    @classmethod
    def quick(cls) -> TextConfig:
        """PiToMe's quick fine-tuning (1,500 sentences, 2 epochs: the same cached checkpoint),
        a 200-sentence search, 400 dev sentences."""
        return cls(finetune=FinetuneConfig(epochs=2), train_examples=1500, eval_examples=400,
                   search=SearchConfig(epochs=2, batch_size=16, lr=0.1, lr_min=0.01),
                   search_examples=200)


def _lengths(tokenizer: Any, texts: tuple[str, ...], max_length: int) -> list[int]:
    return [len(ids) for ids in tokenizer(list(texts), truncation=True,
                                          max_length=max_length)["input_ids"]]


@dataclass
class _Seed:
    """One fine-tuning seed's results."""

    seed: int
    cached: bool
    train_seconds: float
    rates: Rates
    search_seconds: float
    trace: list[dict[str, float]]
    correct: dict[str, np.ndarray]
    flops: dict[str, float]


def _one_seed(ctx: RunContext, cfg: TextConfig, seed: int, train: text_data.TextSet,
              searched_on: text_data.TextSet, evaluate: text_data.TextSet,
              lengths: dict[str, list[int]]) -> _Seed:
    recipe = dataclasses.replace(cfg.finetune, seed=seed)
    fitted = finetune(train, recipe)
    base = fitted.model.eval()
    depth, labels = bert_depth(base), num_labels(base)
    reference = bert_rule(depth, cfg.target_keep)

    def mean_flops(schedule: Any, sentences: list[int]) -> float:
        return mean_bert_flops(base.config, schedule, sentences, labels)

    target = mean_flops(lambda n: reference.schedule(n, depth, 1), lengths["search"])
    start, trace = time.perf_counter(), []
    rates = search(base, searched_on, target / 1e9,
                   dataclasses.replace(cfg.search, seed=seed), trace,
                   tokenizer=fitted.tokenizer, max_length=recipe.max_length)
    search_seconds = time.perf_counter() - start
    rates.save(ctx.out_dir / f"diffrate_text_rates_seed{seed}.json")
    dev = lengths["eval"]
    flops = {"full": mean_flops(lambda n: [(n, n)] * depth, dev),
             "DiffRate": rates_flops(base, rates, lengths=dev),
             "ToMe": mean_flops(lambda n: reference.schedule(n, depth, 1), dev)}
    uniform = uniform_rates(base, flops["DiffRate"], dev)
    flops["uniform"] = rates_flops(base, uniform, lengths=dev)
    models: dict[str, nn.Module] = {
        "full": base,
        "DiffRate": apply(copy.deepcopy(base), rates),
        "uniform": apply(copy.deepcopy(base), uniform),
        "ToMe": tome.patch_matched(copy.deepcopy(base), reference),
    }
    merge_only = Rates((rates.num_tokens,) + rates.merge[:-1], rates.merge, rates.num_tokens)
    models[MERGE_ONLY] = apply(copy.deepcopy(base), merge_only)
    flops[MERGE_ONLY] = rates_flops(base, merge_only, lengths=dev)
    correct = {}
    for method, model in models.items():
        with torch.no_grad():
            pred = predict(model.eval(), fitted.tokenizer, evaluate.texts, recipe.max_length,
                           cfg.eval_batch)
        correct[method] = pred == evaluate.labels
    correct[TOME_AT_COUNTS], flops[TOME_AT_COUNTS] = _tome_at_counts(
        base, rates, fitted.tokenizer, evaluate, dev, recipe.max_length, cfg.eval_batch)
    log.info("text seed %d: full %.4f, DiffRate %.4f (%.1f%% of the FLOPs), ToMe %.4f, "
             "uniform %.4f", seed, correct["full"].mean(), correct["DiffRate"].mean(),
             100 * flops["DiffRate"] / flops["full"], correct["ToMe"].mean(),
             correct["uniform"].mean())
    return _Seed(seed, fitted.cached, fitted.train_seconds, rates, search_seconds, trace,
                 correct, flops)


def _tome_at_counts(base: nn.Module, rates: Rates, tokenizer: Any, evaluate: text_data.TextSet,
                    lengths: list[int], max_length: int, batch: int) -> tuple[np.ndarray, float]:
    """ToMe given each sentence's DiffRate token counts
    (:func:`~paperlab.merging.tome.tome_counts` of ``rates.for_length``): one ToMe schedule per
    distinct length, so the sentences are evaluated group by group. Returns which were right and
    the mean FLOPs per sentence."""
    model = copy.deepcopy(base)
    hits = np.zeros(len(evaluate), dtype=bool)
    total = 0.0
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(n, []).append(i)
    for n, rows in by_length.items():
        r = tome.tome_counts(rates.for_length(n).tokens())
        tome.patch(model, r)  # patching again replaces the counts
        with torch.no_grad():
            pred = predict(model.eval(), tokenizer, [evaluate.texts[i] for i in rows], max_length,
                           batch)
        hits[rows] = pred == evaluate.labels[rows]
        schedule, left = [], n
        for merged in r:
            schedule.append((left, left - merged))
            left -= merged
        total += len(rows) * bert_flops(base.config, schedule, num_labels(base))
    return hits, total / len(lengths)


def run_text(ctx: RunContext, cfg: TextConfig
             ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any], list[str]]:
    """The comparison: result rows (``task = "text/sst2"``), summary keys (``text_...``), a
    description of the data, the fine-tuning, the searched rates and the McNemar tests, and
    the notes that say how it was measured."""
    train = text_data.read(DATASET, "train", ctx.data_root)
    evaluate = text_data.read(DATASET, EVAL_SPLIT, ctx.data_root)
    if cfg.train_examples is not None:
        train = train.subset(cfg.train_examples, ctx.seed)
    if cfg.eval_examples is not None:
        evaluate = evaluate.subset(cfg.eval_examples, ctx.seed)
    searched_on = train.subset(cfg.search_examples, ctx.seed)
    tokenizer = load_tokenizer()
    max_length = cfg.finetune.max_length
    lengths = {"search": _lengths(tokenizer, searched_on.texts, max_length),
               "eval": _lengths(tokenizer, evaluate.texts, max_length)}
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    with torch_threads(cfg.threads):
        seeds = [_one_seed(ctx, cfg, ctx.seed + s, train, searched_on, evaluate, lengths)
                 for s in track(range(cfg.seeds), "DiffRate on SST-2", total=cfg.seeds)]
    hits = {m: np.stack([s.correct[m] for s in seeds], axis=1) for m in METHODS}
    flops = {m: float(np.mean([s.flops[m] for s in seeds])) for m in METHODS}
    rows = []
    for method in METHODS:
        per_seed = hits[method].mean(axis=0)
        setting = {"full": "-", MERGE_ONLY: "ablation", TOME_AT_COUNTS: "ablation"}.get(
            method, f"FLOPs of PiToMe keep {cfg.target_keep}")
        rows.append({"task": f"text/{DATASET}", "method": method, "setting": setting,
                     "acc": float(per_seed.mean()),
                     "acc_std_over_seeds": float(per_seed.std(ddof=1)) if cfg.seeds > 1
                     else None,
                     "acc_ci95": crossed_bootstrap_interval(np.mean, hits[method], seed=ctx.seed),
                     "mflops": flops[method] / 1e6,
                     "flops_reduction": 1 - flops[method] / flops["full"]})
    tests = []
    for s in seeds:
        for other in ("ToMe", "uniform", "full", MERGE_ONLY, TOME_AT_COUNTS):
            t = mcnemar(s.correct["DiffRate"], s.correct[other])
            tests.append({"seed": s.seed, "versus": other,
                          "acc_diffrate": float(s.correct["DiffRate"].mean()),
                          "acc_other": float(s.correct[other].mean()),
                          "diffrate_only_right": t["a_only"], "other_only_right": t["b_only"],
                          "p": t["p"]})

    def gap(other: str) -> dict[str, Any]:
        return crossed_bootstrap_interval(lambda a, b: float(a.mean() - b.mean()),
                                          hits["DiffRate"], hits[other], seed=ctx.seed)

    summary = {
        "text_acc_full": float(hits["full"].mean()),
        "text_acc_diffrate": float(hits["DiffRate"].mean()),
        "text_acc_tome": float(hits["ToMe"].mean()),
        "text_acc_uniform": float(hits["uniform"].mean()),
        "text_acc_merge_only": float(hits[MERGE_ONLY].mean()),
        "text_acc_tome_at_diffrate_counts": float(hits[TOME_AT_COUNTS].mean()),
        "text_flops_reduction_tome_at_diffrate_counts": 1 - flops[TOME_AT_COUNTS] / flops["full"],
        "text_flops_reduction": 1 - flops["DiffRate"] / flops["full"],
        "text_flops_reduction_target": 1 - flops["ToMe"] / flops["full"],
        "text_flops_reduction_uniform": 1 - flops["uniform"] / flops["full"],
        "text_acc_diffrate_minus_tome_ci95": gap("ToMe"),
        "text_acc_diffrate_minus_uniform_ci95": gap("uniform"),
        "text_acc_diffrate_minus_full_ci95": gap("full"),
        "text_acc_diffrate_minus_merge_only_ci95": gap(MERGE_ONLY),
        "text_acc_diffrate_minus_tome_at_diffrate_counts_ci95": gap(TOME_AT_COUNTS),
        "text_p_diffrate_vs_tome": [t["p"] for t in tests if t["versus"] == "ToMe"],
        "text_p_diffrate_vs_uniform": [t["p"] for t in tests if t["versus"] == "uniform"],
        "text_p_diffrate_vs_merge_only": [t["p"] for t in tests if t["versus"] == MERGE_ONLY],
        "text_p_diffrate_vs_tome_at_diffrate_counts": [
            t["p"] for t in tests if t["versus"] == TOME_AT_COUNTS],
    }
    described = {
        "train": train.name, "train_sentences": len(train), "eval": evaluate.name,
        "eval_sentences": len(evaluate), "search_sentences": len(searched_on),
        "mean_tokens_eval": float(np.mean(lengths["eval"])),
        "finetune": dataclasses.asdict(cfg.finetune), "search": dataclasses.asdict(cfg.search),
        "target_keep": cfg.target_keep,
        "seeds": [{"seed": s.seed, "finetune_cached": s.cached,
                   "train_seconds": round(s.train_seconds, 1),
                   "search_seconds": round(s.search_seconds, 1), "rates": s.rates.to_dict(),
                   "trace": s.trace[:: max(1, len(s.trace) // 50)],
                   "mflops": {m: f / 1e6 for m, f in s.flops.items()}} for s in seeds],
        "mcnemar": tests,
    }
    _plot(ctx, rows)
    notes = [
        "Text (task text/sst2; no paper reports DiffRate on text): all-MiniLM-L6-v2 "
        f"fine-tuned here with a linear head on [CLS] ({cfg.seeds} seed(s), PiToMe's "
        "text recipe and cache), DiffRate searched on "
        f"{cfg.search_examples} training sentences at the FLOPs of PiToMe keep "
        f"{cfg.target_keep} (reference text schedule: the first three layers merge), "
        "rates as fractions of each sentence's real tokens; ToMe = ToMe given that PiToMe "
        "schedule's merge counts (the target FLOPs exactly, per sentence); uniform = "
        "DiffRate's merge, the same share in every layer after the first, at DiffRate's "
        "FLOPs. FLOPs analytic, averaged over the dev sentences; accuracy intervals are a "
        "bootstrap over dev sentences x fine-tuning seeds; McNemar per seed."]
    return rows, summary, described, notes


def _plot(ctx: RunContext, rows: list[dict[str, Any]]) -> None:
    fig, ax = plots.figure(title="MiniLM fine-tuned on SST-2, reduced off the shelf")
    full = next(r for r in rows if r["method"] == "full")
    ax.axhline(full["acc"], color="grey", ls=":", label="full model")
    for row, marker in zip(rows, ("*", "o", "s", "^", "D", "v"), strict=True):
        plots.errorbars(ax, [row["mflops"]], [row["acc"]], [row["acc_ci95"]], marker=marker,
                        ls="none", ms=6, label=row["method"])
    ax.set_xlabel("MFLOPs per sentence (analytic, mean over dev sentences)")
    ax.set_ylabel("dev accuracy (bars: 95% bootstrap, sentences x seeds)")
    plots.legend_outside(ax)
    plots.save(fig, ctx.plot_path("text_accuracy_flops"))
