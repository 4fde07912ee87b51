"""Reproduction and benchmark of PiToMe, with ToMe as the baseline, on CIFAR-10.

``run``: a timm ViT (patch 4: 64 patches + class token) is trained here on the CIFAR-10 JPEG
training subset (no pretrained weights can be downloaded; the checkpoint is cached), then
evaluated without fine-tuning on the test images: the full model; ToMe at several constant r,
with and without proportional attention; PiToMe at keep ratios 0.975 / 0.95 / 0.925 / 0.9; and
ToMe matched to PiToMe's FLOPs at each ratio (ToMe given PiToMe's per-block merge counts, as the
reference code's ToMe baseline does, so the token counts and analytic FLOPs are identical).
Accuracy (with its Clopper-Pearson interval), analytic FLOPs and measured images/s per setting,
exact McNemar tests of PiToMe against matched ToMe with the exact paired interval of the
accuracy difference, the throughput ratio's interval from the timing repeats, a plot of accuracy
against FLOPs, and the merged token groups of a few test images.

``bench``: images/s and latency at batch 1 and 64 of PiToMe and ToMe against the full model,
with fused attention (SDPA) and with explicit attention, and the break-even keep ratio at
which a patched model with explicit attention becomes as fast as the full fused model.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable, Mapping
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
from paperlab.merging import tome
from paperlab.merging.plan import merge_state
from paperlab.merging.vit import group_map, token_schedule
from paperlab.pitome.merge import patch as pitome_patch
from paperlab.pitome.text import TextConfig, accuracy_flops_panel, bench_text, run_text
from paperlab.vision.comparison import ViTComparison, score
from paperlab.vision.data import ImageSet
from paperlab.vision.flops import model_flops
from paperlab.vision.speed import measure_speed
from paperlab.vision.train import predict

log = logging.getLogger(__name__)

KEEP_RATIOS = (0.975, 0.95, 0.925, 0.9)


@dataclass(frozen=True)
class Config(ViTComparison):
    """One reproduction (and benchmark) size: the fields of
    :class:`~paperlab.vision.comparison.ViTComparison` (the ViT, its training and teacher, the
    test images, the images/s column, the benchmark's batch sizes and repeats, whether the
    CIFAR-10 comparison runs) and PiToMe's own.

    Attributes:
        tome_r: constant ToMe r values. keep_ratios: PiToMe keep ratios (the largest-reduction
        one is the summary's). pure_ratios: ratios also run with the pure PiToMe rule in every
        block. pitome_prop_attn: also run PiToMe with proportional attention (the reference
        runs it without). viz_images: test images in the merged-groups picture. bench_ratios:
        the benchmark's keep ratios. bench_timm, bench_timm_ratios: a timm 224x224 ViT (197
        tokens, random weights) also timed at batch 1, or None. text: the text comparison on
        the pretrained MiniLM (:mod:`paperlab.pitome.text`), or None to skip it.
        bench_text_lengths, bench_text_batches, bench_text_ratios: the benchmark's long text
        inputs (tokens), batch sizes and keep ratios (empty lengths: no text benchmark).
    """

    tome_r: tuple[int, ...] = (2, 4, 6, 8)
    keep_ratios: tuple[float, ...] = KEEP_RATIOS
    pure_ratios: tuple[float, ...] = (0.9,)
    pitome_prop_attn: bool = True
    viz_images: int = 4
    bench_ratios: tuple[float, ...] = (1.0, 0.975, 0.95, 0.925, 0.9, 0.85, 0.8, 0.7, 0.6)
    bench_timm: str | None = "vit_tiny_patch16_224"
    bench_timm_ratios: tuple[float, ...] = (1.0, 0.95, 0.9, 0.8)
    text: TextConfig | None = field(default_factory=TextConfig)
    bench_text_lengths: tuple[int, ...] = (256, 512)
    bench_text_batches: tuple[int, ...] = (1, 32)
    bench_text_ratios: tuple[float, ...] = (0.65,)

    @classmethod
    def quick(cls) -> Config:
        return dataclasses.replace(
            super().quick(), tome_r=(2, 4), pitome_prop_attn=False, viz_images=3,
            bench_ratios=(1.0, 0.9, 0.8, 0.7), bench_timm=None, text=TextConfig.quick(),
            bench_text_lengths=(256,), bench_text_batches=(1, 4))

    def with_options(self, options: Mapping[str, Any]) -> Config:
        """Apply ``--retrain``, ``--epochs``, ``--eval-images``, ``--keep-ratios``, ``--tome-r``
        (``--keep-ratios`` also sets the pure-rule ratio to the smallest one) and ``--parts``
        (which comparisons and benchmarks run: ``vision``, ``text`` or both) and
        ``--text-seeds``."""
        cfg = super().with_options(options)
        if "keep_ratios" in options:
            ratios = tuple(options["keep_ratios"])
            cfg = dataclasses.replace(cfg, keep_ratios=ratios, pure_ratios=(min(ratios),))
        if "tome_r" in options:
            cfg = dataclasses.replace(cfg, tome_r=tuple(options["tome_r"]))
        if "parts" in options and "text" not in options["parts"]:
            cfg = dataclasses.replace(cfg, bench_text_lengths=())
        return with_parts(cfg, options, TextConfig)


# ---------------------------------------------------------------------------------------------
# data and model


def trained_vit(ctx: RunContext, cfg: Config) -> tuple[nn.Module, dict[str, Any]]:
    """The cached (or freshly trained) ViT and a description of its training (and its
    teacher's)."""
    model, _, info = cfg.trained(ctx)
    return model, info


# ---------------------------------------------------------------------------------------------
# the settings compared


@dataclass(frozen=True)
class Setting:
    """One evaluated model: a method name, its parameter, and how to patch a copy of the ViT."""

    method: str
    param: str
    apply: Callable[[nn.Module], nn.Module]
    ratio: float | None = None


def pitome_merge_counts(model: nn.Module, keep_ratio: float) -> list[int]:
    """PiToMe's per-block merge counts on ``model`` (what matched ToMe is given)."""
    probe = pitome_patch(copy.deepcopy(model), keep_ratio)
    return [n_in - n_out for n_in, n_out in token_schedule(probe)]


def settings(model: nn.Module, cfg: Config) -> list[Setting]:
    out = [Setting("full", "-", lambda m: m)]
    for prop in (True, False):
        for r in cfg.tome_r:
            out.append(Setting(f"ToMe r (prop_attn={'on' if prop else 'off'})", f"r={r}",
                               lambda m, r=r, p=prop: tome.patch(m, r, prop_attn=p)))
    for ratio in cfg.keep_ratios:
        counts = pitome_merge_counts(model, ratio)
        out.append(Setting("PiToMe", f"keep={ratio}",
                           lambda m, k=ratio: pitome_patch(m, k), ratio))
        if cfg.pitome_prop_attn:
            out.append(Setting("PiToMe (prop_attn=on)", f"keep={ratio}",
                               lambda m, k=ratio: pitome_patch(m, k, prop_attn=True), ratio))
        for prop in (True, False):
            out.append(Setting(f"ToMe matched (prop_attn={'on' if prop else 'off'})",
                               f"keep={ratio}",
                               lambda m, c=counts, p=prop: tome.patch(m, c, prop_attn=p), ratio))
    for ratio in cfg.pure_ratios:
        out.append(Setting("PiToMe pure rule", f"keep={ratio}",
                           lambda m, k=ratio: pitome_patch(m, k, schedule="pure"), ratio))
    return out


# ---------------------------------------------------------------------------------------------
# run


def run_vision(ctx: RunContext, cfg: Config
               ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any], list[str]]:
    """The CIFAR-10 comparison: result rows, summary keys, data description, notes."""
    with torch_threads(cfg.threads):
        base, train_info = trained_vit(ctx, cfg)
        test = cfg.test_images(ctx)
        full_flops = model_flops(base)
        models = {f"{s.method} {s.param}": (s, s.apply(copy.deepcopy(base)).eval())
                  for s in settings(base, cfg)}
        scores = score({key: model for key, (_, model) in models.items()}, test,
                       cfg.speed_batch, cfg.speed_repeats)
        rows = []
        for key, (s, model) in models.items():
            flops = model_flops(model, token_schedule(model))
            rows.append({
                "method": s.method, "setting": s.param,
                "tokens_out": token_schedule(model)[-1][1],
                "mflops": flops / 1e6, "flops_reduction": 1 - flops / full_flops,
                **scores.accuracy(key), **scores.speed(key),
            })
            log.info("%s: acc %.4f, %.2f MFLOPs", key, rows[-1]["acc"], flops / 1e6)
        tests = []
        for ratio in cfg.keep_ratios:
            pit = f"PiToMe keep={ratio}"
            for prop in ("on", "off"):
                other = f"ToMe matched (prop_attn={prop}) keep={ratio}"
                test_row = scores.paired(pit, other)
                tests.append({"keep_ratio": ratio, "versus": f"ToMe matched (prop_attn={prop})",
                              "tome_prop_attn": prop,
                              "acc_pitome": float(scores.hits[pit].mean()),
                              "acc_tome": float(scores.hits[other].mean()),
                              "pitome_only_right": test_row["a_only"],
                              "tome_only_right": test_row["b_only"], "p_value": test_row["p"],
                              "acc_diff_ci95": test_row["acc_diff_ci95"]})
        _plot_accuracy(ctx, rows)
        _plot_groups(ctx, base, test, cfg)
    ratio = min(cfg.keep_ratios)
    summary = _summary(rows, cfg)
    summary.update({f"mcnemar_p_vs_tome_prop_{t['tome_prop_attn']}_at_{t['keep_ratio']}":
                    t["p_value"] for t in tests if t["keep_ratio"] == ratio})
    # The claims' intervals: the accuracy gap over the same test images (exact, paired), and the
    # ratio of CPU-time medians (full / PiToMe = PiToMe's throughput / full's) from the repeats.
    summary["acc_pitome_minus_tome_at_matched_flops_ci95"] = next(
        t["acc_diff_ci95"] for t in tests
        if t["keep_ratio"] == ratio and t["tome_prop_attn"] == "on")
    summary[f"throughput_ratio_at_{ratio}_ci95"] = scores.throughput_interval(
        f"PiToMe keep={ratio}", "full -")
    notes = [
        f"ViT {cfg.vit.dim}x{cfg.vit.depth} ({cfg.vit.heads} heads, patch {cfg.vit.patch_size}) "
        f"trained here for {cfg.train.epochs} epochs on {train_info['train_images']} CIFAR-10 "
        f"training JPEGs (quality 75 re-encodings; accuracies are not CIFAR-10 literature "
        f"figures); no fine-tuning after patching.",
        "ToMe matched = ToMe given PiToMe's per-block merge counts (identical token counts and "
        "analytic FLOPs), as the reference's ToMe baseline uses the same keep ratio.",
        "PiToMe uses the reference schedule (energy-ordered bipartite match in the first half of "
        "the blocks, the protecting rule after) and no proportional attention, as the reference.",
        f"images/s: batch {cfg.speed_batch}, {cfg.threads} thread(s), median of "
        f"{cfg.speed_repeats} interleaved repeats on a shared CPU, by wall clock and by the "
        "thread's CPU time (the throughput ratio uses CPU time: waiting for a core not counted); "
        "its 95% interval is a bootstrap of the medians over those repeats.",
        "Intervals (95%): acc_ci95 per setting is Clopper-Pearson over the test images (the "
        "plot's bars); PiToMe vs ToMe is judged on the exact paired interval of the difference "
        "over the same images (acc_diff_ci95 in the McNemar rows), which is narrower than the "
        "two bars suggest because most images are right or wrong under both.",
    ]
    data = {"test": test.source, "eval_images": len(test), "model": dataclasses.asdict(cfg.vit),
            "train": {**dataclasses.asdict(cfg.train), **train_info}, "mcnemar": tests}
    return rows, summary, data, notes


