"""PiToMe (Tran et al., NeurIPS 2024): token merging that protects informative tokens.

In every block, after attention, with the ``T`` patch tokens' keys (averaged over heads,
L2-normalised) as the metric and ``r = floor(T - T * keep_ratio)``:

1. energy ``E_i = mean_j ELU(S_ij - m_l)``, ``S`` the cosine similarities (self included) and
   ``m_l = margin - margin * l / L`` the margin of layer ``l`` of ``L``;
2. tokens sorted by energy, highest first; the top ``2r`` are mergeable, the other ``T - 2r``
   (low energy: isolated, informative) are protected and pass untouched;
3. mergeable tokens alternate by energy rank into A and B; every A token merges into its most
   similar B token (size-weighted average, sizes tracked). Output ``[class, protected, B]``.

The reference code applies that pure rule only in the last ``floor(L/2)`` blocks; the first
``ceil(L/2)`` use an energy-ordered ToMe-style match (A/B alternate by energy rank over all patch
tokens, the top-``r`` edges merge, nothing protected). ``schedule="reference"`` (default) does
that, ``schedule="pure"`` applies the pure rule in every block.

    from paperlab import pitome
    pitome.patch(model, keep_ratio=0.9)      # a timm VisionTransformer, patched in place
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.vision.merging import MergePlan, apply_rule, match, normalized, vit_depth

SCHEDULES = ("reference", "pure")


def energy_score(metric: torch.Tensor, margin: float) -> torch.Tensor:
    """``E_i = mean_j ELU(S_ij - margin)``: L2-normalised ``metric`` ``(B, T, C)`` -> ``(B, T)``."""
    sim = metric @ metric.transpose(1, 2)
    return F.elu(sim - margin).mean(dim=-1)


def merge_count(patches: int, keep_ratio: float) -> int:
    """Tokens merged away in a block with ``patches`` patch tokens: ``floor(T - T * ratio)``
    (the reference's float expression, kept so the counts match it)."""
    return math.floor(patches - patches * keep_ratio)


def pitome_plan(
    metric: torch.Tensor,
    keep_ratio: float,
    margin: float,
    prefix: int = 1,
    protect: bool = True,
) -> MergePlan | None:
    """PiToMe's merge plan for one block (None when nothing merges).

    Args:
        metric: ``(B, N, C)`` keys averaged over heads; the first ``prefix`` tokens (class
            token) are never merged.
        keep_ratio: fraction of patch tokens kept, ``0.5 <= keep_ratio <= 1``.
        margin: the energy margin ``m_l`` of this block.
        prefix: leading tokens kept untouched in front.
        protect: True: the pure rule (low-energy tokens protected, every A token merges);
            False: the reference's first-half variant (energy-ordered bipartite matching over
            all patch tokens, top-``r`` edges).
    """
    b, n, _ = metric.shape
    r = merge_count(n - prefix, keep_ratio)
    if r == 0:
        return None
    patches = normalized(metric[:, prefix:])
    order = energy_score(patches, margin).argsort(dim=-1, descending=True) + prefix
    front = torch.arange(prefix, device=metric.device).expand(b, -1)
    metric = torch.cat([metric[:, :prefix], patches], dim=1)
    if protect:
        mergeable, protected = order[:, : 2 * r], order[:, 2 * r :]
        front = torch.cat([front, protected], dim=1)
        return match(metric, mergeable[:, 0::2], mergeable[:, 1::2], r, front)
    return match(metric, order[:, 0::2], order[:, 1::2], r, front)


@dataclass(frozen=True)
class PiToMeRule:
    """The :class:`~paperlab.vision.merging.MergeRule` of PiToMe (see the module docstring).

    Attributes:
        keep_ratio: fraction of patch tokens kept by every block.
        margins: energy margin of each block.
        protect: per block, the pure rule (True) or the energy-ordered bipartite match (False).
    """

    keep_ratio: float
    margins: tuple[float, ...]
    protect: tuple[bool, ...]

    def plan(self, metric: torch.Tensor, layer: int, prefix: int) -> MergePlan | None:
        return pitome_plan(metric, self.keep_ratio, self.margins[layer], prefix,
                           self.protect[layer])

    def schedule(self, num_tokens: int, depth: int, prefix: int) -> list[tuple[int, int]]:
        if len(self.margins) != depth:
            raise ValueError(f"{len(self.margins)} margins for {depth} blocks")
        tokens, n = [], num_tokens
        for layer in range(depth):
            r = merge_count(n - prefix, self.keep_ratio)
            if 2 * r > n - prefix:
                raise ValueError(
                    f"keep_ratio={self.keep_ratio} leaves too few tokens: block {layer} would "
                    f"merge {r} of {n - prefix} patch tokens, more than half"
                )
            tokens.append((n, n - r))
            n -= r
        return tokens


def layer_margins(depth: int, margin: float = 0.75) -> tuple[float, ...]:
    """``m_l = margin - margin * l / L`` for ``l = 0 .. L-1``."""
    return tuple(margin - margin * layer / depth for layer in range(depth))


def patch(
    model: nn.Module,
    keep_ratio: float,
    *,
    margin: float = 0.75,
    schedule: str = "reference",
    prop_attn: bool = False,
    trace_source: bool = False,
    fused: bool | None = None,
) -> nn.Module:
    """Apply PiToMe to a timm ``VisionTransformer`` in place (weights untouched); returns it.

    Args:
        model: a timm ViT with a class token.
        keep_ratio: fraction of patch tokens each block keeps, in ``[0.5, 1]`` (1: no merging;
            below 0.5 the ``2r`` mergeable tokens would outnumber the patch tokens).
        margin: ``m_0``; block ``l`` of ``L`` uses ``margin - margin * l / L``.
        schedule: ``"reference"`` (ToMe-style energy-ordered match in the first ``ceil(L/2)``
            blocks, the pure rule after) or ``"pure"`` (the pure rule in every block).
        prop_attn: proportional attention (off in the reference).
        trace_source: record which patches each token holds.
        fused: force fused (True) or explicit (False) attention; None keeps timm's choice.

    Raises:
        ValueError: ``keep_ratio`` outside ``(0, 1]`` or too small, unknown ``schedule``.
    """
    if not isinstance(keep_ratio, (int, float)) or not 0 < keep_ratio <= 1:
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    depth = vit_depth(model)
    first_half = math.ceil(depth / 2) if schedule == "reference" else 0
    rule = PiToMeRule(
        float(keep_ratio),
        layer_margins(depth, margin),
        tuple(layer >= first_half for layer in range(depth)),
    )
    return apply_rule(model, rule, prop_attn=prop_attn, trace_source=trace_source, fused=fused)
