"""PiToMe's energy-score merge rule (Tran et al., NeurIPS 2024) for the merging machinery.

In a block with ``T`` patch tokens whose keys (averaged over heads, L2-normalised) are the
metric, merging ``r`` of them:

1. energy ``E_i = mean_j ELU(S_ij - m_l)``, ``S`` the cosine similarities (self included) and
   ``m_l = margin - margin * l / L`` the margin of layer ``l`` of ``L`` (:func:`layer_margins`);
2. tokens sorted by energy, highest first; the top ``2r`` are mergeable, the other ``T - 2r``
   (low energy: isolated, informative) are protected and pass untouched;
3. mergeable tokens alternate by energy rank into A and B; every A token merges into its most
   similar B token (:func:`~paperlab.merging.plan.match`). Output ``[prefix, protected, B]``.

Without protection (``protect=False``, what PiToMe's reference code does in the first
``ceil(L/2)`` blocks, :func:`layer_protect`) A/B alternate by energy rank over all patch tokens
and the top-``r`` edges merge. :func:`energy_plan` takes ``r`` itself, so any schedule of
merge counts can use the rule (DiffRate's learned counts do); :class:`PiToMeRule` is the
:class:`~paperlab.merging.plan.MergeRule` with PiToMe's one keep ratio for all layers.

PiToMe's reference code for text (its BERT patch) differs in three places, each an option here:
the energy is a Gaussian kernel on the cosine similarity, ``mean_j exp(-((1 - S_ij) / s)^2 / 2)
/ (s sqrt(2 pi))`` with ``s = 1 - m_l`` (``kernel="gaussian"``); the top ``2r`` tokens split into
A = the higher-energy half and B = the lower half (``split="halves"``); only the first three
layers merge (:func:`text_layers`), with margins ``0.9 - 0.25 l / L``
(``layer_margins(L, 0.9, drop=0.25)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import torch
import torch.nn.functional as F

from paperlab.core import checks
from paperlab.merging.plan import MergePlan, match, merge_schedule, normalized

if TYPE_CHECKING:
    from typing_extensions import Unpack

SCHEDULES = ("reference", "pure")
KERNELS = ("elu", "gaussian")
SPLITS = ("alternate", "halves")
TEXT_SCHEDULES = ("reference", "every-layer", "pure")
TEXT_MERGING_LAYERS = 3  # the reference's BERT patch: "aggressive compress only the first 3"


def energy_score(metric: torch.Tensor, margin: float, kernel: str = "elu") -> torch.Tensor:
    """Energy of each token of an L2-normalised ``metric`` ``(B, T, C)`` -> ``(B, T)``.

    ``"elu"`` (the paper): ``mean_j ELU(S_ij - margin)``; ``"gaussian"`` (the reference's text
    code): ``mean_j exp(-((1 - S_ij) / s)^2 / 2) / (s sqrt(2 pi))`` with ``s = 1 - margin``.

    Raises:
        TypeError, ValueError: ``margin`` not a finite number (a NaN margin would make every
            energy NaN and the token order arbitrary); ``margin >= 1`` for the Gaussian kernel;
            an unknown kernel.
    """
    margin = checks.real(margin, "margin")
    sim = metric @ metric.transpose(1, 2)
    if kernel == "elu":
        return F.elu(sim - margin).mean(dim=-1)
    if kernel == "gaussian":
        if not margin < 1:
            raise ValueError(f"the Gaussian energy needs margin < 1, got {margin}")
        sigma = 1.0 - margin
        density = torch.exp(-0.5 * ((1.0 - sim) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        return density.mean(dim=-1)
    raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def merge_count(patches: int, keep_ratio: float) -> int:
    """Tokens merged away in a block with ``patches`` patch tokens: ``floor(T - T * ratio)``
    (the reference's float expression, kept so the counts match it)."""
    return math.floor(patches - patches * keep_ratio)


def layer_margins(depth: int, margin: float = 0.75, drop: float | None = None
                  ) -> tuple[float, ...]:
    """``m_l = margin - drop * l / L`` for ``l = 0 .. L-1`` (``drop`` defaults to ``margin``,
    the paper's schedule; the reference's text code uses ``margin 0.9, drop 0.25``)."""
    drop = margin if drop is None else drop
    return tuple(margin - drop * layer / depth for layer in range(depth))


def text_layers(depth: int, first: int = TEXT_MERGING_LAYERS) -> tuple[bool, ...]:
    """Per layer, whether it merges: the first ``first`` layers only (the reference's BERT
    schedule)."""
    return tuple(layer < first for layer in range(depth))


def layer_protect(depth: int, schedule: str = "reference") -> tuple[bool, ...]:
    """Per block, whether low-energy tokens are protected: ``"reference"`` (PiToMe's code:
    not in the first ``ceil(L/2)`` blocks, then yes) or ``"pure"`` (every block).

    Raises:
        ValueError: unknown ``schedule``.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    first_half = math.ceil(depth / 2) if schedule == "reference" else 0
    return tuple(layer >= first_half for layer in range(depth))


def energy_plan(
    metric: torch.Tensor,
    r: int,
    margin: float,
    prefix: int = 1,
    protect: bool = True,
    kernel: str = "elu",
    split: str = "alternate",
) -> MergePlan | None:
    """The energy rule's merge plan for one block, merging ``r`` tokens (None when ``r = 0``).

    Args:
        metric: ``(B, N, C)`` keys averaged over heads; the first ``prefix`` tokens (class
            token) are never merged.
        r: patch tokens merged away, ``0 <= 2r <= N - prefix``.
        margin: the energy margin ``m_l`` of this block.
        prefix: leading tokens kept untouched in front.
        protect: True: low-energy tokens protected, every A token merges; False: energy-ordered
            bipartite matching over all patch tokens, top-``r`` edges.
        kernel: the energy, ``"elu"`` (the paper) or ``"gaussian"`` (the reference's text code).
        split: how the mergeable tokens form A and B: ``"alternate"`` by energy rank, or
            ``"halves"`` (A the higher-energy half; needs ``protect``).

    Raises:
        ValueError: ``r`` negative or more than half the patch tokens, an unknown kernel or
            split.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "halves" and not protect:
        raise ValueError("split='halves' needs protect=True (A and B are the top 2r tokens)")
    b, n, _ = metric.shape
    if not 0 <= 2 * r <= n - prefix:
        raise ValueError(f"cannot merge r={r} of {n - prefix} patch tokens (at most half)")
    if r == 0:
        return None
    patches = normalized(metric[:, prefix:])
    order = energy_score(patches, margin, kernel).argsort(dim=-1, descending=True) + prefix
    front = torch.arange(prefix, device=metric.device).expand(b, -1)
    metric = torch.cat([metric[:, :prefix], patches], dim=1)
    if protect:
        mergeable, protected = order[:, : 2 * r], order[:, 2 * r :]
        front = torch.cat([front, protected], dim=1)
        if split == "halves":
            return match(metric, mergeable[:, :r], mergeable[:, r:], r, front)
        return match(metric, mergeable[:, 0::2], mergeable[:, 1::2], r, front)
    return match(metric, order[:, 0::2], order[:, 1::2], r, front)


class EnergyOptions(TypedDict, total=False):
    """The per-block options of :func:`energy_plan` that :func:`pitome_plan` passes on."""

    protect: bool
    kernel: str
    split: str


def pitome_plan(metric: torch.Tensor, keep_ratio: float, margin: float, prefix: int = 1,
                **options: Unpack[EnergyOptions]) -> MergePlan | None:
    """PiToMe's plan for one block: :func:`energy_plan` (``options``: its ``protect``,
    ``kernel`` and ``split``) with ``r = floor(T - T * keep_ratio)`` for the block's ``T`` patch
    tokens (``0.5 <= keep_ratio <= 1``)."""
    return energy_plan(metric, merge_count(metric.shape[1] - prefix, keep_ratio), margin,
                       prefix, **options)


@dataclass(frozen=True)
class PiToMeRule:
    """The :class:`~paperlab.merging.plan.MergeRule` of PiToMe (see the module docstring).

    Attributes:
        keep_ratio: fraction of patch tokens kept by every merging block.
        margins: energy margin of each block.
        protect: per block, the pure rule (True) or the energy-ordered bipartite match (False).
        kernel, split: see :func:`energy_plan` (the paper's ``"elu"``, ``"alternate"`` by
            default; the reference's text code ``"gaussian"``, ``"halves"``).
        merging: per block, whether it merges at all (None: every block).
    """

    keep_ratio: float
    margins: tuple[float, ...]
    protect: tuple[bool, ...]
    kernel: str = "elu"
    split: str = "alternate"
    merging: tuple[bool, ...] | None = None

    def __post_init__(self) -> None:
        """Check the values now rather than in the first forward (converted to Python floats:
        NumPy and 0-d tensor scalars are accepted)."""
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        ratio = checks.real(self.keep_ratio, "keep_ratio", low=0, high=1, low_open=True)
        below = 1 if self.kernel == "gaussian" else None  # the kernel's width is 1 - margin
        margins = tuple(checks.real(m, f"margins[{i}]", high=below, high_open=True)
                        for i, m in enumerate(self.margins))
        if len(self.protect) != len(margins):
            raise ValueError(f"{len(self.protect)} protect flags for {len(margins)} margins")
        if self.split == "halves" and not all(self.protect):
            raise ValueError("split='halves' needs protect=True in every block")
        object.__setattr__(self, "keep_ratio", ratio)
        object.__setattr__(self, "margins", margins)

    def merges(self, layer: int, num_tokens: int, prefix: int) -> int:
        """Tokens block ``layer`` merges away when ``num_tokens`` (prefix included) come in."""
        if self.merging is not None and not self.merging[layer]:
            return 0
        return merge_count(num_tokens - prefix, self.keep_ratio)

    def plan(self, metric: torch.Tensor, layer: int, prefix: int) -> MergePlan | None:
        r = self.merges(layer, metric.shape[1], prefix)
        if not r:
            return None
        return energy_plan(metric, r, self.margins[layer], prefix, self.protect[layer],
                           self.kernel, self.split)

    def schedule(self, num_tokens: int, depth: int, prefix: int) -> list[tuple[int, int]]:
        if len(self.margins) != depth:
            raise ValueError(f"{len(self.margins)} margins for {depth} blocks")
        if self.merging is not None and len(self.merging) != depth:
            raise ValueError(f"{len(self.merging)} merging flags for {depth} blocks")
        return merge_schedule(lambda layer, n: self.merges(layer, n, prefix), num_tokens, depth,
                              prefix, f"keep_ratio={self.keep_ratio}")


def bert_rule(depth: int, keep_ratio: float, margin: float | None = None,
              schedule: str = "reference") -> PiToMeRule:
    """PiToMe's rule for a BERT encoder of ``depth`` layers: the reference's text rule
    (Gaussian energy, A = the higher-energy half, margins ``0.9 - 0.25 l / L``) in its first
    three layers (``"reference"``) or in every layer (``"every-layer"``), or the paper's rule
    in every layer (``"pure"``). ``bert_rule(depth, k).schedule(...)`` is also the token
    schedule other methods are matched to (ToMe's counts, DiffRate's text FLOPs target)."""
    if schedule not in TEXT_SCHEDULES:
        raise ValueError(f"schedule must be one of {TEXT_SCHEDULES} for a BERT model, got "
                         f"{schedule!r}")
    protect = (True,) * depth
    if schedule == "pure":
        return PiToMeRule(keep_ratio, layer_margins(depth, 0.75 if margin is None else margin),
                          protect)
    margins = layer_margins(depth, 0.9 if margin is None else margin, drop=0.25)
    merging = text_layers(depth) if schedule == "reference" else None
    return PiToMeRule(keep_ratio, margins, protect, kernel="gaussian", split="halves",
                      merging=merging)
