"""Token merging, independent of the model: plans, matching, the weighted merge, the rule API.

A merge rule decides, in every layer, a :class:`MergePlan`: which tokens stay (and in which
order), and which tokens merge into which staying token. ToMe (:mod:`paperlab.merging.tome`) and
PiToMe's energy rule (:mod:`paperlab.merging.energy`) are rules; DiffRate's prune-then-merge
makes plans of its own. One patch per model family applies any rule: the timm
``VisionTransformer`` (:mod:`paperlab.merging.vit`) and the Hugging Face BERT encoder
(:mod:`paperlab.merging.bert`). Bipartite matching between two token sets, the core of ToMe and
PiToMe, is :func:`match`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.core import checks


@dataclass(frozen=True)
class MergePlan:
    """One layer's merge as index tensors (batch ``B``, ``N`` tokens in, ``K`` tokens out).

    Attributes:
        keep: ``(B, K)`` indices of the input tokens that stay, in output order.
        src: ``(B, R)`` indices of the input tokens merged away (disjoint from ``keep``).
        dst: ``(B, R)`` output positions (``0 <= dst < K``) each ``src`` token merges into.

    Tokens in neither ``keep`` nor ``src`` are dropped (pruning); ToMe and PiToMe drop none.
    """

    keep: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor

    @property
    def num_out(self) -> int:
        return int(self.keep.shape[1])

    def merge(self, x: torch.Tensor, mode: str = "sum") -> torch.Tensor:
        """Reduce ``x`` ``(B, N, C)`` to ``(B, K, C)``: kept rows, ``src`` rows reduced into
        their ``dst`` rows with ``mode`` (``"sum"``, ``"mean"``, ``"amax"``; kept rows count)."""
        c = x.shape[-1]
        out = x.gather(1, self.keep[..., None].expand(-1, -1, c))
        if self.src.shape[1] == 0:
            return out
        moved = x.gather(1, self.src[..., None].expand(-1, -1, c))
        return out.scatter_reduce(1, self.dst[..., None].expand(-1, -1, c), moved, reduce=mode)


def merge_wavg(
    plan: MergePlan, x: torch.Tensor, size: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Size-weighted average merge: returns the merged ``x`` ``(B, K, C)`` and the new sizes
    ``(B, K, 1)`` (each the number of original patches a token stands for; None = all ones)."""
    if size is None:
        size = torch.ones_like(x[..., :1])
    x = plan.merge(x * size, "sum")
    size = plan.merge(size, "sum")
    return x / size, size


def merge_source(
    plan: MergePlan, x: torch.Tensor, source: torch.Tensor | None = None
) -> torch.Tensor:
    """Track which original tokens each token holds: ``(B, K, N0)`` 0/1 (None = identity)."""
    if source is None:
        b, n, _ = x.shape
        source = torch.eye(n, device=x.device, dtype=x.dtype)[None].expand(b, n, n)
    return plan.merge(source, "amax")


def match(
    metric: torch.Tensor,
    a_idx: torch.Tensor,
    b_idx: torch.Tensor,
    r: int,
    front: torch.Tensor | None = None,
) -> MergePlan:
    """Bipartite soft matching: the ``r`` tokens of set A whose most similar B token is most
    similar merge into it; the other A tokens and all B tokens stay.

    Args:
        metric: ``(B, N, C)`` token features, L2-normalised (similarity = dot product).
        a_idx: ``(B, Na)`` token indices of set A.
        b_idx: ``(B, Nb)`` token indices of set B (disjoint from A).
        r: how many A tokens merge, ``0 <= r <= Na``.
        front: ``(B, F)`` indices of tokens that stay untouched and come first (class token,
            protected tokens); None for none.

    Returns:
        a :class:`MergePlan` with output order ``[front, unmerged A (index order), B]``.
    """
    na = a_idx.shape[1]
    if not 0 <= r <= na:
        raise ValueError(f"cannot merge {r} tokens of a set of {na}")
    c = metric.shape[-1]
    ma = metric.gather(1, a_idx[..., None].expand(-1, -1, c))
    mb = metric.gather(1, b_idx[..., None].expand(-1, -1, c))
    best, partner = (ma @ mb.transpose(1, 2)).max(dim=-1)
    order = best.argsort(dim=-1, descending=True)
    merged, unmerged = order[:, :r], order[:, r:]
    unmerged_idx = a_idx.gather(1, unmerged).sort(dim=-1).values
    if front is None:
        front = a_idx[:, :0]
    keep = torch.cat([front, unmerged_idx, b_idx], dim=1)
    offset = front.shape[1] + na - r
    dst = partner.gather(1, merged) + offset
    return MergePlan(keep=keep, src=a_idx.gather(1, merged), dst=dst)


