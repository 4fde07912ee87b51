"""Many small toy models trained side by side as one batched network.

The toy experiment trains an MLP ``2 -> 64 -> 32 -> head`` once per (dataset, seed, head,
N, gamma): hundreds of tiny models. Run one by one on a CPU, Python overhead dominates, so this
module stacks every model's weights along a leading "member" axis and trains them all with
batched matmuls. Each member has its own data stream (its dataset and seed), its own loss
term and its own Adam state; Adam is elementwise, so summing the members' losses trains each
exactly as if alone -- bit for bit with the multi-tensor (``foreach``) Adam used here, which
rounds every element the same way wherever it sits in the stack (the fused CPU Adam does not:
its vector loop rounds by position, so a member's last bits, and through the Fourier head's
sensitivity to them its whole trajectory, would depend on which other members share the
batch; tested). Fourier heads with different N share one ``N_max`` layer whose
coefficients ``a_j, j > N`` are masked to zero, which gives exactly an N-frequency head
(see :func:`paperlab.fourier_head.fourier.fourier_density`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperlab.fourier_head.fourier import (
    INIT_DENOMINATOR,
    bin_centers,
    fourier_density,
    frequency_energy,
    log_pmf,
)
from paperlab.fourier_head.gmm import gmm_logits, inverse_softplus


@dataclass(frozen=True)
class Member:
    """One model of the sweep.

    Attributes:
        group: index of its data stream (one per dataset and seed).
        head: ``"linear"``, ``"fourier"`` or ``"gmm"``.
        frequencies: N for a Fourier head (0 otherwise).
        gamma: regulariser weight for a Fourier head.
        gaussians: K for a GMM head (0 otherwise).
    """

    group: int
    head: str
    frequencies: int = 0
    gamma: float = 0.0
    gaussians: int = 0


def _uniform(shape: Sequence[int], fan_in: int, scale: float = 1.0) -> nn.Parameter:
    """nn.Linear's default init U(-1/sqrt(fan_in), 1/sqrt(fan_in)), optionally shrunk."""
    bound = 1 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound) / scale)


class _Stack(nn.Module):
    """A stack of E independent linear layers: ``(E, B, d_in) -> (E, B, d_out)``."""

    def __init__(self, members: int, d_in: int, d_out: int, scale: float = 1.0):
        super().__init__()
        self.weight = _uniform((members, d_in, d_out), d_in, scale)
        self.bias = _uniform((members, 1, d_out), d_in, scale)

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class ToyEnsemble(nn.Module):
    """All members' MLPs and heads; members are ordered linear, Fourier, GMM.

    Args:
        members: the models to train (see :class:`Member`).
        num_bins: bins on ``[-1, 1]`` (50 in the paper).
        dim_in, hidden: input size and MLP widths (paper: 2 and (64, 32)).
    """

    def __init__(self, members: Sequence[Member], num_bins: int = 50, dim_in: int = 2,
                 hidden: tuple[int, int] = (64, 32)):
        super().__init__()
        order = {"linear": 0, "fourier": 1, "gmm": 2}
        unknown = {m.head for m in members} - set(order)
        if unknown:
            raise ValueError(f"unknown head kinds {sorted(unknown)}")
        self.members = sorted(members, key=lambda m: order[m.head])
        kinds = [m.head for m in self.members]
        self.n_linear, self.n_fourier = kinds.count("linear"), kinds.count("fourier")
        n, d = len(self.members), hidden[1]
        self.num_bins = num_bins
        self.register_buffer("group", torch.tensor([m.group for m in self.members]))
        self.trunk = nn.ModuleList([_Stack(n, dim_in, hidden[0]), _Stack(n, hidden[0], d)])
        self.linear = _Stack(self.n_linear, d, num_bins)
        fourier = self.members[self.n_linear:self.n_linear + self.n_fourier]
        n_max = max((m.frequencies for m in fourier), default=1)
        self.fourier = _Stack(self.n_fourier, d, 2 * (n_max + 1), scale=INIT_DENOMINATOR)
        keep = torch.tensor([[float(j <= m.frequencies) for j in range(n_max + 1)]
                             for m in fourier]).reshape(-1, n_max + 1)
        self.register_buffer("coef_mask", torch.cat([keep, keep], dim=1)[:, None, :])
        self.register_buffer("gamma", torch.tensor([m.gamma for m in fourier]))
        gmms = self.members[self.n_linear + self.n_fourier:]
        k_max = max((m.gaussians for m in gmms), default=1)
        self.gmm = _Stack(len(gmms), d, k_max)
        self.gmm_raw_std = nn.Parameter(torch.full((len(gmms), 1, k_max),
                                                   inverse_softplus(2.0 / num_bins)))
        weights = torch.tensor([[float(k < m.gaussians) / m.gaussians for k in range(k_max)]
                                for m in gmms]).reshape(-1, 1, k_max)
        self.register_buffer("gmm_weights", weights)
        self.register_buffer("centers", bin_centers(num_bins))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Inputs ``(E, B, dim_in)`` -> (logits ``(E, B, m)``, regulariser per member ``(E,)``)."""
        h = x
        for layer in self.trunk:
            h = torch.relu(layer(h))
        a, b = self.n_linear, self.n_linear + self.n_fourier
        logits = [self.linear(h[:a])]
        reg = x.new_zeros(len(self.members))
        if self.n_fourier:
            dist, c_re, c_im = fourier_density(self.fourier(h[a:b]) * self.coef_mask)
            logits.append(log_pmf(dist, self.num_bins))
            reg = reg.index_put((torch.arange(a, b),),
                                self.gamma * 2 * frequency_energy(c_re, c_im).mean(-1))
        if b < len(self.members):
            means = torch.tanh(self.gmm(h[b:]))
            logits.append(gmm_logits(means, F.softplus(self.gmm_raw_std), self.centers,
                                     self.gmm_weights))
        return torch.cat(logits), reg


def train(model: ToyEnsemble, x_train: Tensor, z_train: Tensor, epochs: int,
          batch_size: int = 32, lr: float = 1e-3, generator: torch.Generator | None = None,
          progress=None) -> list[float]:
    """Adam on every member at once; returns the mean training loss per epoch.

    Args:
        x_train: ``(G, n, dim_in)`` inputs of each data group; ``z_train``: ``(G, n)`` bins.
        progress: optional wrapper over the epoch range (e.g. a progress bar).
    """
    groups, n = z_train.shape
    opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)  # not fused: see top
    epoch_range = range(epochs) if progress is None else progress(range(epochs))
    losses = []
    rows = torch.arange(groups)[:, None]
    for _ in epoch_range:
        order = torch.argsort(torch.rand(groups, n, generator=generator), dim=1)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[:, start:start + batch_size]
            xb, zb = x_train[rows, idx][model.group], z_train[rows, idx][model.group]
            logits, reg = model(xb)
            ce = F.cross_entropy(logits.flatten(0, 1), zb.flatten(), reduction="none")
            loss = (ce.view_as(zb).mean(1) + reg).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        losses.append(total / math.ceil(n / batch_size) / len(model.members))
    return losses


@torch.no_grad()
def predict(model: ToyEnsemble, x: Tensor) -> Tensor:
    """Predicted pmfs ``(E, n, m)`` (softmax of the logits) for group inputs ``x (G, n, d)``."""
    logits, _ = model(x[model.group])
    return torch.softmax(logits, dim=-1)
