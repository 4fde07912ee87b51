"""DiffRate on a timm ``VisionTransformer`` or a Hugging Face BERT encoder: applying a schedule
of kept counts, its FLOPs, and the masked-attention search that learns it.

Every block does attention (``+ log(size)`` on the logits) and its residual, then ranks the
non-prefix tokens by the class token's attention (mean over heads), keeps the top
``prune[l] - prefix`` (the rest are dropped), and merges the ones ranked ``merge[l] - prefix ..
prune[l] - prefix - 1`` into the top ``merge[l] - prefix``: each into its most cosine-similar
kept token (features detached), by an unweighted mean, the destination's size growing by the
merged token's size times the similarity (clamped at 0). Then the MLP. The prefix tokens (the
class token; a DeiT distillation token; BERT's ``[CLS]``) are never pruned or merged
(:mod:`paperlab.merging.prune`).

* :func:`apply` patches a model in place so that it really slices and merges (a class swap,
  weights untouched; keep-all equals the original). With ``merge_rule="pitome"`` the learned
  counts are applied with PiToMe's energy-score rule (:mod:`paperlab.merging.energy`) at the
  merge step instead of DiffRate's; the pruning step stays the class-attention ranking (see
  :func:`rule_tokens`).
* :func:`search` learns the counts on a frozen model: no token is dropped, the tokens are
  re-sorted in every block and masked tokens are excluded as attention keys (masks from
  :class:`~paperlab.diffrate.rates.RateProxy`), merging is a masked mean weighted by the
  proxy's mask, and the loss is cross-entropy + ``lam (FLOPs - target)^2``.

Text (BERT). A schedule is defined at one length ``num_tokens`` and each sentence of a padded
batch gets it at its own length, as fractions of its real tokens
(:meth:`~paperlab.diffrate.rates.Rates.for_length`): a sentence's output does not depend on
the batch it is in, and padding is never ranked, pruned or merged (the padding-exact machinery
of :mod:`paperlab.merging.bert`). FLOPs of a text model are averaged over sentence lengths
(``lengths``, analytic :func:`~paperlab.merging.bert.bert_flops`).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.core import checks
from paperlab.diffrate import bert as text_patch
from paperlab.diffrate import vit as vit_patch
from paperlab.diffrate.rates import RateProxy, Rates, flops_loss
from paperlab.diffrate.steps import State, check_rule
from paperlab.merging.bert import bert_depth, is_bert, mean_bert_flops
from paperlab.merging.energy import layer_margins, layer_protect
from paperlab.merging.prune import energy_merges
from paperlab.merging.vit import check_images, vit_depth
from paperlab.vision.data import ImageSet, normalize
from paperlab.vision.flops import model_flops

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# model families


def _is_text(model: nn.Module) -> bool:
    """True for a BERT model, False for a timm ViT; ``TypeError`` naming both otherwise."""
    if is_bert(model):
        return True
    try:
        vit_depth(model)
    except TypeError:
        raise TypeError("expected a timm VisionTransformer or a Hugging Face BERT model "
                        f"(BertModel, BertFor...), got {type(model).__name__}") from None
    return False


def _depth(model: nn.Module) -> int:
    return bert_depth(model) if _is_text(model) else vit_depth(model)


def _lengths(lengths: Iterable[int] | None, text: bool) -> list[int] | None:
    """Checked sentence lengths (text) or None (ViT: they must not be given)."""
    if not text:
        if lengths is not None:
            raise ValueError("lengths are for text models (a ViT's token count is fixed)")
        return None
    if lengths is None:
        return None
    if isinstance(lengths, (str, bytes)):
        raise TypeError(f"lengths must be a sequence of token counts, got {lengths!r}")
    out = [checks.integer(n, f"lengths[{i}]", low=text_patch.PREFIX + 1)
           for i, n in enumerate(lengths)]
    if not out:
        raise ValueError("lengths is empty: give the token counts of at least one sentence")
    return out


def _need_lengths(lengths: list[int] | None, what: str) -> list[int]:
    if lengths is None:
        raise ValueError(f"{what} of a text model needs lengths (the token counts, [CLS] and "
                         "[SEP] included, of the sentences the FLOPs are averaged over)")
    return lengths


def _text_flops(model: nn.Module, schedule: Callable[[int], list[tuple[int, int]]],
                lengths: Sequence[int]) -> float:
    """Mean analytic multiply-adds per sentence over ``lengths`` of a BERT model whose layers
    run ``schedule(length)``."""
    return mean_bert_flops(model.config, schedule, lengths, text_patch.num_labels(model))


# ---------------------------------------------------------------------------------------------
# apply


def apply(model: nn.Module, rates: Rates, prop_attn: bool = True,
          merge_rule: str = "diffrate") -> nn.Module:
    """Patch a timm ``VisionTransformer`` or a BERT model in place to prune and merge by
    ``rates``; returns it.

    A model already applied with DiffRate gets the new ``rates`` and options. A model patched
    for token merging (``pitome.patch``, ``tome.patch``) is refused, not composed: DiffRate
    does its own merging in every block, so it would silently replace that patch. For
    DiffRate's counts with PiToMe's merge, apply to the unpatched model with
    ``merge_rule="pitome"``.

    On BERT (``BertModel``, ``BertForSequenceClassification``, ...) ``[CLS]`` is the one prefix
    token and each sentence runs ``rates.for_length(its real token count)``: the counts are
    fractions of its real tokens (``rates.num_tokens`` is the length they are defined at, any
    length > 1), so a padded batch gives each sentence its output alone, and padding is never
    ranked, pruned or merged. ``merge_state``-like results are in ``model._diffrate``:
    ``size`` ``(B, K, 1)`` (0 at padding), ``mask`` ``(B, K)``, ``tokens`` (the longest
    sentence's).

    Args:
        model: a timm ViT with a class token and class-token pooling (a DeiT
            ``VisionTransformerDistilled`` too: both prefix tokens stay), or a BERT model.
        rates: the per-block counts (e.g. from :func:`search`), with the model's prefix
            tokens (``rates.prefix``: 1, 2 for a distilled ViT).
        prop_attn: add ``log(size)`` to the attention logits.
        merge_rule: ``"diffrate"`` (default): DiffRate's merge (tokens ranked ``merge - prefix
            .. prune - prefix - 1`` by class attention merge into the top ``merge - prefix``,
            unweighted mean, size grown by similarity); ``"pitome"``: PiToMe's energy-score
            rule on the pruned tokens (:func:`~paperlab.merging.prune.prune_energy_merge`)
            with PiToMe's margins ``0.75 - 0.75 l / L`` and its reference schedule (no
            protected tokens in the first ``ceil(L/2)`` blocks). Pruning is DiffRate's in
            both; :func:`rule_tokens` gives the counts either keeps.

    Raises:
        TypeError: neither a timm ViT with timm ``Block``s nor a BERT model, or ``rates`` not
            a :class:`Rates`.
        ValueError: ``rates`` for another depth, token count (ViT) or number of prefix tokens;
            no class token; unknown ``merge_rule``; a model patched for token merging (PiToMe,
            ToMe).
    """
    check_rule(merge_rule)
    if not isinstance(rates, Rates):
        raise TypeError(f"rates must be a Rates, got {type(rates).__name__}")
    text = _is_text(model)
    depth = _depth(model)
    if text:
        n, prefix = rates.num_tokens, text_patch.PREFIX
    else:
        n, prefix = vit_patch.num_tokens(model), vit_patch.prefix_tokens(model)
    if rates.depth != depth or rates.num_tokens != n:
        raise ValueError(f"rates are for {rates.depth} blocks of {rates.num_tokens} tokens; the "
                         f"model has {depth} blocks of {n} tokens")
    if rates.prefix != prefix:
        raise ValueError(f"rates keep {rates.prefix} prefix token(s); the model has {prefix} "
                         "(class token, distillation token)")
    state = State(rates, prop_attn=prop_attn, prefix=prefix, num_tokens=n)
    if merge_rule == "pitome":
        state.margins, state.protect = layer_margins(depth), layer_protect(depth, "reference")
    if text:
        state.num_labels = text_patch.num_labels(model)
        return text_patch.patch(model, state)
    return vit_patch.patch(model, state)


def rule_tokens(rates: Rates, merge_rule: str = "diffrate") -> list[tuple[int, int]]:
    """``(tokens in, tokens out)`` per block of a model applied with ``rates`` and
    ``merge_rule`` (at ``rates.num_tokens``; a sentence of another length: pass
    ``rates.for_length(length)``): ``rates.tokens()`` for DiffRate's merge; for the energy
    rule each block prunes to ``prune[l]`` (when it reduces at all) and merges
    :func:`~paperlab.merging.prune.energy_merges` tokens, which leaves more than ``merge[l]``
    where that would merge more than half the non-prefix tokens."""
    check_rule(merge_rule)
    if merge_rule == "diffrate":
        return rates.tokens()
    out, n = [], rates.num_tokens
    for prune, merge in zip(rates.prune, rates.merge, strict=True):
        kept = prune - energy_merges(prune, merge, rates.prefix) if merge < n else n
        out.append((n, kept))
        n = kept
    return out


def rates_flops(model: nn.Module, rates: Rates, merge_rule: str = "diffrate",
                lengths: Iterable[int] | None = None) -> float:
    """Analytic multiply-adds per image of a ViT reduced by ``rates`` with ``merge_rule``; for a
    BERT model, per sentence averaged over ``lengths`` (token counts, ``[CLS]`` and ``[SEP]``
    included; default: one sentence of ``rates.num_tokens``), each sentence at its own length.

    Raises:
        ValueError: ``lengths`` given for a ViT, empty, or with a length below 2.
    """
    text = _is_text(model)
    lengths = _lengths(lengths, text)
    if not text:
        return model_flops(model, rule_tokens(rates, merge_rule))
    check_rule(merge_rule)
    return _text_flops(model, lambda n: rule_tokens(rates.for_length(n), merge_rule),
                       lengths or [rates.num_tokens])


def _least(n: int, depth: int, prefix: int) -> Rates:
    """Block 0 full, then only the prefix tokens."""
    counts = (n,) + (prefix,) * (depth - 1)
    return Rates(counts, counts, n, prefix)


def flops_range(model: nn.Module, lengths: Iterable[int] | None = None
                ) -> tuple[float, float]:
    """``(least, full)`` multiply-adds reachable by a schedule (block 0 full, then only the
    prefix tokens); for a BERT model averaged over ``lengths`` (required: token counts of the
    sentences)."""
    text = _is_text(model)
    lengths = _lengths(lengths, text)
    depth = _depth(model)
    if text:
        lengths = _need_lengths(lengths, "flops_range")
        least = _least(max(lengths), depth, text_patch.PREFIX)
        return (rates_flops(model, least, lengths=lengths),
                _text_flops(model, lambda n: [(n, n)] * depth, lengths))
    least = _least(vit_patch.num_tokens(model), depth, vit_patch.prefix_tokens(model))
    return rates_flops(model, least), model_flops(model)


def uniform_rates(model: nn.Module, flops: float, lengths: Iterable[int] | None = None
                  ) -> Rates:
    """Merging only, the same number of tokens removed in every block after block 0 (to the
    nearest token), with the removal chosen so that the FLOPs come closest to ``flops``
    (multiply-adds per image, a Python, NumPy or 0-d tensor number). For a BERT model the
    schedule is defined at the longest of ``lengths`` (required) and ``flops`` is the mean per
    sentence over them (each sentence at its own length, :meth:`Rates.for_length`).

    Raises:
        TypeError: ``flops`` not a number.
        ValueError: ``flops`` NaN, infinite, or outside :func:`flops_range` (both named);
            ``lengths`` missing for a BERT model or given for a ViT.
    """
    flops = checks.real(flops, "flops")
    text = _is_text(model)
    lengths = _lengths(lengths, text)
    if text:
        lengths = _need_lengths(lengths, "uniform_rates")
    least, full = flops_range(model, lengths)
    if not least <= flops <= full:
        raise ValueError(f"flops={flops:.6g} is outside the reachable range [{least:.6g}, "
                         f"{full:.6g}] multiply-adds of this model")
    if text:
        n, prefix = max(lengths), text_patch.PREFIX
    else:
        n, prefix = vit_patch.num_tokens(model), vit_patch.prefix_tokens(model)
    depth = _depth(model)
    best: tuple[float, Rates] | None = None
    last: list[int] = []
    for step in range(0, 100 * (n - prefix) + 1):
        r = step / 100
        counts = [n] + [max(prefix, n - round(r * layer)) for layer in range(1, depth)]
        if counts == last:  # the same schedule as the previous step: the same FLOPs
            continue
        last = counts
        rates = Rates(tuple(counts), tuple(counts), n, prefix)
        gap = abs(rates_flops(model, rates, lengths=lengths) - flops)
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
        epochs: passes over the search images or sentences. batch_size: examples per step.
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


def searchable(model: nn.Module, granularity: int = 4, prop_attn: bool = True,
               num_tokens: int | None = None) -> nn.ModuleList:
    """Patch ``model`` in place for the search; returns the proxies ``[(prune, merge)]`` of
    blocks 1 .. L-1 (their logits are what the search trains). ``num_tokens``: for a BERT
    model, the length the learned schedule is defined at (required); a ViT's is its own."""
    text = _is_text(model)
    if text:
        if num_tokens is None:
            raise ValueError("searchable on a text model needs num_tokens (the length the "
                             "schedule is defined at)")
        n = checks.integer(num_tokens, "num_tokens", low=text_patch.PREFIX + 1)
        prefix = text_patch.PREFIX
    else:
        n, prefix = vit_patch.num_tokens(model), vit_patch.prefix_tokens(model)
    proxies = nn.ModuleList(
        nn.ModuleList([RateProxy(n - prefix, granularity, prefix),
                       RateProxy(n - prefix, granularity, prefix)])
        for _ in range(_depth(model) - 1))
    state = State(None, proxies, prop_attn, prefix, n)
    if text:
        state.num_labels = text_patch.num_labels(model)
        text_patch.patch(model, state)
    else:
        vit_patch.patch(model, state)
    return proxies


