"""Reproduction and benchmark of DiffRate on CIFAR-10, against ToMe and a uniform schedule.

``run``: the ViT of :mod:`paperlab.vision` trained here (the same model and training as the
PiToMe run, so their cached checkpoint is shared), then DiffRate's rates searched at three FLOPs
targets (fractions of the full model's) on a subset of the training images, and, without
fine-tuning, evaluated on the test images: accuracy (with its Clopper-Pearson interval), analytic
FLOPs and measured images/s of the full model, DiffRate at each target, a uniform schedule at
DiffRate's achieved FLOPs (DiffRate's own class-attention merge, the same count removed in every
block after block 0) and ToMe given the uniform schedule's per-block counts (the same FLOPs where
bipartite matching allows), and DiffRate's learned counts applied with PiToMe's energy-score
merge rule in place of DiffRate's merge (pruning unchanged; a combination no paper reports).
Exact McNemar tests of DiffRate against each with the exact paired interval of the accuracy
difference, the throughput ratio's interval from the timing repeats, a plot of the learned
per-layer kept counts and one of accuracy against FLOPs. The rates are saved as JSON next to
the results.

``run`` with the text part (``--parts text`` alone, or both, the default): DiffRate on a
fine-tuned BERT encoder on SST-2 against ToMe and the uniform schedule at the FLOPs of PiToMe at
keep ratio 0.65 (:mod:`paperlab.diffrate.text`; no paper reports DiffRate on text).

``bench``: the search's cost (minutes for the whole search and per 1,000 images and epoch) and
images/s at batch 1 and 64 of DiffRate, uniform and ToMe at the middle target against the full
model.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from paperlab.core import plots
from paperlab.core.config import resolve_config
from paperlab.core.parts import join_parts, with_parts
from paperlab.core.results import Result, RunContext
from paperlab.core.seed import seed_everything, torch_threads
from paperlab.diffrate.model import (
    SearchConfig,
    apply,
    rates_flops,
    rule_tokens,
    search,
    uniform_rates,
)
from paperlab.diffrate.rates import Rates
from paperlab.diffrate.text import TextConfig, run_text
from paperlab.diffrate.vit import num_tokens
from paperlab.merging import tome
from paperlab.merging.vit import token_schedule
from paperlab.vision.comparison import ViTComparison, score
from paperlab.vision.data import ImageSet
from paperlab.vision.flops import model_flops
from paperlab.vision.speed import measure_speed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config(ViTComparison):
    """One reproduction (and benchmark) size: the fields of
    :class:`~paperlab.vision.comparison.ViTComparison` (the ViT, its training and teacher:
    PiToMe's run's, so the checkpoints are shared; the test images; the images/s column; the
    benchmark's repeats; whether the CIFAR-10 comparison runs) and DiffRate's own.

    Attributes:
        targets: FLOPs targets as fractions of the full model's; ``mid`` (one of them) is the
            summary's (2.9 / 4.6 = 0.63 in the paper).
        search: the search's settings.
        search_per_class: training images per class searched on.
        text: the SST-2 comparison on a fine-tuned MiniLM
            (:class:`~paperlab.diffrate.text.TextConfig`), or None to skip it.
    """

    targets: tuple[float, ...] = (0.8, 0.63, 0.5)
    mid: float = 0.63
    search: SearchConfig = SearchConfig(epochs=4, batch_size=32, lr=0.05, lr_min=0.005)
    search_per_class: int = 100
    text: TextConfig | None = field(default_factory=TextConfig)

    def __post_init__(self) -> None:
        if self.mid not in self.targets:
            raise ValueError(f"mid={self.mid} must be one of the targets {self.targets}")
        if not all(0 < t < 1 for t in self.targets):
            raise ValueError(f"targets are fractions of the full FLOPs in (0, 1): {self.targets}")
        super().__post_init__()

    @classmethod
    def quick(cls) -> Config:
        return dataclasses.replace(
            super().quick(), search=SearchConfig(epochs=4, batch_size=16, lr=0.1, lr_min=0.01),
            search_per_class=30, text=TextConfig.quick())

    def with_options(self, options: Mapping[str, Any]) -> Config:
        """Apply ``--retrain``, ``--epochs``, ``--eval-images``, ``--search-epochs`` (the
        ViT's search), ``--parts`` (which comparisons run: ``vision``, ``text`` or both) and
        ``--text-seeds``."""
        cfg = super().with_options(options)
        if "search_epochs" in options:
            cfg = dataclasses.replace(cfg, search=dataclasses.replace(
                cfg.search, epochs=int(options["search_epochs"])))
        return with_parts(cfg, options, TextConfig)


# ---------------------------------------------------------------------------------------------
# data, model, search


def _per_class(data: ImageSet, per_class: int) -> ImageSet:
    """The first ``per_class`` images of each class."""
    picks = [torch.nonzero(data.labels == c).flatten()[:per_class]
             for c in range(len(data.classes))]
    return data.subset(torch.cat(picks))


@dataclass(frozen=True)
class Searched:
    target: float
    rates: Rates
    seconds: float
    trace: list[dict[str, float]]


def _search_all(ctx: RunContext, cfg: Config, model: nn.Module, data: ImageSet
                ) -> list[Searched]:
    full = model_flops(model)
    out = []
    for target in cfg.targets:
        trace: list[dict[str, float]] = []
        search_cfg = dataclasses.replace(cfg.search, seed=ctx.seed)
        start = time.perf_counter()
        rates = search(model, data, target * full / 1e9, search_cfg, trace)
        out.append(Searched(target, rates, time.perf_counter() - start, trace))
        rates.save(ctx.out_dir / f"diffrate_rates_{target}.json")
    return out


PITOME_RULE = "DiffRate+PiToMe rule"


def _contenders(base: nn.Module, rates: Rates, pitome_rule: bool = False
                ) -> dict[str, tuple[nn.Module, list]]:
    """DiffRate with ``rates``, the uniform schedule at its FLOPs, ToMe given the uniform
    schedule's per-block counts (see :func:`~paperlab.merging.tome.tome_counts`) and,
    with ``pitome_rule``, ``rates`` applied with PiToMe's merge rule: ``method -> (patched
    copy, token schedule)``."""
    uniform = uniform_rates(base, rates_flops(base, rates))
    tomed = tome.patch(copy.deepcopy(base), tome.tome_counts(uniform.tokens(), uniform.prefix))
    out = {
        "DiffRate": (apply(copy.deepcopy(base), rates), rates.tokens()),
        "uniform": (apply(copy.deepcopy(base), uniform), uniform.tokens()),
        "ToMe": (tomed, token_schedule(tomed)),
    }
    if pitome_rule:
        out[PITOME_RULE] = (apply(copy.deepcopy(base), rates, merge_rule="pitome"),
                            rule_tokens(rates, "pitome"))
    return out


# ---------------------------------------------------------------------------------------------
# run


def run(ctx: RunContext, config: Config | None = None) -> Result:
    """The CIFAR-10 comparison (``cfg.vision``) and the SST-2 one (``cfg.text``)."""
    cfg = resolve_config(ctx, Config, config)
    seed_everything(ctx.seed)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    return join_parts(run_vision(ctx, cfg) if cfg.vision else None,
                      run_text(ctx, cfg.text) if cfg.text is not None else None)


def run_vision(ctx: RunContext, cfg: Config
               ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any], list[str]]:
    """The CIFAR-10 comparison: rows, summary, data and notes."""
    with torch_threads(cfg.threads):
        base, train, train_info = cfg.trained(ctx)
        search_data = _per_class(train, cfg.search_per_class)
        searched = _search_all(ctx, cfg, base, search_data)
        test = cfg.test_images(ctx)
        full_flops = model_flops(base)
        models: dict[str, nn.Module] = {"full": base}
        n = num_tokens(base)
        rows = [{"method": "full", "target": 1.0, "kept": [n] * cfg.vit.depth,
                 "mflops": full_flops / 1e6}]
        for s in searched:
            for method, (model, tokens) in _contenders(base, s.rates, pitome_rule=True).items():
                models[f"{method} {s.target}"] = model
                rows.append({"method": method, "target": s.target,
                             "kept": [out for _, out in tokens],
                             "mflops": model_flops(base, tokens) / 1e6})
        scores = score(models, test, cfg.speed_batch, cfg.speed_repeats)
        for row in rows:
            row.update(scores.accuracy(_key(row)))
            row["flops_reduction"] = 1 - row["mflops"] * 1e6 / full_flops
            row.update(scores.speed(_key(row)))
            log.info("%s: acc %.4f at %.3f MFLOPs", _key(row), row["acc"], row["mflops"])
        tests = []
        for s in searched:
            ours = f"DiffRate {s.target}"
            for other in ("uniform", "ToMe", "full", PITOME_RULE):
                versus = "full" if other == "full" else f"{other} {s.target}"
                t = scores.paired(ours, versus)
                tests.append({"target": s.target, "versus": other,
                              "acc_diffrate": float(scores.hits[ours].mean()),
                              "acc_other": float(scores.hits[versus].mean()),
                              "diffrate_only_right": t["a_only"], "other_only_right": t["b_only"],
                              "p_value": t["p"], "acc_diff_ci95": t["acc_diff_ci95"]})
        _plot_rates(ctx, searched, base)
        _plot_accuracy(ctx, rows)
    summary = _summary(rows, tests, cfg)
    summary["throughput_ratio_mid_ci95"] = scores.throughput_interval(f"DiffRate {cfg.mid}",
                                                                      "full")
    notes = [
        f"ViT {cfg.vit.dim}x{cfg.vit.depth} ({cfg.vit.heads} heads, patch {cfg.vit.patch_size}"
        f"{', distillation token' if cfg.vit.distilled else ''}) trained here for "
        f"{cfg.train.epochs} epochs on {train_info['train_images']} CIFAR-10 training JPEGs "
        f"{'by DeiT hard-label distillation from the shared CNN teacher ' if cfg.teacher else ''}"
        "(quality 75 re-encodings; accuracies are not CIFAR-10 literature figures); no "
        "fine-tuning after the rates are applied; the class and distillation tokens are never "
        "pruned or merged, and the FLOPs count both.",
        f"Search on {len(search_data)} training images, {cfg.search.epochs} epochs, batch "
        f"{cfg.search.batch_size}, AdamW on the rate logits only, lr {cfg.search.lr} -> "
        f"{cfg.search.lr_min} cosine (the paper: 0.01 -> 0.001 over thousands of steps; ours "
        "are a few hundred at most, so the lr is larger), lambda = "
        f"{cfg.search.lam} with FLOPs in units where the full model costs 4.6 (DeiT-S's G).",
        "uniform = DiffRate's own class-attention merge removing the same number of tokens in "
        "every block after block 0, chosen to match DiffRate's achieved FLOPs; ToMe = ToMe "
        "given the uniform schedule's per-block counts (identical token counts and FLOPs unless "
        "a block would merge more than half its patch tokens, which bipartite matching cannot: "
        "then the excess is merged in the next blocks and ToMe's own FLOPs are reported).",
        f"images/s: batch {cfg.speed_batch}, {cfg.threads} thread(s), median of "
        f"{cfg.speed_repeats} interleaved repeats on a shared CPU; the throughput ratio uses the "
        "thread's CPU time (waiting for a core not counted); its 95% interval is a bootstrap "
        "of the medians over those repeats.",
        "Intervals (95%): acc_ci95 per row is Clopper-Pearson over the test images (the plot's "
        "bars); DiffRate against full and uniform is judged on the exact paired interval of the "
        "difference over the same images (acc_diff_ci95 in the McNemar rows), which is narrower "
        "than the two bars suggest because most images are right or wrong under both.",
        f"{PITOME_RULE} = DiffRate's learned counts applied with PiToMe's energy-score merge "
        "(paperlab.merging.energy: margins 0.75 - 0.75 l/L, the reference code's schedule with "
        "nothing protected in the first ceil(L/2) blocks, size-weighted average) in place of "
        "DiffRate's merge; pruning stays DiffRate's class-attention ranking; proportional "
        "attention as in DiffRate. Where a block would merge more than half its pruned patch "
        "tokens the energy rule merges half and the later blocks' absolute counts take the "
        "rest; its FLOPs are then its own (reported in its row).",
    ]
    data = {"test": test.source, "eval_images": len(test), "model": dataclasses.asdict(cfg.vit),
            "train": {**dataclasses.asdict(cfg.train), **train_info},
            "search": {**dataclasses.asdict(cfg.search), "images": len(search_data)},
            "searches": [{"target": s.target, "rates": s.rates.to_dict(),
                          "seconds": round(s.seconds, 1),
                          "trace": s.trace[:: max(1, len(s.trace) // 50)]} for s in searched],
            "mcnemar": tests}
    return rows, summary, data, notes


def _key(row: Mapping[str, Any]) -> str:
    return "full" if row["method"] == "full" else f"{row['method']} {row['target']}"


def _row(rows: list[dict[str, Any]], method: str, target: float) -> dict[str, Any]:
    return next(r for r in rows if r["method"] == method and r["target"] == target)


def _summary(rows: list[dict[str, Any]], tests: list[dict[str, Any]], cfg: Config
             ) -> dict[str, Any]:
    full = _row(rows, "full", 1.0)
    mid = _row(rows, "DiffRate", cfg.mid)
    combo = _row(rows, PITOME_RULE, cfg.mid)

    def mid_test(versus: str) -> dict[str, Any]:
        return next(t for t in tests if t["target"] == cfg.mid and t["versus"] == versus)

    return {
        "acc_full": full["acc"],
        "acc_diffrate_mid": mid["acc"],
        "acc_uniform_same_flops": _row(rows, "uniform", cfg.mid)["acc"],
        "acc_tome_same_flops": _row(rows, "ToMe", cfg.mid)["acc"],
        "flops_reduction_mid": mid["flops_reduction"],
        "throughput_ratio_mid": mid["cpu_images_per_s"] / full["cpu_images_per_s"],
        "acc_diffrate_pitome_rule_mid": combo["acc"],
        "flops_reduction_diffrate_pitome_rule_mid": combo["flops_reduction"],
        "p_diffrate_vs_pitome_rule_mid": mid_test(PITOME_RULE)["p_value"],
        # the accuracy claims' intervals: exact, paired over the same test images
        "acc_diffrate_mid_minus_full_ci95": mid_test("full")["acc_diff_ci95"],
        "acc_diffrate_mid_minus_uniform_ci95": mid_test("uniform")["acc_diff_ci95"],
    }


def _plot_rates(ctx: RunContext, searched: list[Searched], base: nn.Module) -> None:
    fig, ax = plots.figure(title="Learned tokens kept per block (class token included)")
    for s in searched:
        blocks = np.arange(s.rates.depth)
        line = ax.plot(blocks, s.rates.merge, "o-", ms=4,
                       label=f"target {s.target:.2f} (after merging)")[0]
        ax.plot(blocks, s.rates.prune, "v:", ms=4, color=line.get_color(),
                label=f"target {s.target:.2f} (after pruning)")
        uniform = uniform_rates(base, rates_flops(base, s.rates))
        ax.plot(blocks, uniform.merge, "--", color=line.get_color(), alpha=0.5,
                label=f"uniform, same FLOPs as {s.target:.2f}")
    ax.set_xticks(range(searched[0].rates.depth))
    ax.set_xlabel("block")
    ax.set_ylabel("tokens")
    plots.legend_outside(ax, fontsize=6)
    plots.save(fig, ctx.plot_path("rates"))


def _plot_accuracy(ctx: RunContext, rows: list[dict[str, Any]]) -> None:
    fig, ax = plots.figure(title="Accuracy vs analytic FLOPs (no fine-tuning)")
    full = _row(rows, "full", 1.0)
    ax.axhline(full["acc"], color="grey", ls=":", label="full model")
    styles = {"DiffRate": ("o", "-"), "uniform": ("s", "--"), "ToMe": ("^", ":"),
              PITOME_RULE: ("d", "-.")}
    for method, (marker, line) in styles.items():
        pts = sorted((r for r in rows if r["method"] == method), key=lambda r: r["mflops"])
        plots.errorbars(ax, [r["mflops"] for r in pts], [r["acc"] for r in pts],
                        [r["acc_ci95"] for r in pts], marker=marker, ls=line, ms=4, alpha=0.8,
                        label=method)
    plots.errorbars(ax, [full["mflops"]], [full["acc"]], [full["acc_ci95"]], marker="*",
                    ls="none", color="k", ms=8)
    ax.set_xlabel("MFLOPs per image (multiply-adds, analytic)")
    ax.set_ylabel("test accuracy (bars: 95% Clopper-Pearson)")
    plots.legend_outside(ax)
    plots.save(fig, ctx.plot_path("accuracy_flops"))


# ---------------------------------------------------------------------------------------------
# bench


def bench(ctx: RunContext, config: Config | None = None) -> Result:
    """The search's cost at the middle target, then images/s at each batch size."""
    cfg = resolve_config(ctx, Config, config)
    seed_everything(ctx.seed)
    with torch_threads(cfg.threads):
        base, train, _ = cfg.trained(ctx)
        data = _per_class(train, cfg.search_per_class)
        start = time.perf_counter()
        rates = search(base, data, cfg.mid * model_flops(base) / 1e9,
                       dataclasses.replace(cfg.search, seed=ctx.seed))
        minutes = (time.perf_counter() - start) / 60
        contenders = {"full": base, **{k: m for k, (m, _) in _contenders(base, rates).items()}}
        rows = []
        for batch in cfg.bench_batches:
            speeds = measure_speed(contenders, batch, repeats=cfg.bench_repeats,
                                   inner=8 if batch == 1 else 1)
            ref = speeds["full"]
            for name, s in speeds.items():
                rows.append({"method": name, "batch": batch, "latency_ms": s.latency_ms,
                             "images_per_s": s.images_per_s,
                             "cpu_images_per_s": s.cpu_images_per_s,
                             "speedup_vs_full": s.cpu_images_per_s / ref.cpu_images_per_s,
                             "wall_speedup_vs_full": s.images_per_s / ref.images_per_s})
    per_unit = minutes / (len(data) * cfg.search.epochs / 1000)
    summary: dict[str, Any] = {"search_minutes": minutes,
                               "search_minutes_per_1k_image_epochs": per_unit,
                               "flops_reduction_mid": 1 - rates_flops(base, rates)
                               / model_flops(base)}
    for r in rows:
        if r["method"] == "DiffRate":
            summary[f"speedup_b{r['batch']}"] = r["speedup_vs_full"]
    notes = [
        f"Search at {cfg.mid:.2f} of the full FLOPs on {len(data)} training images x "
        f"{cfg.search.epochs} epochs, {cfg.threads} thread(s) on a shared CPU (wall clock).",
        f"Speed: median of {cfg.bench_repeats} interleaved repeats; speed-ups from the "
        "thread's CPU time against the unpatched model (timm's fused attention).",
    ]
    return Result(results=rows, summary=summary,
                  data={"model": dataclasses.asdict(cfg.vit), "rates": rates.to_dict()},
                  notes=notes)