def run(ctx: RunContext, config: Config | None = None) -> Result:
    """The CIFAR-10 comparison (``cfg.vision``) and the text one (``cfg.text``)."""
    cfg = resolve_config(ctx, Config, config)
    seed_everything(ctx.seed)
    return join_parts(run_vision(ctx, cfg) if cfg.vision else None,
                      run_text(ctx, cfg.text) if cfg.text is not None else None)


def _row(rows: list[dict[str, Any]], method: str, setting: str) -> dict[str, Any]:
    return next(r for r in rows if r["method"] == method and r["setting"] == setting)


def _summary(rows: list[dict[str, Any]], cfg: Config) -> dict[str, Any]:
    ratio = min(cfg.keep_ratios)
    full = _row(rows, "full", "-")
    pit = _row(rows, "PiToMe", f"keep={ratio}")
    matched = _row(rows, "ToMe matched (prop_attn=on)", f"keep={ratio}")
    return {
        "acc_full": full["acc"],
        f"acc_pitome_at_{ratio}": pit["acc"],
        "acc_tome_at_matched_flops": matched["acc"],
        f"flops_reduction_at_{ratio}": pit["flops_reduction"],
        f"throughput_ratio_at_{ratio}": pit["cpu_images_per_s"] / full["cpu_images_per_s"],
    }