def _batch_flops(model: nn.Module) -> tuple[torch.Tensor, float]:
    """Differentiable FLOPs per example of the last forward of a :func:`searchable` model, and
    the unreduced model's on the same examples (a ViT's never changes; a text batch's depends
    on its sentence lengths)."""
    state: State = model._diffrate
    if not state.flops:  # a ViT
        return model_flops(model, state.tokens), model_flops(model)
    count = sum(g for g, _, _ in state.flops)
    return (sum(g * f for g, f, _ in state.flops) / count,
            sum(g * full for g, _, full in state.flops) / count)


def search_flops(model: nn.Module) -> torch.Tensor:
    """Differentiable FLOPs of the last forward of a :func:`searchable` model (per image; per
    sentence averaged over a text batch)."""
    return _batch_flops(model)[0]


def learned_rates(model: nn.Module) -> Rates:
    """The integer schedule of a :func:`searchable` model's proxies (clamped to be valid)."""
    state: State = model._diffrate
    n = state.num_tokens
    prune = [n] + [p.integer() for p, _ in state.proxies]
    merge = [n] + [m.integer() for _, m in state.proxies]
    return Rates.clamped(prune, merge, n, state.prefix)


def _batches(n: int, batch: int, gen: torch.Generator, lengths: Sequence[int] | None = None,
             pool: int = 16) -> Iterable[torch.Tensor]:
    """Shuffled batches of indices. With ``lengths`` (text), each run of ``pool`` batches is
    sorted by length before it is cut, and the batches are shuffled again: a batch then holds
    few distinct lengths, i.e. few groups for the padding-exact encoder to run one by one."""
    perm = torch.randperm(n, generator=gen)
    if lengths is None:
        return (perm[i:i + batch] for i in range(0, n, batch))
    cut = []
    for start in range(0, n, batch * pool):
        part = sorted(perm[start:start + batch * pool].tolist(), key=lambda i: lengths[i])
        cut += [torch.tensor(part[i:i + batch]) for i in range(0, len(part), batch)]
    return (cut[i] for i in torch.randperm(len(cut), generator=gen).tolist())