def normalized(metric: torch.Tensor) -> torch.Tensor:
    """L2-normalise features over the last axis (the cosine-similarity metric)."""
    return F.normalize(metric, p=2, dim=-1)


class MergeRule(Protocol):
    """What a token-reduction method plugs into :func:`apply_rule`.

    ``plan`` is called in every block with the block's metric (keys averaged over heads,
    ``(B, N, C/heads)``, prefix tokens first) and returns a :class:`MergePlan`, or None to leave
    the tokens as they are. ``schedule`` gives the ``(tokens in, tokens out)`` of every block for
    ``num_tokens`` input tokens (analytic FLOPs use it) and raises ``ValueError`` when the rule
    would leave too few tokens.
    """

    def plan(self, metric: torch.Tensor, layer: int, prefix: int) -> MergePlan | None: ...

    def schedule(self, num_tokens: int, depth: int, prefix: int) -> list[tuple[int, int]]: ...


@dataclass
class MergeState:
    """Shared by a patched model and its blocks; reset at every forward."""

    rule: MergeRule
    prop_attn: bool
    trace_source: bool
    prefix: int
    size: torch.Tensor | None = None
    source: torch.Tensor | None = None
    tokens: list[tuple[int, int]] = field(default_factory=list)
    mask: torch.Tensor | None = None  # (B, K) real tokens of a padded text batch

    def reset(self) -> None:
        self.size, self.source, self.tokens, self.mask = None, None, [], None


@functools.cache
def mixin_class(mixin: type, base: type) -> type:
    """``mixin`` layered over ``base`` (one class per pair, so patched modules share it): how a
    patch swaps a module's class in place (``module.__class__ = mixin_class(Mixin, type(m))``).
    The class remembers its mixin, so :func:`check_unpatched` can tell one patch from another."""
    return type(f"{mixin.__name__.lstrip('_')}[{base.__name__}]", (mixin, base),
                {"_patch_mixin": mixin})


def check_unpatched(model: nn.Module, mixin: type) -> None:
    """Raise ``ValueError`` when ``model`` is already patched (by :func:`mixin_class`) with a
    mixin other than ``mixin``: two token-reduction patches do not stack (the second would
    silently replace the first's forward). Patching again with the same mixin is allowed."""
    for cls in type(model).__mro__:
        other = vars(cls).get("_patch_mixin")
        if other is not None and other is not mixin:
            raise ValueError(
                f"the model is already patched by {getattr(other, 'patch_name', other.__name__)}"
                f"; {getattr(mixin, 'patch_name', mixin.__name__)} cannot be layered over it "
                "(it would silently replace the first patch): apply it to an unpatched copy "
                "of the model (copy.deepcopy before patching)")


def merge_state(model: nn.Module) -> MergeState:
    """The :class:`MergeState` of a patched model (its last forward's sizes, sources, tokens)."""
    state = getattr(model, "_merge_state", None)
    if state is None:
        raise ValueError("the model is not patched for token merging (see apply_rule)")
    return state


def merge_schedule(merges: Callable[[int, int], int], num_tokens: int, depth: int, prefix: int,
                   setting: str) -> list[tuple[int, int]]:
    """``(tokens in, tokens out)`` per layer of a rule that merges ``merges(layer, tokens in)``
    tokens in each layer, starting from ``num_tokens`` (prefix included): what a
    :class:`MergeRule`'s ``schedule`` returns.

    Raises:
        ValueError: a layer would merge more than half its non-prefix tokens (what bipartite
            matching can merge); the message names the rule's ``setting`` (e.g. ``"r=8"``).
    """
    tokens, n = [], num_tokens
    for layer in range(depth):
        r, most = merges(layer, n), (n - prefix) // 2
        if r > most:
            raise ValueError(
                f"{setting} leaves too few tokens: block {layer} has {n - prefix} patch tokens, "
                f"so bipartite matching can merge at most {most}, not {r}"
            )
        tokens.append((n, n - r))
        n -= r
    return tokens


def per_layer(value: int | Sequence[int], depth: int, name: str) -> list[int]:
    """A non-negative count for each of ``depth`` layers: an integer (Python, NumPy or a 0-d
    tensor) repeats; a sequence (or a 1-d array/tensor) must have ``depth`` entries.

    Raises:
        TypeError: an entry that is not an integer.
        ValueError: a negative entry, or a sequence of another length.
    """
    sequence = isinstance(value, Sequence) and not isinstance(value, (str, bytes))
    if sequence or getattr(value, "ndim", 0) == 1:
        values = [checks.integer(v, f"{name}[{i}]", low=0) for i, v in enumerate(value)]
        if len(values) != depth:
            raise ValueError(f"{name} has {len(values)} entries for {depth} layers")
        return values
    return [checks.integer(value, name, low=0)] * depth
