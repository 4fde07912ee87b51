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
from paperlab.core.results import Result, RunContext
from paperlab.core.seed import seed_everything, torch_threads
from paperlab.core.stats import (
    mcnemar,
    paired_difference_interval,
    proportion_interval,
    ratio_interval,
)
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
from paperlab.vision.data import ImageSet, load_cifar10
from paperlab.vision.flops import model_flops
from paperlab.vision.models import ModelSpec, ViTSpec
from paperlab.vision.speed import measure_speed
from paperlab.vision.train import (
    CIFAR_VIT,
    CIFAR_VIT_TEACHER,
    CIFAR_VIT_TRAINING,
    QUICK_CIFAR_VIT,
    QUICK_CIFAR_VIT_TEACHER,
    QUICK_CIFAR_VIT_TRAINING,
    TrainConfig,
    fit_cifar10,
    predict,
    with_training_options,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """One reproduction (and benchmark) size.

    Attributes:
        vit, train, teacher, train_per_class: the ViT trained here, DeiT-style (distilled from
        the vision substrate's shared CNN teacher, ``teacher``: its model and training; None:
        no distillation, ``vit`` then without a distillation token): PiToMe's run's, so the
        checkpoints are shared. eval_images: test images evaluated (the first
        ``eval_images / 10`` of each class; 10,000 = all). targets: FLOPs targets as
        fractions of the full model's; ``mid`` (one of them) is the summary's (2.9 / 4.6 =
        0.63 in the paper).
        search: the search's settings. search_per_class: training images per class searched
        on. speed_batch, speed_repeats: the images/s column of ``run`` (repeats >= 2: the
        throughput ratio's interval needs their spread). retrain: ignore a cached
        checkpoint. threads: torch threads. bench_batches, bench_repeats: the benchmark.
        vision: run the CIFAR-10 comparison. text: the SST-2 comparison on a fine-tuned MiniLM
        (:class:`~paperlab.diffrate.text.TextConfig`), or None to skip it.
    """

    vit: ViTSpec = CIFAR_VIT
    train: TrainConfig = CIFAR_VIT_TRAINING
    teacher: tuple[ModelSpec, TrainConfig] | None = CIFAR_VIT_TEACHER
    train_per_class: int | None = None
    eval_images: int = 10_000
    targets: tuple[float, ...] = (0.8, 0.63, 0.5)
    mid: float = 0.63
    search: SearchConfig = SearchConfig(epochs=4, batch_size=32, lr=0.05, lr_min=0.005)
    search_per_class: int = 100
    speed_batch: int = 64
    speed_repeats: int = 3
    retrain: bool = False
    threads: int = 1
    bench_batches: tuple[int, ...] = (1, 64)
    bench_repeats: int = 7
    vision: bool = True
    text: TextConfig | None = field(default_factory=TextConfig)

    def __post_init__(self) -> None:
        if self.mid not in self.targets:
            raise ValueError(f"mid={self.mid} must be one of the targets {self.targets}")
        if not all(0 < t < 1 for t in self.targets):
            raise ValueError(f"targets are fractions of the full FLOPs in (0, 1): {self.targets}")
        if self.speed_repeats < 2:
            raise ValueError(f"speed_repeats must be >= 2 (the throughput ratio's interval comes "
                             f"from their spread), got {self.speed_repeats}")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            vit=QUICK_CIFAR_VIT,
            train=QUICK_CIFAR_VIT_TRAINING,
            teacher=QUICK_CIFAR_VIT_TEACHER,
            train_per_class=300,
            eval_images=1000,
            targets=(0.8, 0.63, 0.5),
            search=SearchConfig(epochs=4, batch_size=16, lr=0.1, lr_min=0.01),
            search_per_class=30,
            speed_repeats=2,
            bench_repeats=3,
            text=TextConfig.quick(),
        )

    @classmethod
    def full(cls) -> Config:
        return cls()

    def with_options(self, options: Mapping[str, Any]) -> Config:
        """Apply ``--retrain``, ``--epochs``, ``--eval-images``, ``--search-epochs`` (the
        ViT's search), ``--parts`` (which comparisons run: ``vision``, ``text`` or both) and
        ``--text-seeds``."""
        cfg = with_training_options(self, options)
        if "search_epochs" in options:
            cfg = dataclasses.replace(cfg, search=dataclasses.replace(
                cfg.search, epochs=int(options["search_epochs"])))
        if "parts" in options:
            parts = options["parts"]
            cfg = dataclasses.replace(cfg, vision="vision" in parts,
                                      text=(cfg.text or TextConfig()) if "text" in parts
                                      else None)
        if "text_seeds" in options and cfg.text is not None:
            cfg = dataclasses.replace(
                cfg, text=dataclasses.replace(cfg.text, seeds=int(options["text_seeds"])))
        return cfg


