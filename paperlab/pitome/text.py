"""PiToMe's text-classification comparison on a pretrained BERT encoder (all-MiniLM-L6-v2).

For each data set (SST-2: accuracy on its dev split, as the paper; Rotten Tomatoes: the standard
test split) and each fine-tuning seed, MiniLM with a linear head is fine-tuned on the training
split (:mod:`paperlab.text.train`, cached), then evaluated off the shelf, without retraining,
with: the full model; ToMe at constant ``r``; PiToMe at several keep ratios with the reference
code's text schedule (its Gaussian energy, merging in the first three layers only); PiToMe with
the same rule in every layer; and ToMe given PiToMe's merge count in every layer (the same
token counts, so the same FLOPs, per sentence). FLOPs are analytic per sentence
(:func:`~paperlab.merging.bert.bert_flops` over each sentence's own token schedule) and
averaged over the evaluated sentences.

Uncertainty: accuracies are averaged over the fine-tuning seeds; their 95 % intervals are a
bootstrap over test sentences crossed with the seeds (:func:`crossed_bootstrap_interval`), and
PiToMe against matched ToMe also gets an exact McNemar test per seed.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
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
from paperlab.merging import tome
from paperlab.merging.bert import bert_flops, mean_bert_flops
from paperlab.merging.energy import bert_rule
from paperlab.pitome.merge import patch as pitome_patch
from paperlab.text import data as text_data
from paperlab.text.minilm import load_tokenizer
from paperlab.text.train import FinetuneConfig, finetune, predict

log = logging.getLogger(__name__)

EVAL_SPLIT = {"sst2": "dev", "rotten_tomatoes": "test"}
LAYERS = 6  # all-MiniLM-L6-v2


@dataclass(frozen=True)
class TextConfig:
    """The text comparison's size.

    Attributes:
        datasets: ``"sst2"`` and/or ``"rotten_tomatoes"``.
        seeds: fine-tuning seeds (``ctx.seed``, ``ctx.seed + 1``, ...).
        finetune: the fine-tuning recipe (its ``seed`` is replaced per seed).
        train_examples: training sentences per data set (None: all), drawn with a fixed seed.
        eval_examples: evaluated sentences per data set (None: the whole split).
        keep_ratios: PiToMe keep ratios with the reference's text schedule (the smallest is
            the claim's); ToMe matched to each.
        every_layer_ratios: keep ratios also run with the text rule in every layer.
        tome_r: constant ToMe r values.
        eval_batch: sentences per forward call when evaluating.
        threads: torch threads for fine-tuning and evaluation.
    """

    datasets: tuple[str, ...] = ("sst2", "rotten_tomatoes")
    seeds: int = 3
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    train_examples: int | None = None
    eval_examples: int | None = None
    keep_ratios: tuple[float, ...] = (0.9, 0.8, 0.7, 0.65)
    every_layer_ratios: tuple[float, ...] = (0.9,)
    tome_r: tuple[int, ...] = (1, 2, 4)
    eval_batch: int = 64
    threads: int = 2

    def __post_init__(self) -> None:
        unknown = [d for d in self.datasets if d not in EVAL_SPLIT]
        if unknown or not self.datasets:
            raise ValueError(f"datasets must be among {sorted(EVAL_SPLIT)}, got {self.datasets}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if not self.keep_ratios or not all(0.5 <= k <= 1 for k in self.keep_ratios):
            raise ValueError(f"keep_ratios must be in [0.5, 1], got {self.keep_ratios}")

    @classmethod
    def quick(cls) -> TextConfig:
        return cls(seeds=1, finetune=FinetuneConfig(epochs=2), train_examples=1500,
                   eval_examples=400, keep_ratios=(0.8, 0.65), tome_r=(2,))


@dataclass(frozen=True)
class TextSetting:
    """One evaluated model: method, parameter, and how to patch a copy of the classifier."""

    method: str
    param: str
    apply: Any
    ratio: float | None = None


def text_settings(cfg: TextConfig) -> list[TextSetting]:
    out = [TextSetting("full", "-", lambda m: m)]
    out += [TextSetting("ToMe r", f"r={r}", lambda m, r=r: tome.patch(m, r)) for r in cfg.tome_r]
    for k in cfg.keep_ratios:
        out.append(TextSetting("PiToMe", f"keep={k}", lambda m, k=k: pitome_patch(m, k), k))
        for prop in (True, False):
            out.append(TextSetting(
                f"ToMe matched (prop_attn={'on' if prop else 'off'})", f"keep={k}",
                lambda m, k=k, p=prop: tome.patch_matched(m, bert_rule(LAYERS, k), prop_attn=p),
                k))
    for k in cfg.every_layer_ratios:
        out.append(TextSetting("PiToMe every layer", f"keep={k}",
                               lambda m, k=k: pitome_patch(m, k, schedule="every-layer"), k))
    return out


def schedule_flops(config: Any, rule: Any | None, lengths: list[int]) -> float:
    """Analytic multiply-adds per sentence of a MiniLM classifier (``config``: its
    ``BertConfig``) merging by ``rule`` (a :class:`~paperlab.merging.plan.MergeRule`; None: the
    full model), averaged over sentences of the given token counts (``[CLS]``, ``[SEP]``
    included)."""
    def tokens(n: int) -> list[tuple[int, int]]:
        return rule.schedule(n, LAYERS, 1) if rule is not None else [(n, n)] * LAYERS

    return mean_bert_flops(config, tokens, lengths, int(config.num_labels))


def mean_flops(model: nn.Module, lengths: list[int]) -> float:
    """Analytic multiply-adds per sentence of ``model`` (patched or not), averaged over
    sentences of the given token counts (``[CLS]`` and ``[SEP]`` included)."""
    state = getattr(model, "_merge_state", None)
    return schedule_flops(model.config, state.rule if state is not None else None, lengths)


def token_lengths(texts: tuple[str, ...] | list[str], max_length: int) -> list[int]:
    """Tokens per sentence as the classifier sees them (``[CLS]``/``[SEP]`` included,
    truncated to ``max_length``)."""
    return [len(ids) for ids in load_tokenizer()(
        list(texts), truncation=True, max_length=max_length)["input_ids"]]


def load_splits(name: str, data_root: Any, cfg: TextConfig, seed: int
                ) -> tuple[text_data.TextSet, text_data.TextSet]:
    """The training split and the evaluated split of data set ``name`` (``cfg``'s
    ``train_examples`` / ``eval_examples`` drawn with ``seed``; None: all)."""
    train = text_data.read(name, "train", data_root)
    evaluate = text_data.read(name, EVAL_SPLIT[name], data_root)
    if cfg.train_examples is not None:
        train = train.subset(cfg.train_examples, seed)
    if cfg.eval_examples is not None:
        evaluate = evaluate.subset(cfg.eval_examples, seed)
    return train, evaluate


def score_settings(fitted: Any, settings: list[TextSetting], evaluate: text_data.TextSet,
                   lengths: list[int], max_length: int, batch: int
                   ) -> tuple[dict[tuple[str, str], np.ndarray], dict[tuple[str, str], float]]:
    """Patch a copy of the fine-tuned classifier ``fitted`` (a
    :class:`~paperlab.text.train.Finetuned`) by each setting and score it on ``evaluate``.

    Args:
        fitted: the fine-tuned classifier and its tokenizer.
        settings: the models to evaluate.
        evaluate: the evaluated sentences.
        lengths: their token counts (:func:`token_lengths`), for the FLOPs.
        max_length: tokens kept per sentence (the fine-tuning's).
        batch: sentences per forward call.

    Returns:
        ``(method, param) -> bool (sentences,)``, whether each sentence is classified right,
        and ``(method, param) ->`` mean analytic multiply-adds per sentence.
    """
    correct, flops = {}, {}
    for setting in settings:
        key = (setting.method, setting.param)
        model = setting.apply(copy.deepcopy(fitted.model)).eval()
        with torch.no_grad():
            pred = predict(model, fitted.tokenizer, evaluate.texts, max_length, batch)
        correct[key] = pred == evaluate.labels
        flops[key] = mean_flops(model, lengths)
    return correct, flops


def run_text(ctx: RunContext, cfg: TextConfig
             ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any], list[str]]:
    """The comparison on every data set: result rows, summary keys (``text_<data set>_...``),
    a description of the data, the fine-tuning and the per-seed McNemar tests, and the notes
    that say how it was measured."""
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    described: dict[str, Any] = {"finetune": dataclasses.asdict(cfg.finetune), "datasets": {}}
    with torch_threads(cfg.threads):
        for name in cfg.datasets:
            rows += _one_dataset(ctx, cfg, name, summary, described)
    summary["text_keep_ratio"] = min(cfg.keep_ratios)
    _plot(ctx, rows, cfg)
    notes = [
        "Text (task text/...): all-MiniLM-L6-v2 fine-tuned here with a linear head on [CLS] "
        f"({cfg.seeds} seed(s)), merged off the shelf; PiToMe with the reference code's "
        "text schedule (Gaussian energy, first three layers merge); ToMe matched = ToMe with "
        "PiToMe's merge count in every layer of every sentence; MFLOPs per sentence, "
        "analytic, averaged over the evaluated sentences; acc_ci95 a bootstrap over "
        "sentences crossed with the seeds."]
    return rows, summary, described, notes


def _one_dataset(ctx: RunContext, cfg: TextConfig, name: str, summary: dict[str, Any],
                 described: dict[str, Any]) -> list[dict[str, Any]]:
    """Fine-tune, merge and evaluate on one data set; fills ``summary`` and ``described``."""
    rows: list[dict[str, Any]] = []
    settings = text_settings(cfg)
    train, evaluate = load_splits(name, ctx.data_root, cfg, ctx.seed)
    correct: dict[tuple[str, str], list[np.ndarray]] = {}
    tests, fitted_info = [], []
    lengths = token_lengths(evaluate.texts, cfg.finetune.max_length)
    flops: dict[tuple[str, str], float] = {}
    for s in track(range(cfg.seeds), f"PiToMe on {name}", total=cfg.seeds):
        recipe = dataclasses.replace(cfg.finetune, seed=ctx.seed + s)
        fitted = finetune(train, recipe)
        fitted_info.append({"seed": recipe.seed, "cached": fitted.cached,
                            "train_seconds": fitted.train_seconds})
        scored, flops = score_settings(fitted, settings, evaluate, lengths,
                                       recipe.max_length, cfg.eval_batch)
        for key, hits in scored.items():
            correct.setdefault(key, []).append(hits)
        for k in cfg.keep_ratios:
            pit = correct[("PiToMe", f"keep={k}")][-1]
            other = correct[("ToMe matched (prop_attn=on)", f"keep={k}")][-1]
            test = mcnemar(pit, other)
            tests.append({"seed": recipe.seed, "keep_ratio": k, "acc_pitome": pit.mean(),
                          "acc_tome_matched": other.mean(), "pitome_only_right":
                          test["a_only"], "tome_only_right": test["b_only"], "p": test["p"]})
    full_flops = flops[("full", "-")]
    by_key = {key: np.stack(hits, axis=1) for key, hits in correct.items()}
    for setting in settings:
        key = (setting.method, setting.param)
        per_seed = by_key[key].mean(axis=0)
        rows.append({"task": f"text/{name}", "method": setting.method,
                     "setting": setting.param, "acc": float(per_seed.mean()),
                     "acc_std_over_seeds": float(per_seed.std(ddof=1)) if cfg.seeds > 1
                     else None,
                     "acc_ci95": crossed_bootstrap_interval(np.mean, by_key[key],
                                                            seed=ctx.seed),
                     "mflops": flops[key] / 1e6,
                     "flops_reduction": 1 - flops[key] / full_flops})
    ratio = min(cfg.keep_ratios)
    pit = by_key[("PiToMe", f"keep={ratio}")]
    matched = by_key[("ToMe matched (prop_attn=on)", f"keep={ratio}")]
    prefix = f"text_{name}"
    summary.update({
        f"{prefix}_acc_full": float(by_key[("full", "-")].mean()),
        f"{prefix}_acc_pitome": float(pit.mean()),
        f"{prefix}_acc_tome_matched": float(matched.mean()),
        f"{prefix}_flops_reduction": 1 - flops[("PiToMe", f"keep={ratio}")] / full_flops,
        f"{prefix}_acc_pitome_minus_tome_matched_ci95": crossed_bootstrap_interval(
            lambda a, b: float(a.mean() - b.mean()), pit, matched, seed=ctx.seed),
        f"{prefix}_p_pitome_vs_tome": [t["p"] for t in tests if t["keep_ratio"] == ratio],
    })
    described["datasets"][name] = {
        "train": train.name, "train_sentences": len(train), "eval": evaluate.name,
        "eval_sentences": len(evaluate), "mean_tokens": float(np.mean(lengths)),
        "finetuned": fitted_info, "mcnemar": tests}
    log.info("text %s: full %.4f, PiToMe %.4f, matched ToMe %.4f", name,
             summary[f"{prefix}_acc_full"], summary[f"{prefix}_acc_pitome"],
             summary[f"{prefix}_acc_tome_matched"])
    return rows


def _plot(ctx: RunContext, rows: list[dict[str, Any]], cfg: TextConfig) -> None:
    fig, axes = plots.figure(1, len(cfg.datasets), size=3.6,
                             title="MiniLM fine-tuned, merged off the shelf")
    axes = np.atleast_1d(axes)
    styles = {"PiToMe": ("o", "-"), "ToMe matched (prop_attn=on)": ("s", "--"),
              "ToMe matched (prop_attn=off)": ("s", ":"), "ToMe r": ("^", "-"),
              "PiToMe every layer": ("D", "none")}
    for ax, name in zip(axes, cfg.datasets, strict=True):
        mine = [r for r in rows if r["task"] == f"text/{name}"]
        accuracy_flops_panel(ax, mine, styles)
        ax.set_title(f"{name} ({EVAL_SPLIT[name]})")
        ax.set_xlabel("MFLOPs per sentence (analytic)")
    axes[0].set_ylabel("accuracy (bars: 95% bootstrap, sentences x seeds)")
    plots.legend_outside(axes[-1])
    plots.save(fig, ctx.plot_path("text_accuracy_flops"))


# ---------------------------------------------------------------------------------------------
# bench: where merging matters on text, long inputs


def bench_text(lengths: tuple[int, ...], batches: tuple[int, ...], ratios: tuple[float, ...],
               repeats: int, seed: int = 0) -> list[dict[str, Any]]:
    """Tokens/s and latency of MiniLM (random head; speed does not depend on the weights'
    values) on inputs of ``lengths`` tokens at each batch size: the full model with PyTorch's
    fused attention (SDPA, the fastest unpatched path), PiToMe with the reference's text
    schedule and with its rule in every layer, and ToMe matched to each, by the calling
    thread's CPU time (interleaved repeats, :func:`paperlab.core.timing.compare`).

    Inputs are random token ids (no padding), e.g. what concatenated reviews look like to the
    encoder: merging's cost and savings depend on the length, not on the words.
    """
    from paperlab.core import timing
    from paperlab.text.minilm import load_classifier

    torch.manual_seed(seed)
    base = load_classifier(2).eval()
    full = copy.deepcopy(base)
    full.config._attn_implementation = "sdpa"
    contenders: dict[str, tuple[str, float, nn.Module]] = {"full": ("full", 1.0, full)}
    for k in ratios:
        for schedule, label in (("reference", "first 3 layers"), ("every-layer", "every layer")):
            rule = bert_rule(LAYERS, k, schedule=schedule)
            contenders[f"PiToMe {label} {k}"] = (
                f"PiToMe ({label})", k, pitome_patch(copy.deepcopy(base), k, schedule=schedule))
            contenders[f"ToMe {label} {k}"] = (
                f"ToMe matched ({label})", k, tome.patch_matched(copy.deepcopy(base), rule))
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for length in lengths:
        for batch in batches:
            ids = torch.randint(1000, int(base.config.vocab_size), (batch, length), generator=gen)
            ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
            mask = torch.ones_like(ids)

            def call(model: nn.Module, ids: torch.Tensor = ids, mask: torch.Tensor = mask
                     ) -> Any:
                def forward() -> None:
                    with torch.inference_mode():
                        model(input_ids=ids, attention_mask=mask)
                return forward

            timings = timing.compare({name: call(c[2]) for name, c in contenders.items()},
                                     warmup=1, repeats=repeats)
            ref = timings["full"]
            for name, (method, k, model) in contenders.items():
                t = timings[name]
                state = getattr(model, "_merge_state", None)
                tokens = state.rule.schedule(length, LAYERS, 1) if state else [
                    (length, length)] * LAYERS
                rows.append({
                    "model": "MiniLM-L6 (text)", "method": method, "keep_ratio": k,
                    "tokens": length, "batch": batch,
                    "mflops": bert_flops(model.config, tokens, 2) / 1e6,
                    "latency_ms": t.cpu_median * 1e3,
                    "tokens_per_s": batch * length / t.cpu_median,
                    "speedup_vs_full": ref.cpu_median / t.cpu_median,
                    "wall_speedup_vs_full": ref.median / t.median})
    return rows


def accuracy_flops_panel(ax: Any, rows: list[dict[str, Any]],
                         styles: dict[str, tuple[str, str]]) -> None:
    """Accuracy (with each row's ``acc_ci95`` as bars) against MFLOPs, one line per method in
    ``styles`` (``method -> (marker, line style)``), the full model as a star and a line.
    Shared by the image and the text comparison's plots."""
    full = next(r for r in rows if r["method"] == "full")
    ax.axhline(full["acc"], color="grey", ls=":", label="full model")
    for method, (marker, line) in styles.items():
        pts = sorted((r for r in rows if r["method"] == method), key=lambda r: r["mflops"])
        if pts:
            plots.errorbars(ax, [r["mflops"] for r in pts], [r["acc"] for r in pts],
                            [r["acc_ci95"] for r in pts], marker=marker, ls=line, ms=4,
                            alpha=0.8, label=method)
    plots.errorbars(ax, [full["mflops"]], [full["acc"]], [full["acc_ci95"]], marker="*",
                    ls="none", color="k", ms=8)
