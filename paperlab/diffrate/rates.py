"""DiffRate's compression rates: the integer schedule and its differentiable proxy.

A schedule (:class:`Rates`) gives, for every block of a model with ``N`` tokens (the
``prefix`` tokens included: the class token, and a distillation token where there is one), how
many tokens are left after pruning (``prune``) and after merging (``merge``). Block 0 keeps
everything and counts never increase: ``N = prune[0] = merge[0]`` and
``prefix <= merge[l] <= prune[l] <= merge[l - 1]``.

Sequences of other lengths (sentences): the counts are fractions of the non-prefix tokens. A
sequence of ``L`` tokens keeps ``prefix + ceil((L - prefix) (c - prefix) / (N - prefix))`` where
the schedule says ``c`` (:meth:`Rates.for_length`), so each sentence's counts depend on its own
length only; at ``L = N`` they are the schedule's.

During the search each decision is a :class:`RateProxy`: over candidate kept counts of the
``P = N - prefix`` non-prefix tokens ``K = (P, P - g, P - 2g, ...)`` (granularity ``g``) it holds
logits ``rho`` (init 0) with ``p = softmax(rho)``; the kept count is
``ceil(sum_k p_k K_k) + prefix`` with a straight-through ceil (forward rounds up, backward is the
identity), and the token mask over sorted positions ``i`` is the hard ``[i < kept]`` forward
and the soft ``pi_i = sum_k p_k [i < K_k + prefix]`` backward. For a sequence of ``T``
non-prefix tokens every count ``K`` becomes ``ceil(T K / P)`` (straight-through again).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from paperlab.core import checks

PAPER_FULL_GFLOPS = 4.6  # DeiT-S, the scale at which the paper's lambda = 5 was set


def ste_ceil(x: torch.Tensor) -> torch.Tensor:
    """``ceil(x)`` forward, identity backward (a tolerance of 1e-4 absorbs float error)."""
    return x + (torch.ceil(x - 1e-4) - x).detach()


def candidate_counts(num_patches: int, granularity: int = 4) -> list[int]:
    """Candidate kept patch-token counts ``P, P - g, ...`` down to the last one ``>= 0``.

    Raises:
        TypeError: a count that is not an integer. ValueError: one below 1.
    """
    num_patches = checks.integer(num_patches, "num_patches", low=1)
    granularity = checks.integer(granularity, "granularity", low=1)
    return list(range(num_patches, -1, -granularity))


class RateProxy(nn.Module):
    """One differentiable discrete kept count (see the module docstring).

    Args:
        num_patches: non-prefix tokens ``P`` of the schedule's length (the prefix tokens are
            always kept on top).
        granularity: step ``g`` between candidate counts.
        prefix: prefix tokens (class token, distillation token), never pruned or merged.
    """

    def __init__(self, num_patches: int, granularity: int = 4, prefix: int = 1) -> None:
        super().__init__()
        self.register_buffer(
            "counts", torch.tensor(candidate_counts(num_patches, granularity), dtype=torch.float)
        )
        self.logits = nn.Parameter(torch.zeros(len(self.counts)))
        self.num_patches = int(num_patches)
        self.prefix = checks.integer(prefix, "prefix", low=1)

    def expected(self) -> torch.Tensor:
        """``sum_k p_k K_k``: the expected kept non-prefix count (smooth in the logits)."""
        return self.logits.softmax(-1) @ self.counts

    def kept(self, patches: int | None = None) -> torch.Tensor:
        """Kept tokens, prefix included, for a sequence of ``patches`` non-prefix tokens
        (default ``P``): ``prefix + ceil(T ceil(expected) / P)`` (straight-through ceils)."""
        count = ste_ceil(self.expected())
        if patches is not None and patches != self.num_patches:
            count = ste_ceil(count * (patches / self.num_patches))
        return count + self.prefix

    def soft_mask(self, num_tokens: int, patches: int | None = None) -> torch.Tensor:
        """``pi_i = sum_k p_k [i < ceil(T K_k / P) + prefix]`` for positions ``0 .. num_tokens
        - 1`` of a sequence of ``patches`` (``T``, default ``P``) non-prefix tokens."""
        p = self.logits.softmax(-1)
        counts = self.counts
        if patches is not None and patches != self.num_patches:
            counts = torch.ceil(counts * (patches / self.num_patches) - 1e-4)
        pos = torch.arange(num_tokens, device=p.device, dtype=p.dtype)
        return (pos[:, None] < counts[None] + self.prefix).to(p.dtype) @ p

    def mask(self, num_tokens: int, patches: int | None = None) -> torch.Tensor:
        """``(num_tokens,)`` hard 0/1 mask ``[i < kept(patches)]`` forward, :meth:`soft_mask`
        backward."""
        soft = self.soft_mask(num_tokens, patches)
        pos = torch.arange(num_tokens, device=soft.device, dtype=soft.dtype)
        hard = (pos < self.kept(patches).detach()).to(soft.dtype)
        return hard + (soft - soft.detach())

    def integer(self) -> int:
        """The learned kept count at the schedule's length (prefix included), a Python int."""
        return int(self.kept().detach().round())