def _plot_accuracy(ctx: RunContext, rows: list[dict[str, Any]]) -> None:
    fig, ax = plots.figure(title="Accuracy vs analytic FLOPs (no fine-tuning)", size=4.0)
    styles = {"PiToMe": ("o", "-"), "PiToMe (prop_attn=on)": ("o", "--"),
              "ToMe matched (prop_attn=on)": ("s", "--"),
              "ToMe matched (prop_attn=off)": ("s", ":"), "ToMe r (prop_attn=on)": ("^", "-"),
              "ToMe r (prop_attn=off)": ("v", ":"), "PiToMe pure rule": ("D", "none")}
    accuracy_flops_panel(ax, rows, styles)
    ax.set_xlabel("MFLOPs per image (multiply-adds, analytic)")
    ax.set_ylabel("test accuracy (bars: 95% Clopper-Pearson)")
    plots.legend_outside(ax)
    plots.save(fig, ctx.plot_path("accuracy_flops"))


def _plot_groups(ctx: RunContext, base: nn.Module, test: ImageSet, cfg: Config) -> None:
    """Each test image, then its patches coloured by the mean colour of their final token group
    under matched ToMe and PiToMe at the smallest keep ratio."""
    ratio = min(cfg.keep_ratios)
    counts = pitome_merge_counts(base, ratio)
    picks = torch.arange(cfg.viz_images) * (len(test) // max(1, cfg.viz_images))
    images = test.images[picks]
    grid = cfg.vit.img_size // cfg.vit.patch_size
    variants = {
        "ToMe (matched)": tome.patch(copy.deepcopy(base), counts, trace_source=True),
        f"PiToMe keep={ratio}": pitome_patch(copy.deepcopy(base), ratio, trace_source=True),
    }
    fig, axes = plots.figure(len(picks), 1 + len(variants), size=1.6)
    axes = np.atleast_2d(axes)
    for col, (name, model) in enumerate(variants.items(), start=1):
        predict(model, images)
        groups = group_map(merge_state(model).source, int(base.num_prefix_tokens), grid)
        for row in range(len(picks)):
            axes[row, col].imshow(_group_picture(images[row], groups[row], cfg.vit.patch_size))
            axes[row, col].set_xlabel(f"{int(groups[row].unique().numel())} groups", fontsize=7)
        axes[0, col].set_title(name, fontsize=7)
    for row in range(len(picks)):
        axes[row, 0].imshow(images[row].permute(1, 2, 0).numpy())
        axes[row, 0].set_ylabel(test.classes[int(test.labels[picks[row]])], fontsize=7)
    axes[0, 0].set_title("image", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    plots.save(fig, ctx.plot_path("merged_groups"))


def _group_picture(image: torch.Tensor, groups: torch.Tensor, patch: int) -> np.ndarray:
    """``uint8`` image ``(3, H, W)`` with every patch painted the mean colour of its group,
    group borders in white."""
    img = image.permute(1, 2, 0).numpy().astype(np.float32)
    pix = groups.repeat_interleave(patch, 0).repeat_interleave(patch, 1).numpy()
    out = np.empty_like(img)
    for g in np.unique(pix):
        mask = pix == g
        out[mask] = img[mask].mean(axis=0)
    edge = np.zeros(pix.shape, bool)
    edge[:, 1:] |= pix[:, 1:] != pix[:, :-1]
    edge[1:, :] |= pix[1:, :] != pix[:-1, :]
    out[edge] = 255
    return out.astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# bench


def _contenders(base: nn.Module, ratios: tuple[float, ...]) -> dict[str, tuple[str, float, bool,
                                                                            nn.Module]]:
    """The full model and PiToMe / matched ToMe at each ratio, with fused and explicit
    attention: ``name -> (method, keep ratio, fused, model)``."""
    out: dict[str, tuple[str, float, bool, nn.Module]] = {}
    for fused in (True, False):
        attn = "fused" if fused else "explicit"
        plain = copy.deepcopy(base)
        for block in plain.blocks:
            block.attn.fused_attn = fused
        out[f"full {attn}"] = ("full", 1.0, fused, plain)
        for ratio in ratios:
            if ratio == 1.0:
                continue
            counts = pitome_merge_counts(base, ratio)
            out[f"PiToMe {ratio} {attn}"] = (
                "PiToMe", ratio, fused, pitome_patch(copy.deepcopy(base), ratio, fused=fused))
            out[f"ToMe {ratio} {attn}"] = (
                "ToMe (matched, prop_attn)", ratio, fused,
                tome.patch(copy.deepcopy(base), counts, fused=fused))
    return out


def _bench_rows(name: str, base: nn.Module, ratios: tuple[float, ...],
                batches: tuple[int, ...], repeats: int, inner: int = 1) -> list[dict[str, Any]]:
    """Speed rows of ``base``'s contenders; a batch-1 sample is ``inner`` calls."""
    contenders = _contenders(base, ratios)
    models = {k: v[3] for k, v in contenders.items()}
    shape = (int(base.patch_embed.proj.in_channels), *(int(s) for s in base.patch_embed.img_size))
    rows = []
    for batch in batches:
        speeds = measure_speed(models, batch, shape, repeats=repeats,
                               inner=inner if batch == 1 else 1)
        ref = speeds["full fused"]
        for key, (method, ratio, fused, model) in contenders.items():
            s = speeds[key]
            rows.append({
                "model": name, "method": method, "keep_ratio": ratio,
                "attention": "fused" if fused else "explicit", "batch": batch,
                "mflops": model_flops(model, token_schedule(model)) / 1e6,
                "latency_ms": s.latency_ms, "images_per_s": s.images_per_s,
                "cpu_images_per_s": s.cpu_images_per_s,
                "speedup_vs_full_fused": s.cpu_images_per_s / ref.cpu_images_per_s,
                "wall_speedup_vs_full_fused": s.images_per_s / ref.images_per_s,
            })
    return rows


def bench(ctx: RunContext, config: Config | None = None) -> Result:
    """Speed only, so the weights are random (speed does not depend on them)."""
    cfg = resolve_config(ctx, Config, config)
    seed_everything(ctx.seed)
    ours = f"ViT {cfg.vit.dim}x{cfg.vit.depth} 32px"
    with torch_threads(cfg.threads):
        rows = (_bench_rows(ours, cfg.vit.build().eval(), cfg.bench_ratios, cfg.bench_batches,
                            cfg.bench_repeats, inner=8) if cfg.vision else [])
        if cfg.vision and cfg.bench_timm:
            import timm

            big = timm.create_model(cfg.bench_timm, pretrained=False).eval()
            rows += _bench_rows(cfg.bench_timm, big, cfg.bench_timm_ratios, (1,),
                                cfg.bench_repeats)
        text_rows = (bench_text(cfg.bench_text_lengths, cfg.bench_text_batches,
                                cfg.bench_text_ratios, cfg.bench_repeats, ctx.seed)
                     if cfg.bench_text_lengths else [])
    summary: dict[str, Any] = {}
    for r in text_rows:
        if r["method"] == "PiToMe (first 3 layers)":
            summary[f"text_speedup_pitome_{r['keep_ratio']}_L{r['tokens']}_b{r['batch']}"] = (
                r["speedup_vs_full"])
    for model in dict.fromkeys(r["model"] for r in rows):
        tag = "" if model == ours else f"{model}_"
        for batch in dict.fromkeys(r["batch"] for r in rows if r["model"] == model):
            sel = [r for r in rows if r["model"] == model and r["batch"] == batch
                   and r["method"] == "PiToMe"]
            for attn in ("explicit", "fused"):
                summary[f"{tag}break_even_keep_ratio_{attn}_b{batch}"] = _break_even(
                    [r for r in sel if r["attention"] == attn])
            at = [r for r in sel if r["attention"] == "explicit" and r["keep_ratio"] == 0.9]
            if at:
                summary[f"{tag}speedup_pitome_0.9_explicit_b{batch}"] = (
                    at[0]["speedup_vs_full_fused"])
    notes = [
        f"Random weights, {cfg.threads} thread(s), median of {cfg.bench_repeats} interleaved "
        "repeats; speed-ups are against the unpatched model with timm's fused attention "
        "(scaled_dot_product_attention), from the thread's CPU time (the machine is shared, so "
        "wall-clock time also counts waiting for a core; the wall-clock ratio is in "
        "wall_speedup_vs_full_fused).",
        "explicit = the patched attention computes softmax(QK^T + log size) by hand, as the "
        "reference code does; fused = our patch passes log(size) to SDPA as a float mask.",
        "break_even_keep_ratio: the largest keep ratio at which PiToMe is at least as fast as "
        "the full fused model (None: never within the ratios measured).",
        "Text rows (model MiniLM-L6): inputs of random token ids of the given length, no "
        "padding; speed-ups against the unpatched model with SDPA attention, by CPU time.",
    ]
    return Result(results=rows + text_rows, summary=summary,
                  data={"model": dataclasses.asdict(cfg.vit), "ratios": list(cfg.bench_ratios),
                        "timm_model": cfg.bench_timm}, notes=notes)


def _break_even(rows: list[dict[str, Any]]) -> float | None:
    """Largest keep ratio whose speed-up over the full fused model is >= 1, or None."""
    fast = [r["keep_ratio"] for r in rows if r["speedup_vs_full_fused"] >= 1.0
            and r["keep_ratio"] < 1.0]
    return max(fast) if fast else None