# ---------------------------------------------------------------------------------------------
# data, model, search


def _trained(ctx: RunContext, cfg: Config) -> tuple[nn.Module, ImageSet, dict[str, Any]]:
    """The cached (or freshly trained) ViT, its training images and a description (and its
    teacher's)."""
    trained, train, info = fit_cifar10(cfg.vit, cfg.train, data_root=ctx.data_root,
                                       per_class=cfg.train_per_class, seed=ctx.seed,
                                       retrain=cfg.retrain, teacher=cfg.teacher)
    return trained.model, train, info


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
    if not cfg.vision and cfg.text is None:
        raise ValueError("nothing to run: neither the vision nor the text part")
    seed_everything(ctx.seed)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    data: dict[str, Any] = {}
    notes: list[str] = []
    if cfg.vision:
        rows, summary, data, notes = run_vision(ctx, cfg)
    if cfg.text is not None:
        text_rows, text_summary, data["text"] = run_text(ctx, cfg.text)
        rows += text_rows
        summary.update(text_summary)
        notes.append(
            "Text (task text/sst2; no paper reports DiffRate on text): all-MiniLM-L6-v2 "
            f"fine-tuned here with a linear head on [CLS] ({cfg.text.seeds} seed(s), PiToMe's "
            "text recipe and cache), DiffRate searched on "
            f"{cfg.text.search_examples} training sentences at the FLOPs of PiToMe keep "
            f"{cfg.text.target_keep} (reference text schedule: the first three layers merge), "
            "rates as fractions of each sentence's real tokens; ToMe = ToMe given that PiToMe "
            "schedule's merge counts (the target FLOPs exactly, per sentence); uniform = "
            "DiffRate's merge, the same share in every layer after the first, at DiffRate's "
            "FLOPs. FLOPs analytic, averaged over the dev sentences; accuracy intervals are a "
            "bootstrap over dev sentences x fine-tuning seeds; McNemar per seed.")
    return Result(results=rows, summary=summary, data=data, notes=notes)


def run_vision(ctx: RunContext, cfg: Config
               ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any], list[str]]:
    """The CIFAR-10 comparison: rows, summary, data and notes."""
    with torch_threads(cfg.threads):
        base, train, train_info = _trained(ctx, cfg)
        search_data = _per_class(train, cfg.search_per_class)
        searched = _search_all(ctx, cfg, base, search_data)
        test = load_cifar10("test", ctx.data_root, cfg.eval_images // 10)
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
        correct = {}
        for row in rows:
            key = _key(row)
            hit = (predict(models[key], test.images) == test.labels).numpy()
            correct[key] = hit
            row["acc"] = float(hit.mean())
            row["acc_ci95"] = proportion_interval(int(hit.sum()), len(hit))
            row["flops_reduction"] = 1 - row["mflops"] * 1e6 / full_flops
            log.info("%s: acc %.4f at %.3f MFLOPs", key, row["acc"], row["mflops"])
        speeds = measure_speed(models, cfg.speed_batch, repeats=cfg.speed_repeats)
        cpus = {name: speed.cpu_times for name, speed in speeds.items()}
        for row in rows:
            row["images_per_s"] = speeds[_key(row)].images_per_s
            row["cpu_images_per_s"] = speeds[_key(row)].cpu_images_per_s
        tests = []
        for s in searched:
            ours = correct[f"DiffRate {s.target}"]
            for other in ("uniform", "ToMe", "full", PITOME_RULE):
                versus = correct["full" if other == "full" else f"{other} {s.target}"]
                t = mcnemar(ours, versus)
                tests.append({"target": s.target, "versus": other,
                              "acc_diffrate": float(ours.mean()), "acc_other": float(versus.mean()),
                              "diffrate_only_right": t["a_only"], "other_only_right": t["b_only"],
                              "p_value": t["p"],
                              "acc_diff_ci95": paired_difference_interval(ours, versus)})
        _plot_rates(ctx, searched, base)
        _plot_accuracy(ctx, rows)
    summary = _summary(rows, tests, cfg)
    # DiffRate's throughput over full's = the ratio of CPU-time medians full / DiffRate.
    summary["throughput_ratio_mid_ci95"] = ratio_interval(cpus["full"], cpus[f"DiffRate {cfg.mid}"])
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
        base, train, _ = _trained(ctx, cfg)
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
