"""DiffRate on a timm ``VisionTransformer``: prune-then-merge by class attention, the
masked-attention search of the kept counts, and applying them.

Every block does attention (``+ log(size)`` on the logits) and its residual, then ranks the
patch tokens by the class token's attention (mean over heads), keeps the top ``prune[l] - 1``
(the rest are dropped), and merges the ones ranked ``merge[l] - 1 .. prune[l] - 2`` into the top
``merge[l] - 1``: each into its most cosine-similar kept patch token (features detached), by an
unweighted mean, the destination's size growing by the merged token's size times the similarity
(clamped at 0). Then the MLP.

* :func:`apply` patches a model in place so that it really slices and merges (the class swap
  of :mod:`paperlab.merging.plan`; weights untouched; keep-all equals the original). With
  ``merge_rule="pitome"`` the learned counts are applied with PiToMe's energy-score rule
  (:mod:`paperlab.merging.energy`) at the merge step instead of DiffRate's; the pruning step
  stays the class-attention ranking (see :func:`rule_tokens`).
* :func:`search` learns the counts on a frozen model: no token is dropped, the tokens are
  re-sorted in every block and masked tokens are excluded as attention keys (masks from
  :class:`~paperlab.diffrate.rates.RateProxy`), merging is a masked mean weighted by the
  proxy's mask, and the loss is cross-entropy + ``lam (FLOPs - target)^2``.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.core import checks
from paperlab.diffrate.rates import RateProxy, Rates, flops_loss
from paperlab.merging.energy import energy_plan, layer_margins, layer_protect
from paperlab.merging.plan import (
    MergePlan,
    check_unpatched,
    merge_wavg,
    mixin_class,
    normalized,
)
from paperlab.merging.vit import check_images, vit_depth
from paperlab.vision.data import ImageSet, normalize
from paperlab.vision.flops import model_flops

MERGE_RULES = ("diffrate", "pitome")

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# the block's pieces


def attention(attn: nn.Module, x: torch.Tensor, size: torch.Tensor | None,
              key_mask: torch.Tensor | None = None, need_cls: bool = True
              ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """A timm ``Attention`` forward with ``log(size)`` on the logits and masked keys.

    Args:
        attn: the block's timm ``Attention`` (its weights are used as they are).
        x: ``(B, N, C)`` normalised tokens.
        size: ``(B, N, 1)`` token sizes or None (all ones).
        key_mask: ``(B, N)`` key weights (0 = excluded; differentiable) or None.
        need_cls: compute the class token's attention (skipped where a block reduces nothing).

    Returns:
        the projected output ``(B, N, C)``, the class token's attention to the patch tokens
        ``(B, N - 1)``, averaged over heads (None unless ``need_cls``), and the keys averaged
        over heads ``(B, N, C / heads)`` (the energy rule's metric).
    """
    b, n, _ = x.shape
    qkv = attn.qkv(x).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    bias = None if size is None else size.log()[:, None, None, :, 0]
    if key_mask is None and attn.fused_attn:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        cls = None
        if need_cls:
            logits = (q[:, :, :1] * attn.scale) @ k.transpose(-2, -1)
            cls = (logits if bias is None else logits + bias).softmax(-1)[:, :, 0]
    else:
        logits = (q * attn.scale) @ k.transpose(-2, -1)
        weights = (logits if bias is None else logits + bias).softmax(-1)
        if key_mask is not None:
            weights = weights * key_mask[:, None, None, :]
            weights = weights / weights.sum(-1, keepdim=True)
        out = weights @ v
        cls = weights[:, :, 0]
    out = out.transpose(1, 2).reshape(b, n, attn.num_heads * attn.head_dim)
    out = getattr(attn, "norm", nn.Identity())(out)
    return attn.proj(out), None if cls is None else cls.mean(1)[:, 1:], k.mean(1)


def rank(cls_attn: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` token order: the class token, then patches by class attention, highest first."""
    order = cls_attn.argsort(dim=-1, descending=True, stable=True) + 1
    return torch.cat([torch.zeros_like(order[:, :1]), order], dim=1)


def _similar(x: torch.Tensor, dest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each token's most cosine-similar destination: ``(similarity, index)``, both ``(B, N)``;
    ``dest`` ``(B, N)`` bool marks the allowed destinations (features detached)."""
    m = normalized(x.detach())
    sim = (m @ m.transpose(1, 2)).masked_fill(~dest[:, None, :], -math.inf)
    return sim.max(dim=-1)


def prune_merge(x: torch.Tensor, size: torch.Tensor, cls_attn: torch.Tensor, prune: int,
                merge: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deploy-time reduction of one block: ``(B, N, C)`` tokens and ``(B, N, 1)`` sizes to
    ``merge`` tokens (see the module docstring); ``cls_attn`` ``(B, N - 1)``."""
    order = rank(cls_attn)
    keep, src = order[:, :merge], order[:, merge:prune]
    if src.shape[1] == 0 or merge == 1:  # nothing merges, or no patch token to merge into
        plan = MergePlan(keep, src[:, :0], src[:, :0])
        return plan.merge(x), plan.merge(size)
    m = normalized(x.detach())
    c = m.shape[-1]
    m_src = m.gather(1, src[..., None].expand(-1, -1, c))
    m_dst = m.gather(1, keep[:, 1:, None].expand(-1, -1, c))
    sim, dst = (m_src @ m_dst.transpose(1, 2)).max(dim=-1)
    plan = MergePlan(keep, src, dst + 1)
    weight = torch.ones_like(size).scatter_(1, src[..., None], sim[..., None].clamp(min=0))
    return plan.merge(x, "mean"), plan.merge(size * weight, "sum")


def energy_merges(prune: int, merge: int) -> int:
    """Tokens the energy rule merges away after pruning to ``prune`` tokens when DiffRate's
    count asks for ``merge``: ``prune - merge``, capped at half the ``prune - 1`` patch tokens
    (the most one A/B split can merge; what is left over is pruned or merged by later blocks,
    whose counts are absolute)."""
    return min(prune - merge, (prune - 1) // 2)


def prune_energy_merge(x: torch.Tensor, size: torch.Tensor, metric: torch.Tensor,
                       cls_attn: torch.Tensor, prune: int, merge: int, margin: float,
                       protect: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """DiffRate's pruning (the top ``prune - 1`` patch tokens by class attention stay), then
    PiToMe's energy-score merge of :func:`energy_merges` tokens (``metric`` ``(B, N, C')`` the
    keys averaged over heads, ``margin`` and ``protect`` the block's) with the size-weighted
    average and summed sizes of :func:`~paperlab.merging.plan.merge_wavg`."""
    keep = rank(cls_attn)[:, :prune, None]
    x, size = x.gather(1, keep.expand(-1, -1, x.shape[-1])), size.gather(1, keep)
    metric = metric.gather(1, keep.expand(-1, -1, metric.shape[-1]))
    plan = energy_plan(metric, energy_merges(prune, merge), margin, 1, protect)
    return (x, size) if plan is None else merge_wavg(plan, x, size)


# ---------------------------------------------------------------------------------------------
# patching


@dataclass
class _State:
    """Shared by a patched model and its blocks; ``size``/``mask``/``tokens`` reset per forward.

    ``rates`` (apply) or ``proxies`` (search: ``(prune, merge)`` per block from block 1);
    ``margins``/``protect`` per block for the energy rule (apply with ``merge_rule="pitome"``),
    None for DiffRate's own merge."""

    rates: Rates | None
    proxies: nn.ModuleList | None = None
    prop_attn: bool = True
    margins: tuple[float, ...] | None = None
    protect: tuple[bool, ...] | None = None
    size: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    tokens: list[tuple[Any, Any]] | None = None

    def reset(self) -> None:
        self.size, self.mask, self.tokens = None, None, []


class _DiffRateBlock(nn.Module):
    _diffrate: _State
    _diffrate_layer: int

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        if attn_mask is not None or is_causal:
            raise ValueError("DiffRate does not support attention masks or causal attention")
        state, layer = self._diffrate, self._diffrate_layer
        if state.size is None:
            state.size = torch.ones_like(x[..., :1])
        n_in = x.shape[1]
        reduce = layer > 0 if state.rates is None else state.rates.merge[layer] < n_in
        x_attn, cls_attn, metric = attention(
            self.attn, self.norm1(x), state.size if state.prop_attn else None, state.mask, reduce)
        x = x + self.drop_path1(self.ls1(x_attn))
        if state.proxies is None:
            assert state.rates is not None
            prune, merge = state.rates.prune[layer], state.rates.merge[layer]
            if reduce and state.margins is None:
                x, state.size = prune_merge(x, state.size, cls_attn, prune, merge)
            elif reduce:
                assert state.protect is not None
                x, state.size = prune_energy_merge(x, state.size, metric, cls_attn, prune, merge,
                                                   state.margins[layer], state.protect[layer])
            state.tokens.append((n_in, x.shape[1]))
        elif layer > 0:
            x = self._search_step(x, cls_attn, *state.proxies[layer - 1])
        else:
            state.mask = torch.ones_like(x[..., 0])
            state.tokens.append((x.new_tensor(float(x.shape[1])),) * 2)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))

    def _search_step(self, x: torch.Tensor, cls_attn: torch.Tensor, prune: RateProxy,
                     merge: RateProxy) -> torch.Tensor:
        """Sort the tokens by class attention, mask the pruned and merged ones (all tokens
        stay), merge by the proxy-weighted mean, and record the block's differentiable
        ``(tokens in, tokens out)``."""
        state = self._diffrate
        n = x.shape[1]
        order = rank(cls_attn)
        x = x.gather(1, order[..., None].expand_as(x))
        size = state.size.gather(1, order[..., None])
        mask = state.mask.gather(1, order)
        kept_p = mask * prune.mask(n)
        kept_m = kept_p * merge.mask(n)
        weight = kept_p - kept_m  # 1 (forward) for tokens that merge
        dest = kept_m.detach() > 0.5
        dest[:, 0] = False
        sim, dst = _similar(x, dest)
        has_dest = dest.any(-1, keepdim=True)
        weight = weight * has_dest
        index = dst.clamp(min=0)[..., None]
        num = x.scatter_add(1, index.expand_as(x), weight[..., None] * x)
        den = (1 + torch.zeros_like(weight).scatter_add(1, dst.clamp(min=0), weight))[..., None]
        x = torch.where(dest[..., None], num / den, x)
        grow = weight[..., None] * sim.clamp(min=0)[..., None] * size
        state.size = size + torch.zeros_like(size).scatter_add(1, index, grow)
        state.mask = kept_m
        n_in = state.tokens[-1][1]
        state.tokens.append((n_in, torch.minimum(n_in, torch.minimum(prune.kept(), merge.kept()))))
        return x


class _DiffRateViT:
    patch_name = "DiffRate (diffrate.apply)"
    _diffrate: _State

    def forward_features(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        check_images(self, x)
        self._diffrate.reset()
        return super().forward_features(x, *args, **kwargs)  # type: ignore[misc]


def _patch(model: nn.Module, state: _State) -> nn.Module:
    from timm.layers import Attention
    from timm.models.vision_transformer import Block

    vit_depth(model)
    check_unpatched(model, _DiffRateViT)
    if getattr(model, "cls_token", None) is None or int(model.num_prefix_tokens) != 1:
        raise ValueError("DiffRate needs exactly one prefix token, the class token")
    if getattr(model, "global_pool", "token") != "token":
        raise ValueError("DiffRate needs class-token pooling (global_pool='token')")
    for layer, block in enumerate(model.blocks):
        if not isinstance(block, (Block, _DiffRateBlock)) or not isinstance(block.attn,
                                                                             Attention):
            raise TypeError(f"block {layer} is not a timm vision_transformer.Block with "
                            "Attention")
    if not isinstance(model, _DiffRateViT):
        model.__class__ = mixin_class(_DiffRateViT, type(model))
    model._diffrate = state
    for layer, block in enumerate(model.blocks):
        if not isinstance(block, _DiffRateBlock):
            block.__class__ = mixin_class(_DiffRateBlock, type(block))
        block._diffrate, block._diffrate_layer = state, layer
    return model


def num_tokens(model: nn.Module) -> int:
    """Tokens entering block 0 (patches + class token)."""
    return int(model.patch_embed.num_patches) + int(getattr(model, "num_prefix_tokens", 1))


def _check_rule(merge_rule: str) -> None:
    if merge_rule not in MERGE_RULES:
        raise ValueError(f"merge_rule must be one of {MERGE_RULES}, got {merge_rule!r}")


def apply(model: nn.Module, rates: Rates, prop_attn: bool = True,
          merge_rule: str = "diffrate") -> nn.Module:
    """Patch a timm ``VisionTransformer`` in place to prune and merge by ``rates``; returns it.

    A model already applied with DiffRate gets the new ``rates`` and options. A model patched
    for token merging (``pitome.patch``, ``tome.patch``) is refused, not composed: DiffRate
    does its own merging in every block, so it would silently replace that patch. For
    DiffRate's counts with PiToMe's merge, apply to the unpatched model with
    ``merge_rule="pitome"``.

    Args:
        model: a timm ViT with one class token and class-token pooling.
        rates: the per-block counts (e.g. from :func:`search`).
        prop_attn: add ``log(size)`` to the attention logits.
        merge_rule: ``"diffrate"`` (default): DiffRate's merge (tokens ranked ``merge - 1 ..
            prune - 2`` by class attention merge into the top ``merge - 1``, unweighted mean,
            size grown by similarity); ``"pitome"``: PiToMe's energy-score rule on the pruned
            tokens (:func:`prune_energy_merge`) with PiToMe's margins ``0.75 - 0.75 l / L`` and
            its reference schedule (no protected tokens in the first ``ceil(L/2)`` blocks).
            Pruning is DiffRate's in both; :func:`rule_tokens` gives the counts either keeps.

    Raises:
        TypeError: not a timm ViT with timm ``Block``s, or ``rates`` not a :class:`Rates`.
        ValueError: ``rates`` for another depth or token count; no class token; unknown
            ``merge_rule``; a model patched for token merging (PiToMe, ToMe).
    """
    _check_rule(merge_rule)
    if not isinstance(rates, Rates):
        raise TypeError(f"rates must be a Rates, got {type(rates).__name__}")
    depth, n = vit_depth(model), num_tokens(model)
    if rates.depth != depth or rates.num_tokens != n:
        raise ValueError(f"rates are for {rates.depth} blocks of {rates.num_tokens} tokens; the "
                         f"model has {depth} blocks of {n} tokens")
    state = _State(rates, prop_attn=prop_attn)
    if merge_rule == "pitome":
        state.margins, state.protect = layer_margins(depth), layer_protect(depth, "reference")
    return _patch(model, state)


def rule_tokens(rates: Rates, merge_rule: str = "diffrate") -> list[tuple[int, int]]:
    """``(tokens in, tokens out)`` per block of a model applied with ``rates`` and
    ``merge_rule``: ``rates.tokens()`` for DiffRate's merge; for the energy rule each block
    prunes to ``prune[l]`` (when it reduces at all) and merges :func:`energy_merges` tokens,
    which leaves more than ``merge[l]`` where that would merge more than half the patch
    tokens."""
    _check_rule(merge_rule)
    if merge_rule == "diffrate":
        return rates.tokens()
    out, n = [], rates.num_tokens
    for prune, merge in zip(rates.prune, rates.merge, strict=True):
        kept = prune - energy_merges(prune, merge) if merge < n else n
        out.append((n, kept))
        n = kept
    return out


def rates_flops(model: nn.Module, rates: Rates, merge_rule: str = "diffrate") -> float:
    """Analytic multiply-adds per image of ``model`` reduced by ``rates`` with ``merge_rule``."""
    return model_flops(model, rule_tokens(rates, merge_rule))


def flops_range(model: nn.Module) -> tuple[float, float]:
    """``(least, full)`` multiply-adds reachable by a schedule (block 0 full, then 1 token)."""
    n, depth = num_tokens(model), vit_depth(model)
    least = Rates((n,) + (1,) * (depth - 1), (n,) + (1,) * (depth - 1), n)
    return rates_flops(model, least), model_flops(model)


def uniform_rates(model: nn.Module, flops: float) -> Rates:
    """Merging only, the same number of tokens removed in every block after block 0 (to the
    nearest token), with the removal chosen so that the FLOPs come closest to ``flops``
    (multiply-adds per image, a Python, NumPy or 0-d tensor number).

    Raises:
        TypeError: ``flops`` not a number.
        ValueError: ``flops`` NaN, infinite, or outside :func:`flops_range` (both named).
    """
    flops = checks.real(flops, "flops")
    least, full = flops_range(model)
    if not least <= flops <= full:
        raise ValueError(f"flops={flops:.6g} is outside the reachable range [{least:.6g}, "
                         f"{full:.6g}] multiply-adds of this model")
    n, depth = num_tokens(model), vit_depth(model)
    best: tuple[float, Rates] | None = None
    for step in range(0, 100 * (n - 1) + 1):
        r = step / 100
        counts = [n] + [max(1, n - round(r * layer)) for layer in range(1, depth)]
        rates = Rates(tuple(counts), tuple(counts), n)
        gap = abs(rates_flops(model, rates) - flops)
        if best is None or gap < best[0]:
            best = (gap, rates)
    assert best is not None
    return best[1]


# ---------------------------------------------------------------------------------------------
# search


@dataclass(frozen=True)
class SearchConfig:
    """The search's settings (the paper's where it gives them).

    Attributes:
        epochs: passes over the search images. batch_size: images per step.
        lr, lr_min: AdamW learning rate of the logits, cosine from ``lr`` to ``lr_min``.
        lam: weight of the FLOPs loss (FLOPs in units where the full model costs 4.6), > 0
            (0 would ignore the target, a negative weight would push away from it).
        granularity: step between candidate kept counts. prop_attn: ``+ log(size)``.
        seed: batch order.

    Numbers may be Python, NumPy or 0-d tensor scalars (stored as Python numbers).

    Raises:
        TypeError: a count that is not an integer, a rate that is not a number.
        ValueError: a value outside its range (the message gives it).
    """

    epochs: int = 3
    batch_size: int = 64
    lr: float = 0.01
    lr_min: float = 0.001
    lam: float = 5.0
    granularity: int = 4
    prop_attn: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        values = {name: checks.integer(getattr(self, name), name, low=1)
                  for name in ("epochs", "batch_size", "granularity")}
        values["seed"] = checks.integer(self.seed, "seed")
        values["lr"] = checks.real(self.lr, "lr", low=0, low_open=True)
        values["lr_min"] = checks.real(self.lr_min, "lr_min", low=0, high=values["lr"],
                                       low_open=True)
        values["lam"] = checks.real(self.lam, "lam", low=0, low_open=True)
        for name, value in values.items():
            object.__setattr__(self, name, value)


def searchable(model: nn.Module, granularity: int = 4, prop_attn: bool = True) -> nn.ModuleList:
    """Patch ``model`` in place for the search; returns the proxies ``[(prune, merge)]`` of
    blocks 1 .. L-1 (their logits are what the search trains)."""
    patches = num_tokens(model) - 1
    proxies = nn.ModuleList(
        nn.ModuleList([RateProxy(patches, granularity), RateProxy(patches, granularity)])
        for _ in range(vit_depth(model) - 1))
    _patch(model, _State(None, proxies, prop_attn))
    return proxies


def search_flops(model: nn.Module) -> torch.Tensor:
    """Differentiable FLOPs of the last forward of a :func:`searchable` model."""
    return model_flops(model, model._diffrate.tokens)


def learned_rates(model: nn.Module) -> Rates:
    """The integer schedule of a :func:`searchable` model's proxies (clamped to be valid)."""
    n = num_tokens(model)
    proxies = model._diffrate.proxies
    prune = [n] + [p.integer() for p, _ in proxies]
    merge = [n] + [m.integer() for _, m in proxies]
    return Rates.clamped(prune, merge, n)


def _batches(n: int, batch: int, gen: torch.Generator) -> Iterable[torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    return (perm[i:i + batch] for i in range(0, n, batch))


def _check_search_data(model: nn.Module, data: ImageSet) -> None:
    """Raise unless ``data`` is a non-empty :class:`ImageSet` of the model's image shape whose
    labels are class indices of the model's head."""
    if not isinstance(data, ImageSet):
        raise TypeError("data must be a paperlab.vision.data.ImageSet (uint8 images and their "
                        f"labels), got {checks.describe(data)}")
    if len(data) == 0:
        raise ValueError("no search images")
    weight = model.patch_embed.proj.weight
    check_images(model, data.images[:1].to(weight.device, weight.dtype))  # the shape
    classes = getattr(model, "num_classes", 0)
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"the search needs a model with a classifier head (num_classes >= 1), "
                         f"got num_classes={classes!r}")
    labels = data.labels
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"labels must be integer class indices, got {labels.dtype}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= classes:
        raise ValueError(f"labels must lie in [0, {classes}) (the model's classes), got labels "
                         f"from {low} to {high}")


def search(model: nn.Module, data: ImageSet, target_gflops: float,
           config: SearchConfig | None = None, trace: list[dict[str, float]] | None = None
           ) -> Rates:
    """Learn per-block kept counts for ``model`` at ``target_gflops`` (multiply-adds, 1e9).

    The model is not modified (a copy is searched with its weights frozen); only the rate
    logits are trained. ``trace``, when given, receives one dict per step (``ce``,
    ``flops_loss``, ``gflops``).

    Images are standardised (:func:`~paperlab.vision.data.normalize`) and moved to the model's
    device and dtype batch by batch.

    Raises:
        TypeError: ``data`` not an :class:`~paperlab.vision.data.ImageSet` (a tensor, ...),
            labels that are not integers, ``target_gflops`` not a number, ``config`` not a
            :class:`SearchConfig`.
        ValueError: the target NaN or not between the least reachable and the full FLOPs
            (both named); ``data`` empty, of another image shape than the model's, or with
            labels outside ``[0, num_classes)``; a model without a classifier head or patched
            for token merging (PiToMe, ToMe).
    """
    cfg = SearchConfig() if config is None else config
    if not isinstance(cfg, SearchConfig):
        raise TypeError(f"config must be a SearchConfig, got {checks.describe(cfg)}")
    least, full = flops_range(model)
    target = checks.real(target_gflops, "target_gflops") * 1e9
    if not least <= target < full:
        raise ValueError(f"target_gflops={target / 1e9:.6g} is outside the reachable range "
                         f"[{least / 1e9:.6g}, {full / 1e9:.6g}) GFLOPs of this model")
    _check_search_data(model, data)
    weight = model.patch_embed.proj.weight
    net = copy.deepcopy(model).eval()
    for param in net.parameters():
        param.requires_grad_(False)
    proxies = searchable(net, cfg.granularity, cfg.prop_attn)
    opt = torch.optim.AdamW(proxies.parameters(), lr=cfg.lr, weight_decay=0.0)
    steps = cfg.epochs * math.ceil(len(data) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=cfg.lr_min)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        for idx in _batches(len(data), cfg.batch_size, gen):
            logits = net(normalize(data.images[idx]).to(weight.device, weight.dtype))
            ce = F.cross_entropy(logits, data.labels[idx].to(weight.device, torch.long))
            flops = search_flops(net)
            reg = flops_loss(flops, target, full, cfg.lam)
            opt.zero_grad()
            (ce + reg).backward()
            opt.step()
            sched.step()
            if trace is not None:
                trace.append({"ce": ce.item(), "flops_loss": reg.item(),
                              "gflops": flops.item() / 1e9})
    rates = learned_rates(net)
    log.info("DiffRate search at %.4g GFLOPs: %.4g GFLOPs, kept %s", target / 1e9,
             rates_flops(model, rates) / 1e9, rates.merge)
    return rates