@dataclass(frozen=True)
class Rates:
    """A DiffRate schedule (tokens counted with the prefix tokens).

    Attributes:
        prune: tokens left after pruning in each block.
        merge: tokens left after merging in each block (what the next block receives).
        num_tokens: tokens entering block 0 (for text, the length the counts are defined at;
            other lengths scale, see :meth:`for_length`).
        prefix: leading tokens never pruned or merged (1: the class token; 2 with a
            distillation token), ``1 <= prefix < num_tokens``.
    """

    prune: tuple[int, ...]
    merge: tuple[int, ...]
    num_tokens: int
    prefix: int = 1

    def __post_init__(self) -> None:
        """Check the schedule; NumPy and 0-d tensor integers become Python ints.

        Raises:
            TypeError: a count that is not an integer (a float, a bool, ...).
            ValueError: an invalid schedule (see the class docstring).
        """
        object.__setattr__(self, "num_tokens", checks.integer(self.num_tokens, "num_tokens"))
        object.__setattr__(self, "prefix", checks.integer(self.prefix, "prefix", low=1))
        if self.prefix >= self.num_tokens:
            raise ValueError(f"num_tokens ({self.num_tokens}) must exceed the prefix tokens "
                             f"({self.prefix})")
        for name in ("prune", "merge"):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise TypeError(f"{name} must be a sequence of ints, got "
                                f"{checks.describe(values)}")
            object.__setattr__(self, name, tuple(checks.integer(v, f"{name}[{i}]")
                                                 for i, v in enumerate(values)))
        if len(self.prune) != len(self.merge) or not self.prune:
            raise ValueError(f"prune ({len(self.prune)}) and merge ({len(self.merge)}) need the "
                             "same number (>= 1) of blocks")
        if self.prune[0] != self.num_tokens or self.merge[0] != self.num_tokens:
            raise ValueError(f"block 0 keeps everything: prune[0] and merge[0] must be "
                             f"{self.num_tokens}, got {self.prune[0]}, {self.merge[0]}")
        n = self.num_tokens
        for layer, (p, m) in enumerate(zip(self.prune, self.merge, strict=True)):
            if not self.prefix <= m <= p <= n:
                raise ValueError(f"block {layer}: need {self.prefix} <= merge ({m}) <= prune "
                                 f"({p}) <= tokens in ({n}); counts never increase and the "
                                 f"{self.prefix} prefix token(s) stay")
            n = m

    @classmethod
    def keep_all(cls, num_tokens: int, depth: int, prefix: int = 1) -> Rates:
        """No reduction in any block."""
        return cls((num_tokens,) * depth, (num_tokens,) * depth, num_tokens, prefix)

    @classmethod
    def clamped(cls, prune: Sequence[int], merge: Sequence[int], num_tokens: int,
                prefix: int = 1) -> Rates:
        """A valid schedule from raw counts: block 0 full, each count clamped to
        ``[prefix, previous count]`` and ``merge <= prune`` (what a search's integers
        become)."""
        out_p, out_m, n = [], [], num_tokens
        for layer, (p, m) in enumerate(zip(prune, merge, strict=True)):
            p = n if layer == 0 else max(prefix, min(int(p), n))
            m = p if layer == 0 else max(prefix, min(int(m), p))
            out_p.append(p)
            out_m.append(m)
            n = m
        return cls(tuple(out_p), tuple(out_m), num_tokens, prefix)

    @property
    def depth(self) -> int:
        """Number of blocks."""
        return len(self.prune)

    def for_length(self, length: int) -> Rates:
        """The schedule of a sequence of ``length`` tokens (prefix included): every count ``c``
        becomes ``prefix + ceil((length - prefix) (c - prefix) / (num_tokens - prefix))``, the
        same fraction of the non-prefix tokens rounded up (exact integer arithmetic). Monotone
        in ``c``, so the result is a valid schedule; ``for_length(num_tokens)`` is ``self``.

        Raises:
            TypeError: ``length`` not an integer. ValueError: ``length <= prefix``.
        """
        length = checks.integer(length, "length", low=self.prefix + 1)
        if length == self.num_tokens:
            return self
        new, old = length - self.prefix, self.num_tokens - self.prefix

        def scale(counts: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(self.prefix - (-(c - self.prefix) * new // old) for c in counts)

        return Rates(scale(self.prune), scale(self.merge), length, self.prefix)

    def tokens(self) -> list[tuple[int, int]]:
        """``(tokens in, tokens out)`` per block (what :mod:`paperlab.vision.flops` takes)."""
        ins = (self.num_tokens, *self.merge[:-1])
        return list(zip(ins, self.merge, strict=True))

    def to_dict(self) -> dict[str, Any]:
        """``{"num_tokens", "prefix", "prune", "merge"}`` (JSON-ready)."""
        return {"num_tokens": self.num_tokens, "prefix": self.prefix, "prune": list(self.prune),
                "merge": list(self.merge)}

    @classmethod
    def from_dict(cls, data: Any) -> Rates:
        """Parse :meth:`to_dict`'s output (``prefix`` defaults to 1, the class token alone);
        ``ValueError`` naming what is wrong."""
        if not isinstance(data, dict) or not {"num_tokens", "prune", "merge"} <= set(data):
            raise ValueError("rates must be a mapping with num_tokens, prune and merge")
        if not all(isinstance(data[k], list) for k in ("prune", "merge")):
            raise ValueError("rates prune and merge must be lists of ints")
        return cls(tuple(data["prune"]), tuple(data["merge"]), data["num_tokens"],
                   data.get("prefix", 1))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the schedule as JSON; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Rates:
        """Read a schedule written by :meth:`save` (plain JSON, validated).

        Raises:
            FileNotFoundError: no such file.
            ValueError: a file that is not UTF-8 JSON text (binary garbage) or not a valid
                schedule; the message names the file.
        """
        raw = Path(path).read_bytes()
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise ValueError(f"rates file {path} is not text (binary data at byte "
                             f"{err.start}); expected the JSON that Rates.save writes") from err
        except json.JSONDecodeError as err:
            raise ValueError(f"rates file {path} is not JSON: {err}") from err
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as err:
            raise ValueError(f"rates file {path}: {err}") from err


def flops_loss(flops: torch.Tensor, target: float, full: float, lam: float = 5.0
               ) -> torch.Tensor:
    """``lam * (F - target)^2`` with FLOPs in units where the full model costs 4.6 (DeiT-S's
    GFLOPs), so that the paper's ``lam = 5`` weighs a relative miss as it did on DeiT-S."""
    scale = PAPER_FULL_GFLOPS / full
    return lam * ((flops - target) * scale) ** 2
