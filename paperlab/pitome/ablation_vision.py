"""Why PiToMe does not beat matched ToMe on the distilled CIFAR-10 ViT: which tokens each merges.

The vision counterpart of :mod:`paperlab.pitome.ablation`. The ViT of ``paperlab run pitome``
(the same cached checkpoint, :func:`paperlab.pitome.experiment.trained_vit`) is merged off the
shelf, on the first test images, by PiToMe at one keep ratio (default 0.9: the reference
schedule without proportional attention, as in the experiment) and by ToMe given PiToMe's
per-block merge counts (proportional attention on: the experiment's summary baseline; the
attention of either can be switched, to tell the tokens chosen from the attention). Measured:

* each one's accuracy (Clopper-Pearson) and agreement with the unmerged model's predictions,
  PiToMe - ToMe with the exact McNemar test and paired interval, and the images where exactly
  one of the two is right;
* per block, PiToMe's energy score (the block's ELU margin, over the patch tokens reaching the
  block) of the tokens each method merges (merged away or merged into), leaves unmatched, and,
  PiToMe in the blocks that protect, protects: quantiles and the mean rank within the image,
  on all images and on the disagreeing ones. ToMe's tokens are scored by the same energy on
  ToMe's own keys;
* per block, the Jaccard overlap of the image patches the two methods merge, on agreeing and on
  disagreeing images, and of the patches that end in groups of two or more;
* the final token groups (largest group, patches in groups of two or more, group sizes);
* where the merged patches lie: distance from the image centre, share on the border ring, and
  the share of the class token's attention (last block of the unmerged model) they get, each
  beside its value for all patches;
* a small ablation of PiToMe's choices (protection schedule, margin, kernel, A/B split,
  proportional attention, random scores), each against reference PiToMe and matched ToMe.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from paperlab.core import checks, plots
from paperlab.core.progress import track
from paperlab.core.results import RunContext
from paperlab.core.seed import seed_everything, torch_threads
from paperlab.core.stats import mcnemar, paired_difference_interval, proportion_interval
from paperlab.merging import tome
from paperlab.merging.energy import PiToMeRule, energy_score, layer_margins
from paperlab.merging.plan import MergePlan, merge_state, normalized
from paperlab.merging.vit import apply_rule, token_schedule, vit_depth
from paperlab.pitome.ablation import RandomScoreRule, TracingRule, Variant
from paperlab.pitome.experiment import Config, pitome_merge_counts, trained_vit
from paperlab.pitome.merge import patch as pitome_patch
from paperlab.vision.data import ImageSet, load_cifar10, normalize
from paperlab.vision.flops import model_flops
from paperlab.vision.train import predict

log = logging.getLogger(__name__)

FULL = "full model"
PITOME = "PiToMe"
TOME = "ToMe matched"
METHODS = (PITOME, TOME)
# What a patch token does in one block: merged (merged away, or another merged into it),
# protected (kept out of the match for its low energy: PiToMe's blocks that protect) or
# unmatched (a candidate that did not merge).
KINDS = ("merged", "protected", "unmatched")
MERGED, PROTECTED, UNMATCHED = range(3)
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
SUBSETS = ("agree", "disagree", "PiToMe right only", "ToMe right only")
TEST_IMAGES = 10_000
DEFAULT_MARGIN = 0.75  # PiToMe's m_0 on a ViT (paperlab.pitome.merge.patch)
# Which of the compared pair uses proportional attention: ToMe only (the experiment's summary
# pair), both, or neither.
PROP_ATTN = ("tome", "both", "none")


@dataclass(frozen=True)
class VisionAblationConfig:
    """The vision ablation's size.

    Attributes:
        vision: the ViT, its training and teacher, the test images evaluated (``eval_images``,
            1-10,000: the first of each class in turn) and the threads, as the experiment's
            :class:`~paperlab.pitome.experiment.Config` (its other fields are unused).
        keep_ratio: PiToMe's keep ratio, in ``[0.5, 1]`` (1: nothing merges).
        prop_attn: which of PiToMe and matched ToMe use proportional attention, one of
            :data:`PROP_ATTN` (``"tome"``: as ``paperlab run pitome`` compares them).
        margins: ``m_0`` values of PiToMe's ELU energy tried besides the default 0.75
            (each in ``[-1, 1]``, once).
        batch_size: images per forward pass.
        variants: also evaluate the ablation variants (one pass over the images each).
    """

    vision: Config = field(default_factory=Config)
    keep_ratio: float = 0.9
    prop_attn: str = "tome"
    margins: tuple[float, ...] = (0.0, 0.5, 0.9)
    batch_size: int = 250
    variants: bool = True

    def __post_init__(self) -> None:
        keep = checks.real(self.keep_ratio, "keep_ratio", low=0.5, high=1)
        checks.integer(self.vision.eval_images, "eval_images", low=1, high=TEST_IMAGES)
        checks.integer(self.batch_size, "batch_size", low=1)
        if self.prop_attn not in PROP_ATTN:
            raise ValueError(f"prop_attn must be one of {PROP_ATTN}, got {self.prop_attn!r}")
        margins = tuple(checks.real(m, f"margins[{i}]", low=-1, high=1)
                        for i, m in enumerate(self.margins))
        if len(set(margins)) != len(margins) or DEFAULT_MARGIN in margins:
            raise ValueError(f"margins are tried besides the default {DEFAULT_MARGIN}, each "
                             f"once; got {self.margins}")
        object.__setattr__(self, "keep_ratio", keep)
        object.__setattr__(self, "margins", margins)

    @classmethod
    def quick(cls) -> VisionAblationConfig:
        """The quick-size ViT (its cached checkpoint), 500 test images, one other margin."""
        return cls(vision=dataclasses.replace(Config.quick(), eval_images=500), margins=(0.0,))


# ---------------------------------------------------------------------------------------------
# inputs


def first_test_images(root: Any, n: int) -> tuple[ImageSet, np.ndarray]:
    """The first ``n`` CIFAR-10 test images taken one class after another (the first image of
    every class, then the second, ...), in file order, and each one's rank among its class's
    files; with ``n`` a multiple of 10 the images of ``paperlab run pitome --eval-images n``."""
    n = checks.integer(n, "eval_images", low=1, high=TEST_IMAGES)
    test = load_cifar10("test", root, math.ceil(n / 10))
    labels = test.labels.numpy()
    nth = np.arange(len(labels)) - np.searchsorted(labels, labels)
    chosen = np.sort(np.lexsort((labels, nth))[:n])
    return test.subset(torch.from_numpy(chosen)), nth[chosen]


def traced(model: nn.Module) -> TracingRule:
    """Wrap the rule of a ViT patched for merging in a :class:`TracingRule`, in place (its
    predictions do not change)."""
    state = merge_state(model)
    tracer = TracingRule(state.rule)
    state.rule = tracer
    return tracer


def class_attention(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions of an unmerged timm ViT on normalised ``images`` and its class token's
    attention to each patch in the last block (mean over heads, as a share of the attention
    to all patches): ``(B,)``, ``(B, P)``."""
    prefix = int(model.num_prefix_tokens)
    seen: list[torch.Tensor] = []

    def hook(attn: nn.Module, args: tuple[torch.Tensor, ...], output: Any) -> None:
        x = args[0]
        b, n, _ = x.shape
        qkv = attn.qkv(x).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
        q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])
        weights = ((q[:, :, :1] * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        patches = weights.mean(dim=1)[:, 0, prefix:]
        seen.append(patches / patches.sum(dim=-1, keepdim=True))

    handle = model.blocks[-1].attn.register_forward_hook(hook)
    try:
        pred = model(images).argmax(-1)
    finally:
        handle.remove()
    return pred, seen[0]


def token_kinds(metric: torch.Tensor, plan: MergePlan | None, margin: float, protects: bool,
                prefix: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PiToMe's ELU energy at ``margin`` of the patch tokens of one block's ``metric``
    ``(B, N, C)`` and what each did under ``plan`` (an index of :data:`KINDS`): ``(B, T)``
    each. ``protects``: the rule kept the ``T - 2r`` lowest-energy tokens out of the match
    (PiToMe's blocks with protection, ``r`` the tokens merged away), as
    :func:`~paperlab.merging.energy.energy_plan` orders them."""
    energy = energy_score(normalized(metric[:, prefix:]), margin)
    b, n, _ = metric.shape
    kind = torch.full((b, n), UNMATCHED, dtype=torch.int64)
    if plan is not None:
        if protects:
            low = energy.argsort(dim=-1, descending=True)[:, 2 * plan.src.shape[1]:] + prefix
            kind.scatter_(1, low, PROTECTED)
        kind.scatter_(1, plan.src, MERGED)
        kind.scatter_(1, plan.keep.gather(1, plan.dst), MERGED)
    return energy, kind[:, prefix:]


# ---------------------------------------------------------------------------------------------
# the traced pass


@dataclass
class _Traces:
    """One method's per-image records over all batches (lists of per-batch arrays)."""

    energy: list[list[np.ndarray]]  # per layer: (B, T_l)
    rank: list[list[np.ndarray]]  # per layer: (B, T_l) rank within the image, 1 = highest
    kind: list[list[np.ndarray]]  # per layer: (B, T_l) index of KINDS
    patches: list[list[np.ndarray]]  # per layer: (B, P) patches in a merge of the layer
    final: list[np.ndarray] = field(default_factory=list)  # (B, P) final group size of a patch
    groups: list[np.ndarray] = field(default_factory=list)  # (B, K) final group sizes

    @classmethod
    def empty(cls, depth: int) -> _Traces:
        return cls(*([[] for _ in range(depth)] for _ in range(4)))

    def add(self, tracer: TracingRule, rule: PiToMeRule, protects: Sequence[bool],
            prefix: int) -> None:
        """Read one batch's trace; energies by ``rule``'s margins."""
        for layer, (metric, plan, source) in enumerate(zip(tracer.metrics, tracer.plans,
                                                           tracer.sources, strict=True)):
            energy, kind = token_kinds(metric, plan, rule.margins[layer], protects[layer],
                                       prefix)
            rank = energy.argsort(dim=-1).argsort(dim=-1).float() / max(1, energy.shape[1] - 1)
            merged = (source[:, prefix:, prefix:].bool() & (kind == MERGED)[..., None]).any(1)
            for store, value in ((self.energy, energy), (self.rank, rank), (self.kind, kind),
                                 (self.patches, merged)):
                store[layer].append(value.numpy())
        assert tracer.source is not None
        self.final.append(tracer.group_sizes[-1][:, prefix:].numpy())
        self.groups.append(tracer.source[:, prefix:, prefix:].sum(dim=-1).numpy())

    def stacked(self) -> dict[str, Any]:
        return {"energy": [np.concatenate(e) for e in self.energy],
                "rank": [np.concatenate(r) for r in self.rank],
                "kind": [np.concatenate(k) for k in self.kind],
                "patches": [np.concatenate(p) for p in self.patches],
                "final": np.concatenate(self.final), "groups": np.concatenate(self.groups)}


def _traced_pass(base: nn.Module, models: dict[str, nn.Module], rule: PiToMeRule,
                 test: ImageSet, batch_size: int) -> tuple[dict[str, np.ndarray],
                                                           dict[str, dict[str, Any]], np.ndarray]:
    """Predictions of the full model and of the two merged ones, their traces, and the class
    token's attention shares ``(N, P)`` in the full model."""
    prefix = int(base.num_prefix_tokens)
    depth = vit_depth(base)
    protects = {PITOME: rule.protect, TOME: (False,) * depth}
    tracers = {m: traced(model) for m, model in models.items()}
    traces = {m: _Traces.empty(depth) for m in models}
    preds: dict[str, list[np.ndarray]] = {FULL: [], **{m: [] for m in models}}
    attention = []
    starts = range(0, len(test), batch_size)
    with torch.inference_mode():
        for start in track(starts, "tracing PiToMe and matched ToMe", total=len(starts)):
            x = normalize(test.images[start:start + batch_size])
            pred, attn = class_attention(base, x)
            preds[FULL].append(pred.numpy())
            attention.append(attn.numpy())
            for method, model in models.items():
                preds[method].append(model(x).argmax(-1).numpy())
                traces[method].add(tracers[method], rule, protects[method], prefix)
    return ({m: np.concatenate(p) for m, p in preds.items()},
            {m: t.stacked() for m, t in traces.items()}, np.concatenate(attention))


# ---------------------------------------------------------------------------------------------
# the tables


def _quantiles(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {f"q{round(100 * q):02d}": None for q in QUANTILES}
    qs = np.quantile(values, QUANTILES)
    return {f"q{round(100 * q):02d}": float(v) for q, v in zip(QUANTILES, qs, strict=True)}


def _mean(values: np.ndarray) -> float | None:
    """Mean of the finite values (None when there are none)."""
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def subset_masks(hit_p: np.ndarray, hit_t: np.ndarray) -> dict[str, np.ndarray]:
    """Images by the two methods' correctness: :data:`SUBSETS`, plus ``"all"``."""
    return {"all": np.ones_like(hit_p), "agree": hit_p == hit_t, "disagree": hit_p != hit_t,
            "PiToMe right only": hit_p & ~hit_t, "ToMe right only": ~hit_p & hit_t}


def energy_table(traces: dict[str, dict[str, Any]], masks: dict[str, np.ndarray],
                 protects: Sequence[bool]) -> list[dict[str, Any]]:
    """Per block, method, kind of token and subset (all images, disagreeing ones): tokens per
    image, energy quantiles, mean rank of the energy within the image (0 lowest, 1 highest)."""
    rows = []
    for layer, protected in enumerate(protects):
        for method, trace in traces.items():
            energy, rank, kind = (trace[k][layer] for k in ("energy", "rank", "kind"))
            kinds = KINDS if method == PITOME else (KINDS[MERGED], KINDS[UNMATCHED])
            for name in kinds:
                for subset in ("all", "disagree"):
                    images = masks[subset]
                    chosen = kind[images] == KINDS.index(name)
                    e, r = energy[images][chosen], rank[images][chosen]
                    rows.append({"layer": layer, "protects": bool(protected), "method": method,
                                 "tokens": name, "subset": subset, "images": int(images.sum()),
                                 "scored_per_image": int(energy.shape[1]),
                                 "per_image": float(chosen.sum() / max(1, images.sum())),
                                 **_quantiles(e), "rank_mean": _mean(r)})
    return rows


def _jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per image ``|A & B| / |A | B|`` of two ``(N, P)`` patch masks (NaN when both empty)."""
    union = (a | b).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, (a & b).sum(axis=1) / np.maximum(union, 1), np.nan)


def jaccard_table(traces: dict[str, dict[str, Any]], masks: dict[str, np.ndarray],
                  counts: Sequence[int], protects: Sequence[bool]) -> list[dict[str, Any]]:
    """Per block, and for the patches in final groups of two or more (``layer`` "final"), the
    mean Jaccard overlap of the patches the two methods merge, per subset of images."""
    p, t = traces[PITOME], traces[TOME]
    pairs = [(layer, p["patches"][layer], t["patches"][layer]) for layer in range(len(counts))]
    pairs.append(("final", p["final"] > 1, t["final"] > 1))
    rows = []
    for layer, a, b in pairs:
        overlap = _jaccard(a, b)
        row: dict[str, Any] = {"layer": layer}
        if layer != "final":
            row.update({"merged_per_block": counts[layer], "protects": bool(protects[layer])})
        row.update({f"jaccard_{s}": _mean(overlap[masks[s]]) for s in ("all", *SUBSETS)})
        rows.append(row)
    return rows


def group_table(traces: dict[str, dict[str, Any]], masks: dict[str, np.ndarray]
                ) -> list[dict[str, Any]]:
    """Per method and subset: the final groups per image (largest group in patches, its
    quantiles, patches in groups of two or more, number of such groups)."""
    rows = []
    for method, trace in traces.items():
        largest = trace["groups"].max(axis=1)
        in_groups = (trace["final"] > 1).sum(axis=1)
        groups = (trace["groups"] >= 2).sum(axis=1)
        for subset in ("all", *SUBSETS):
            images = masks[subset]
            row = {"method": method, "subset": subset, "images": int(images.sum()),
                   "largest_group_mean": _mean(largest[images].astype(float))}
            row.update({f"largest_{k}": v for k, v in _quantiles(largest[images]).items()})
            row.update({"patches_in_groups_mean": _mean(in_groups[images].astype(float)),
                        "groups_of_2plus_mean": _mean(groups[images].astype(float))})
            rows.append(row)
    return rows


def group_histogram(traces: dict[str, dict[str, Any]]) -> dict[str, list[int]]:
    """Per method, how many final groups (over all images) hold 1, 2, 3, ... patches."""
    out = {}
    for method, trace in traces.items():
        sizes = trace["groups"].astype(np.int64).ravel()
        out[method] = np.bincount(sizes[sizes > 0]).tolist()[1:]
    return out


def patch_geometry(grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Per patch (row-major), its centre's distance from the image centre in patch sides, and
    whether it lies on the border ring."""
    i, j = np.divmod(np.arange(grid * grid), grid)
    distance = np.hypot(i + 0.5 - grid / 2, j + 0.5 - grid / 2)
    border = (i == 0) | (j == 0) | (i == grid - 1) | (j == grid - 1)
    return distance, border


def location_table(traces: dict[str, dict[str, Any]], masks: dict[str, np.ndarray],
                   attention: np.ndarray, grid: int) -> list[dict[str, Any]]:
    """Where the patches in final groups of two or more lie, per set (each method's, those
    only one of them merges, all patches) and subset: patches per image, their mean distance
    from the centre (patch sides), the share on the border ring, and the share of the class
    token's attention (unmerged model, last block) they get; ``attention_per_patch``: that
    share over their share of the patches (1: as much as an average patch)."""
    distance, border = patch_geometry(grid)
    p, t = traces[PITOME]["final"] > 1, traces[TOME]["final"] > 1
    sets = {"PiToMe merged": p, "ToMe merged": t, "PiToMe only": p & ~t, "ToMe only": t & ~p,
            "all patches": np.ones_like(p)}
    rows = []
    for name, chosen in sets.items():
        count = chosen.sum(axis=1).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            dist = (chosen * distance).sum(axis=1) / count
            edge = (chosen * border).sum(axis=1) / count
        mass = (chosen * attention).sum(axis=1)
        share = count / chosen.shape[1]
        for subset in ("all", *SUBSETS):
            images = masks[subset]
            mean_share, mean_mass = _mean(share[images]), _mean(mass[images])
            rows.append({"patches": name, "subset": subset, "images": int(images.sum()),
                         "per_image": _mean(count[images]), "centre_distance": _mean(
                             dist[images]), "border_share": _mean(edge[images]),
                         "cls_attention": mean_mass,
                         "attention_per_patch": (mean_mass / mean_share if mean_share
                                                 and mean_mass is not None else None)})
    return rows


# ---------------------------------------------------------------------------------------------
# the variants


def variants(base: nn.Module, rule: PiToMeRule, counts: Sequence[int], cfg: VisionAblationConfig,
             seed: int = 0) -> list[Variant]:
    """The evaluated models: the full one, reference PiToMe (``rule``), matched ToMe
    (``counts``), and (``cfg.variants``) PiToMe's choices changed one at a time (each with
    reference PiToMe's proportional attention), and each method with its proportional
    attention switched."""
    keep, depth = cfg.keep_ratio, vit_depth(base)
    pp, tp = cfg.prop_attn == "both", cfg.prop_attn != "none"
    out = [Variant("reference", FULL, lambda m: m),
           Variant("reference", PITOME, lambda m: pitome_patch(m, keep, prop_attn=pp), TOME),
           Variant("reference", TOME, lambda m: tome.patch(m, list(counts), prop_attn=tp))]
    if not cfg.variants:
        return out

    def rule_patch(changed: Any) -> Any:
        return lambda m: apply_rule(m, changed, prop_attn=pp)

    def switched(on: bool) -> str:
        return "without" if on else "with"

    every, none = (True,) * depth, (False,) * depth
    out += [
        Variant("schedule", "PiToMe protecting in every block (paper's rule)",
                lambda m: pitome_patch(m, keep, schedule="pure", prop_attn=pp), TOME),
        Variant("schedule", "PiToMe protecting in no block (energy-ordered ToMe match)",
                rule_patch(dataclasses.replace(rule, protect=none)), TOME),
        *(Variant("margin", f"PiToMe m_0 = {m}", lambda mod, m=m: pitome_patch(
            mod, keep, margin=m, prop_attn=pp), TOME) for m in cfg.margins),
        Variant("kernel", "PiToMe Gaussian energy (text code's, margins 0.9 - 0.25 l/L)",
                rule_patch(dataclasses.replace(rule, kernel="gaussian", margins=layer_margins(
                    depth, 0.9, drop=0.25))), TOME),
        Variant("split", "PiToMe A/B by halves (protecting in every block)",
                rule_patch(dataclasses.replace(rule, protect=every, split="halves")), TOME),
        Variant("prop. attention", f"PiToMe {switched(pp)} proportional attention",
                lambda m: pitome_patch(m, keep, prop_attn=not pp), TOME),
        Variant("prop. attention", f"ToMe matched {switched(tp)} proportional attention",
                lambda m: tome.patch(m, list(counts), prop_attn=not tp), TOME),
        Variant("control", "random scores (protecting in every block)",
                rule_patch(RandomScoreRule(dataclasses.replace(rule, protect=every), seed)),
                TOME),
    ]
    return out


def _paired(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    return {"diff": float(a.mean() - b.mean()), "ci95": paired_difference_interval(a, b),
            "p": mcnemar(a, b)["p"]}


# ---------------------------------------------------------------------------------------------
# run


def analyse(base: nn.Module, test: ImageSet, cfg: VisionAblationConfig, seed: int = 0,
            nth: np.ndarray | None = None) -> tuple[list[dict[str, Any]], dict[str, Any],
                                                    dict[str, Any]]:
    """The measurements on ``base`` (an unmerged distilled or plain timm ViT, eval mode) over
    ``test``: result rows (one per variant), summary keys and the tables (see the module
    docstring). ``nth``: each image's rank among its class's files, kept with the disagreeing
    images."""
    base = base.eval()
    keep = cfg.keep_ratio
    prefix = int(base.num_prefix_tokens)
    grid = int(base.patch_embed.grid_size[0])
    counts = pitome_merge_counts(base, keep)
    rule = merge_state(pitome_patch(copy.deepcopy(base), keep)).rule
    todo = variants(base, rule, counts, cfg, seed)
    models = {v.name: v.apply(copy.deepcopy(base)).eval() for v in todo}
    preds, traces, attention = _traced_pass(
        base, {m: models[m] for m in METHODS}, rule, test, cfg.batch_size)
    labels = test.labels.numpy()
    for v in track(todo[3:], "ablation variants", total=len(todo) - 3):
        preds[v.name] = predict(models[v.name], test.images, cfg.batch_size).numpy()
    hits = {m: p == labels for m, p in preds.items()}
    full_flops = model_flops(base)
    rows = []
    for v in todo:
        hit, flops = hits[v.name], model_flops(models[v.name], token_schedule(models[v.name]))
        vs_p, vs_t = _paired(hit, hits[PITOME]), _paired(hit, hits[TOME])
        rows.append({"factor": v.factor, "method": v.name, "mflops": flops / 1e6,
                     "flops_saved": 1 - flops / full_flops, "acc": float(hit.mean()),
                     "acc_ci95": proportion_interval(int(hit.sum()), len(hit)),
                     "same_as_full": float((preds[v.name] == preds[FULL]).mean()),
                     "minus_pitome": vs_p["diff"], "minus_pitome_ci95": vs_p["ci95"],
                     "minus_tome": vs_t["diff"], "minus_tome_ci95": vs_t["ci95"],
                     "p_vs_tome": vs_t["p"]})
    masks = subset_masks(hits[PITOME], hits[TOME])
    test_row = mcnemar(hits[PITOME], hits[TOME])
    jaccard = jaccard_table(traces, masks, counts, rule.protect)
    gap = _paired(hits[PITOME], hits[TOME])
    summary = {"keep_ratio": keep, "eval_images": len(test),
               "acc_full": float(hits[FULL].mean()), "acc_pitome": float(hits[PITOME].mean()),
               "acc_tome_matched": float(hits[TOME].mean()),
               "pitome_minus_tome": gap["diff"], "pitome_minus_tome_ci95": gap["ci95"],
               "mcnemar_p": test_row["p"], "pitome_only_right": test_row["a_only"],
               "tome_only_right": test_row["b_only"],
               "predictions_differ": int((preds[PITOME] != preds[TOME]).sum()),
               "pitome_same_as_full": rows[1]["same_as_full"],
               "tome_same_as_full": rows[2]["same_as_full"],
               "flops_saved": rows[1]["flops_saved"],
               "final_jaccard_agree": jaccard[-1]["jaccard_agree"],
               "final_jaccard_disagree": jaccard[-1]["jaccard_disagree"]}
    ranks = np.zeros(len(test), dtype=np.int64) if nth is None else nth
    disagreeing = [{"index": int(i), "class": test.classes[labels[i]], "nth_in_class":
                    int(ranks[i]), "right": PITOME if hits[PITOME][i] else TOME,
                    "full": test.classes[preds[FULL][i]], "pitome": test.classes[preds[PITOME][i]],
                    "tome": test.classes[preds[TOME][i]]}
                   for i in np.flatnonzero(masks["disagree"])]
    data = {"test": test.source, "eval_images": len(test), "keep_ratio": keep,
            "prop_attn": {PITOME: cfg.prop_attn == "both", TOME: cfg.prop_attn != "none"},
            "prefix_tokens": prefix, "merged_per_block": counts,
            "protecting_blocks": [i for i, p in enumerate(rule.protect) if p],
            "margins": list(rule.margins), "energy": energy_table(traces, masks, rule.protect),
            "jaccard": jaccard, "groups": group_table(traces, masks),
            "group_size_histogram": group_histogram(traces),
            "location": location_table(traces, masks, attention, grid),
            "disagreeing_images": disagreeing}
    log.info("PiToMe %.4f, matched ToMe %.4f (%d / %d discordant)", summary["acc_pitome"],
             summary["acc_tome_matched"], test_row["a_only"], test_row["b_only"])
    return rows, summary, data


def run_vision_ablation(ctx: RunContext, cfg: VisionAblationConfig
                        ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Load (or train) the experiment's ViT and the test images, :func:`analyse`, and write
    the plot ``<out>/<system>_vision_energy.png``; returns rows, summary and data."""
    seed_everything(ctx.seed)
    with torch_threads(cfg.vision.threads):
        base, train_info = trained_vit(ctx, cfg.vision)
        test, nth = first_test_images(ctx.data_root, cfg.vision.eval_images)
        rows, summary, data = analyse(base, test, cfg, ctx.seed, nth)
    data = {"model": dataclasses.asdict(cfg.vision.vit),
            "train": {**dataclasses.asdict(cfg.vision.train), **train_info}, **data}
    plot_energy(ctx, data)
    return rows, summary, data


def plot_energy(ctx: RunContext, data: dict[str, Any]) -> None:
    """Per block, PiToMe's energy of the tokens PiToMe protects, PiToMe merges and ToMe merges
    (boxes: 25-75 %, whiskers 10-90 %), on all images and on the disagreeing ones."""
    shown = ((PITOME, "protected", "C2"), (PITOME, "merged", "C0"), (TOME, "merged", "C1"),
             (TOME, "unmatched", "C7"))
    fig, axes = plots.figure(1, 2, size=3.6, title=f"PiToMe's energy per block, keep "
                                                   f"{data['keep_ratio']}")
    width = 0.8 / len(shown)
    for ax, subset in zip(axes, ("all", "disagree"), strict=True):
        handles, names = [], []
        for k, (method, kind, colour) in enumerate(shown):
            rows = [r for r in data["energy"] if r["method"] == method and r["tokens"] == kind
                    and r["subset"] == subset and r["q50"] is not None]
            if not rows:
                continue
            stats = [{"med": r["q50"], "q1": r["q25"], "q3": r["q75"], "whislo": r["q10"],
                      "whishi": r["q90"]} for r in rows]
            positions = [r["layer"] + (k - (len(shown) - 1) / 2) * width for r in rows]
            drawn = ax.bxp(stats, positions=positions, widths=width * 0.9, showfliers=False,
                           patch_artist=True, boxprops={"facecolor": colour, "alpha": 0.7},
                           medianprops={"color": "black"},
                           manage_ticks=False)
            handles.append(drawn["boxes"][0])
            names.append(f"{method} {kind}")
        layers = sorted({r["layer"] for r in data["energy"]})
        ax.set_xticks(layers)
        ax.set_xlabel("block (protecting: " + ", ".join(map(str, data["protecting_blocks"]))
                      + ")")
        ax.set_ylabel("energy (ELU, the block's margin)")
        images = next(r["images"] for r in data["energy"] if r["subset"] == subset)
        ax.set_title(f"{'all' if subset == 'all' else 'disagreeing'} images ({images})",
                     fontsize=8)
        if handles:
            ax.legend(handles, names, fontsize=6)
    plots.save(fig, ctx.plot_path("vision_energy"))


def energy_overview(energy: Sequence[dict[str, Any]], subset: str = "all"
                    ) -> list[dict[str, Any]]:
    """:func:`energy_table`'s rows for one subset of images folded to one row per block: each
    method's tokens by kind, their median energy (``q50``) and mean rank within the image."""
    out: dict[int, dict[str, Any]] = {}
    for r in energy:
        if r["subset"] != subset:
            continue
        row = out.setdefault(r["layer"], {"layer": r["layer"], "protects": r["protects"]})
        name = f"{'ToMe' if r['method'] == TOME else r['method']} {r['tokens']}"
        row[f"{name} q50"] = r["q50"]
        row[f"{name} rank"] = r["rank_mean"]
    return list(out.values())