def _check_labels(labels: torch.Tensor, classes: Any) -> None:
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"the search needs a model with a classifier head (num_classes >= 1), "
                         f"got num_classes={classes!r}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"labels must be integer class indices, got {labels.dtype}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= classes:
        raise ValueError(f"labels must lie in [0, {classes}) (the model's classes), got labels "
                         f"from {low} to {high}")


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
    _check_labels(data.labels, getattr(model, "num_classes", 0))


@dataclass
class _Examples:
    """A search's data as the loop needs it: count, labels, a batch maker, lengths (text)."""

    size: int
    labels: torch.Tensor
    batch: Callable[[torch.Tensor], dict[str, torch.Tensor]]
    lengths: list[int] | None = None


def _image_examples(model: nn.Module, data: Any, tokenizer: Any) -> _Examples:
    if tokenizer is not None:
        raise ValueError("tokenizer is for text models; a ViT searches on an ImageSet")
    _check_search_data(model, data)
    weight = model.patch_embed.proj.weight
    return _Examples(len(data), data.labels, lambda idx: {
        "x": normalize(data.images[idx]).to(weight.device, weight.dtype)})


def _text_examples(model: nn.Module, data: Any, tokenizer: Any, max_length: int) -> _Examples:
    from paperlab.text.data import TextSet
    from paperlab.text.train import encode

    if not isinstance(data, TextSet):
        raise TypeError("a text model searches on a paperlab.text.data.TextSet (sentences and "
                        f"labels), got {checks.describe(data)}")
    if tokenizer is None:
        raise ValueError("a text model's search needs its tokenizer (tokenizer=...)")
    if len(data) == 0:
        raise ValueError("no search sentences")
    max_length = checks.integer(max_length, "max_length", low=2)
    labels = torch.as_tensor(data.labels)
    _check_labels(labels, text_patch.num_labels(model))
    lengths = [len(ids) for ids in tokenizer(list(data.texts), truncation=True,
                                             max_length=max_length)["input_ids"]]
    device = next(model.parameters()).device

    def batch(idx: torch.Tensor) -> dict[str, torch.Tensor]:
        enc = encode(tokenizer, [data.texts[i] for i in idx.tolist()], max_length)
        return {k: v.to(device) for k, v in enc.items()}

    return _Examples(len(data), labels, batch, lengths)


