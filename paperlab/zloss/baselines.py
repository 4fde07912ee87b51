"""The O(D d) output layers the factored layer is compared with, behind the same interface.

Each has ``step(h, targets) -> (mean loss, grad_h)`` (one plain-SGD step on its weights)
and ``topk(h, k)``, like :class:`~paperlab.zloss.factored.SphericalOutputLayer`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperlab.zloss.losses import check_features, check_k, check_layer_size, check_targets


def _check_batch(h: Tensor, targets: Tensor, dim: int, num_classes: int) -> None:
    check_features(h, dim)
    check_targets(targets, h.shape[0], num_classes)


class FullSoftmaxLayer(nn.Module):
    """Linear layer + log-softmax cross-entropy, with a hand-written in-place SGD step.

    The step does the three ``m x D x d`` products autograd would (logits, ``grad_h``,
    ``grad_W``) but adds ``grad_W`` into ``W`` in place, so no ``D x d`` gradient is ever
    allocated: peak memory is ``W`` plus two ``m x D`` buffers.

    Args:
        dim: ``d``; num_classes: ``D``; lr: SGD learning rate on the mean loss;
        init_std: initial weight scale (default ``1/sqrt(dim)``); dtype; generator.
    """

    def __init__(self, dim: int, num_classes: int, lr: float = 0.1,
                 init_std: float | None = None, dtype: torch.dtype = torch.float32,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        check_layer_size(dim, num_classes, lr)
        self.dim, self.num_classes, self.lr = dim, num_classes, lr
        std = dim ** -0.5 if init_std is None else init_std
        weight = torch.randn(num_classes, dim, dtype=dtype, generator=generator).mul_(std)
        self.register_buffer("weight", weight)

    def logits(self, h: Tensor) -> Tensor:
        """``(N, D)`` logits ``h W^T``."""
        check_features(h, self.dim)
        return h.to(self.weight.dtype) @ self.weight.T

    def topk(self, h: Tensor, k: int) -> Tensor:
        """The ``k`` most probable classes ``(N, k)``, best first."""
        check_k(k, self.num_classes)
        return self.logits(h).topk(k, dim=1).indices

    def log_prob(self, h: Tensor, targets: Tensor) -> Tensor:
        """``log softmax(W h)_c`` ``(N,)``."""
        _check_batch(h, targets, self.dim, self.num_classes)
        return torch.log_softmax(self.logits(h), 1).gather(1, targets[:, None]).squeeze(1)

    @torch.no_grad()
    def step(self, h: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """One SGD step on the mean cross-entropy; returns ``(loss, grad_h)``."""
        _check_batch(h, targets, self.dim, self.num_classes)
        h = h.detach().to(self.weight.dtype)
        m = h.shape[0]
        probs = h @ self.weight.T
        log_z = torch.logsumexp(probs, 1)
        loss = (log_z - probs.gather(1, targets[:, None]).squeeze(1)).mean()
        probs.sub_(log_z[:, None]).exp_()                      # softmax, in place
        probs[torch.arange(m), targets] -= 1.0                 # dL/do = p - e_c
        probs.div_(m)
        grad_h = probs @ self.weight
        self.weight.addmm_(probs.T, h, alpha=-self.lr)
        return loss, grad_h


class AdaptiveSoftmaxLayer(nn.Module):
    """``torch.nn.AdaptiveLogSoftmaxWithLoss`` (Grave et al., 2017) trained by plain SGD.

    Args:
        dim: ``d``, the input width.
        num_classes: ``D``.
        cutoffs: cluster boundaries (default: those of 2,000, 20,000 and 200,000 below
            ``D``).
        div_value: shrink factor of the tail projections.
        lr: SGD learning rate.
    """

    def __init__(self, dim: int, num_classes: int, cutoffs: list[int] | None = None,
                 div_value: float = 4.0, lr: float = 0.1) -> None:
        super().__init__()
        check_layer_size(dim, num_classes, lr)
        self.dim, self.num_classes = dim, num_classes
        if cutoffs is None:
            cutoffs = [c for c in (2_000, 20_000, 200_000) if c < num_classes - 1]
            cutoffs = cutoffs or [num_classes // 2]
        self.head = nn.AdaptiveLogSoftmaxWithLoss(dim, num_classes, cutoffs, div_value=div_value)
        self.optimizer = torch.optim.SGD(self.head.parameters(), lr=lr)

    def topk(self, h: Tensor, k: int) -> Tensor:
        """The ``k`` most probable classes ``(N, k)`` (computes all ``D`` log-probabilities)."""
        check_features(h, self.dim)
        check_k(k, self.num_classes)
        with torch.no_grad():
            return self.head.log_prob(h).topk(k, dim=1).indices

    def step(self, h: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """One SGD step on the mean negative log-likelihood; returns ``(loss, grad_h)``."""
        _check_batch(h, targets, self.dim, self.num_classes)
        h = h.detach().requires_grad_()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.head(h, targets).loss
        loss.backward()
        self.optimizer.step()
        return loss.detach(), h.grad