def search(model: nn.Module, data: Any, target_gflops: float,
           config: SearchConfig | None = None, trace: list[dict[str, float]] | None = None,
           *, tokenizer: Any = None, max_length: int = 64) -> Rates:
    """Learn per-block kept counts for ``model`` at ``target_gflops`` (multiply-adds, 1e9, per
    image; per sentence averaged over ``data`` for a text model).

    The model is not modified (a copy is searched with its weights frozen); only the rate
    logits are trained. ``trace``, when given, receives one dict per step (``ce``,
    ``flops_loss``, ``gflops``).

    ViT: ``data`` is an :class:`~paperlab.vision.data.ImageSet`; images are standardised
    (:func:`~paperlab.vision.data.normalize`) and moved to the model's device and dtype batch by
    batch. BERT (a sequence classifier): ``data`` is a :class:`~paperlab.text.data.TextSet`,
    tokenized with ``tokenizer`` (truncated to ``max_length`` tokens) batch by batch; the
    schedule is defined at the longest sentence's length and each sentence runs it at its own
    (:meth:`Rates.for_length`). Batches are drawn from runs of similar lengths (fewer groups to
    run one by one), and a batch's FLOPs enter the loss relative to its unreduced FLOPs
    (``F_batch * full / full_batch``), so batches of long or short sentences pull alike.

    Raises:
        TypeError: ``data`` of the wrong kind (a tensor, an ImageSet for a text model, ...),
            labels that are not integers, ``target_gflops`` not a number, ``config`` not a
            :class:`SearchConfig`.
        ValueError: the target NaN or not between the least reachable and the full FLOPs
            (both named); ``data`` empty, of another image shape than the model's, or with
            labels outside ``[0, num_classes)``; a model without a classifier head or patched
            for token merging (PiToMe, ToMe); a text model without ``tokenizer``.
    """
    cfg = SearchConfig() if config is None else config
    if not isinstance(cfg, SearchConfig):
        raise TypeError(f"config must be a SearchConfig, got {checks.describe(cfg)}")
    text = _is_text(model)
    examples = (_text_examples(model, data, tokenizer, max_length) if text
                else _image_examples(model, data, tokenizer))
    least, full = flops_range(model, examples.lengths)
    target = checks.real(target_gflops, "target_gflops") * 1e9
    if not least <= target < full:
        raise ValueError(f"target_gflops={target / 1e9:.6g} is outside the reachable range "
                         f"[{least / 1e9:.6g}, {full / 1e9:.6g}) GFLOPs of this model")
    net = copy.deepcopy(model).eval()
    for param in net.parameters():
        param.requires_grad_(False)
    reference = max(examples.lengths) if examples.lengths else None
    proxies = searchable(net, cfg.granularity, cfg.prop_attn, reference)
    opt = torch.optim.AdamW(proxies.parameters(), lr=cfg.lr, weight_decay=0.0)
    steps = cfg.epochs * math.ceil(examples.size / cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=cfg.lr_min)
    gen = torch.Generator().manual_seed(cfg.seed)
    device = next(model.parameters()).device
    for _ in range(cfg.epochs):
        for idx in _batches(examples.size, cfg.batch_size, gen, examples.lengths):
            out = net(**examples.batch(idx))
            logits = out.logits if text else out
            ce = F.cross_entropy(logits, examples.labels[idx].to(device, torch.long))
            flops, batch_full = _batch_flops(net)
            reg = flops_loss(flops * (full / batch_full), target, full, cfg.lam)
            opt.zero_grad()
            (ce + reg).backward()
            opt.step()
            sched.step()
            if trace is not None:
                trace.append({"ce": ce.item(), "flops_loss": reg.item(),
                              "gflops": flops.item() / 1e9})
    rates = learned_rates(net)
    log.info("DiffRate search at %.4g GFLOPs: %.4g GFLOPs, kept %s", target / 1e9,
             rates_flops(model, rates, lengths=examples.lengths) / 1e9, rates.merge)
    return rates
