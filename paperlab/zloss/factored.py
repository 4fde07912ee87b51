"""The exact factored output layer: SGD on ``D x d`` weights in O(d^2) per example.

Vincent, de Brebisson & Bouthillier (NeurIPS 2015) showed that for a *spherical* loss
(one that sees the logits ``o = W h`` only through ``s = sum(o)``, ``q = sum(o**2)`` and the
target logit ``o_c``) the loss, the gradient for ``h`` and the SGD update of ``W`` never
need the ``D`` logits. We keep

    W = V U + 1 r^T        V: D x d,  U: d x d (and U^-1),  r: d
    Q = W^T W  (d x d),    w_bar = W^T 1  (d)

so that ``s = w_bar . h``, ``q = h^T Q h`` and ``o_c = W_c . h`` with ``W_c = V_c U + r``.
The gradient of a spherical loss w.r.t. ``o`` is ``g = alpha 1 + beta o + gamma e_c`` with
``alpha = dL/ds``, ``beta = 2 dL/dq``, ``gamma = dL/do_c`` (three scalars, got here by
autograd through the loss's formula on ``(s, q, o_c)``), so

    grad_h = W^T g = alpha w_bar + beta Q h + gamma W_c^T

and the SGD step ``W <- W - eta sum_i g_i h_i^T`` over a minibatch (rows ``h_i`` of ``H``) is

    W' = W A - eta E H,   A = I - eta H^T diag(beta) H   (d x d, symmetric, rank-m update)
                          E = 1 alpha^T + Gamma,         Gamma[c_i, i] = gamma_i (sparse)

which is applied without touching more than ``m`` rows of V:
``U <- U A`` and ``U^-1 <- A^-1 U^-1`` (Woodbury), ``r <- A r - eta H^T alpha``,
``V[c_i] -= eta gamma_i h_i^T U'^-1``, and ``Q``, ``w_bar`` by their closed-form rank-m updates.
All of it costs O(m d^2 + m^2 d + m^3); nothing scales with D.

The ``alpha 1 h^T`` term (a shift of every row) is kept in ``r`` rather than dropped: a
shift-invariant loss such as the Z-loss would not notice it, but keeping it makes the
implicit ``W`` equal plain SGD on the explicit ``W`` exactly, for every spherical loss.

Only plain SGD works this way (no momentum, Adam or weight decay on this layer).
Rounding errors accumulate in ``U^-1`` and ``Q``, and ``U`` drifts towards singular (each
``A`` shrinks the directions of recent ``h`` when ``beta > 0``, as for the Z-loss). So every
``stabilize_every`` updates :meth:`SphericalOutputLayer.stabilize` recomputes ``U^-1`` by
inversion (O(d^3)) and, when the condition number of ``U`` exceeds ``max_condition``,
:meth:`refresh` folds ``U`` into ``V`` and recomputes ``Q`` exactly (O(D d^2)).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperlab.zloss.losses import (
    SphericalLoss,
    check_features,
    check_k,
    check_layer_size,
    check_targets,
    make_loss,
)


class SphericalOutputLayer(nn.Module):
    """A linear output layer ``o = W h`` (no bias; append a constant 1 to ``h`` for one)
    trained by exact SGD in O(d^2) per example for a spherical loss.

    Args:
        dim: ``d``, size of the last hidden layer.
        num_classes: ``D``, number of output classes.
        loss: a :class:`SphericalLoss` or its name for :func:`make_loss` (default ``"z"``).
        lr: SGD learning rate on the mean loss of a minibatch.
        stabilize_every: recompute ``U^-1`` by inversion every this many updates (0: never).
        max_condition: at those times, :meth:`refresh` (O(D d^2)) when ``cond(U)`` exceeds it.
        init_std: standard deviation of the initial weights (default ``1/sqrt(dim)``).
        dtype: float dtype of all state (float32 default; float64 for checks).
        generator: optional ``torch.Generator`` for the initial weights.
        **loss_params: passed to :func:`make_loss` when ``loss`` is a name (``a``, ``b``, ...).

    The state (buffers) is ``V`` ``(D, d)``, ``U``, ``U_inv``, ``Q`` ``(d, d)``, ``w_bar``,
    ``r`` ``(d,)``. ``weight`` materialises ``W`` (O(D d^2), for inspection only).
    """

    def __init__(self, dim: int, num_classes: int, loss: SphericalLoss | str = "z",
                 lr: float = 0.1, stabilize_every: int = 100, max_condition: float = 100.0,
                 init_std: float | None = None,
                 dtype: torch.dtype = torch.float32, generator: torch.Generator | None = None,
                 **loss_params: float) -> None:
        super().__init__()
        check_layer_size(dim, num_classes, lr)
        if stabilize_every < 0:
            raise ValueError(f"stabilize_every must be >= 0, got {stabilize_every}")
        self.loss_fn = make_loss(loss, **loss_params) if isinstance(loss, str) else loss
        self.dim, self.num_classes = dim, num_classes
        if not max_condition > 1:
            raise ValueError(f"max_condition must be > 1, got {max_condition}")
        self.lr, self.stabilize_every, self.max_condition = lr, stabilize_every, max_condition
        std = dim ** -0.5 if init_std is None else init_std
        V = torch.randn(num_classes, dim, dtype=dtype, generator=generator).mul_(std)
        eye = torch.eye(dim, dtype=dtype)
        self.register_buffer("V", V)
        self.register_buffer("U", eye.clone())
        self.register_buffer("U_inv", eye.clone())
        self.register_buffer("r", torch.zeros(dim, dtype=dtype))
        self.register_buffer("Q", V.T @ V)
        self.register_buffer("w_bar", V.sum(0))
        self.updates = 0
        self.refreshes = 0  # how often stabilize() had to fall back to the O(D d^2) refresh

    # ---- reading the implicit W --------------------------------------------------------
    @property
    def weight(self) -> Tensor:
        """The explicit ``W = V U + 1 r^T`` ``(D, d)``. O(D d^2): for tests and inspection."""
        return self.V @ self.U + self.r

    def rows(self, classes: Tensor) -> Tensor:
        """Rows ``W_c`` ``(m, d)`` for class indices ``classes`` ``(m,)``: O(m d^2)."""
        check_targets(classes, classes.shape[0] if classes.dim() else -1, self.num_classes)
        return self.V[classes] @ self.U + self.r

    def logits(self, h: Tensor) -> Tensor:
        """All ``D`` logits ``o = W h`` ``(N, D)`` for ``h`` ``(N, d)``: O(N D d)."""
        h = self._check_h(h)
        return (h @ self.U.T) @ self.V.T + (h @ self.r)[:, None]

    def topk(self, h: Tensor, k: int) -> Tensor:
        """The ``k`` best classes ``(N, k)`` by the loss's ranking score, best first: O(N D d)."""
        check_k(k, self.num_classes)
        return self.loss_fn.rank_score(self.logits(h)).topk(k, dim=1).indices

    # ---- the O(d^2) path -------------------------------------------------------------
    def stats(self, h: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(s, q, o_c, Qh, W_c)`` for ``h`` ``(m, d)`` and ``targets`` ``(m,)``: O(m d^2)."""
        h = self._check_h(h)
        check_targets(targets, h.shape[0], self.num_classes)
        W_c = self.rows(targets)
        Qh = h @ self.Q
        return h @ self.w_bar, (h * Qh).sum(1), (h * W_c).sum(1), Qh, W_c

    def loss(self, h: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        """The loss of ``h`` ``(m, d)`` for ``targets`` ``(m,)`` in O(m d^2); no update."""
        s, q, o_c, _, _ = self.stats(h, targets)
        return self.loss_fn.from_stats(s, q, o_c, self.num_classes, reduction)

    def log_prob(self, h: Tensor, targets: Tensor) -> Tensor:
        """``log p_c`` ``(m,)`` when the loss defines a distribution (else ``ValueError``)."""
        if self.loss_fn.log_prob is None:
            raise ValueError(f"loss {self.loss_fn.name} defines no probability")
        s, q, o_c, _, _ = self.stats(h, targets)
        return self.loss_fn.log_prob(s, q, o_c, self.num_classes)

    def _coefficients(self, s: Tensor, q: Tensor, o_c: Tensor) -> tuple[Tensor, ...]:
        """Per-example loss and ``(alpha, beta, gamma)`` of ``g = alpha 1 + beta o + gamma e_c``."""
        with torch.enable_grad():
            s, q, o_c = (t.detach().requires_grad_() for t in (s, q, o_c))
            per_example = self.loss_fn.per_example(s, q, o_c, self.num_classes)
            grads = torch.autograd.grad(per_example.sum(), (s, q, o_c), allow_unused=True,
                                        materialize_grads=True)
        d_s, d_q, d_oc = grads
        return per_example.detach(), d_s, 2 * d_q, d_oc

    @torch.no_grad()
    def step(self, h: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """One SGD step on the mean loss of a minibatch, in O(m d^2 + m^2 d + m^3).

        Args:
            h: last hidden layer ``(m, d)``.
            targets: class indices ``(m,)`` in ``[0, D)``.

        Returns:
            ``(loss, grad_h)``: the mean loss before the update (scalar) and its gradient
            w.r.t. ``h`` ``(m, d)``, to backpropagate into the network below
            (``h.backward(grad_h)``).
        """
        check_features(h, self.dim)
        h = h.detach()
        s, q, o_c, Qh, W_c = self.stats(h, targets)
        per_example, alpha, beta, gamma = self._coefficients(s, q, o_c)
        if not (torch.isfinite(alpha).all() and torch.isfinite(beta).all()
                and torch.isfinite(gamma).all()):
            raise FloatingPointError("non-finite loss gradient; lower the learning rate")
        m = h.shape[0]
        grad_h = (alpha[:, None] * self.w_bar + beta[:, None] * Qh + gamma[:, None] * W_c) / m
        self._update(h, targets, alpha, beta, gamma, Qh, W_c, self.lr / m)
        return per_example.mean(), grad_h

    def _update(self, H: Tensor, targets: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor,
                QH: Tensor, W_c: Tensor, eta: float) -> None:
        """Apply ``W <- W A - eta E H`` to the factored state (see the module docstring)."""
        D = self.num_classes
        BH = beta[:, None] * H                                  # diag(beta) H      (m, d)

        def times_A(X: Tensor) -> Tensor:                       # A X for X (d, k)
            return X - eta * BH.T @ (H @ X)

        # K = W^T E = w_bar alpha^T + W_c^T diag(gamma); E^T E from the sparsity of Gamma.
        K = self.w_bar[:, None] * alpha + W_c.T * gamma
        same = (targets[:, None] == targets[None, :]).to(H.dtype)
        EtE = (D * alpha[:, None] * alpha + alpha[:, None] * gamma + gamma[:, None] * alpha
               + same * gamma[:, None] * gamma)
        # Q' = A Q A - eta (A K H + H^T K^T A) + eta^2 H^T E^T E H, where (A = I - eta BH^T H)
        # A Q A = Q - eta (BH^T QH + QH^T BH) + eta^2 BH^T (H QH^T) BH. Grouped into two
        # (d, 2m) x (2m, d) products: 4 m d^2 flops for the whole Q update.
        cross = torch.cat([BH.T, times_A(K)], 1) @ torch.cat([QH, H], 0)
        square = torch.cat([BH.T, H.T], 1) @ torch.cat([(H @ QH.T) @ BH, EtE @ H], 0)
        Q_new = self.Q - eta * (cross + cross.T) + eta ** 2 * square
        self.Q.copy_((Q_new + Q_new.T) / 2)
        self.w_bar.copy_(times_A(self.w_bar[:, None]).squeeze(1) - eta * H.T @ (D * alpha + gamma))
        self.r.copy_(times_A(self.r[:, None]).squeeze(1) - eta * H.T @ alpha)
        # U <- U A;  U^-1 <- A^-1 U^-1 = U^-1 + eta H^T (I - eta B H H^T)^-1 B H U^-1 (Woodbury)
        self.U.sub_(eta * (self.U @ BH.T) @ H)
        system = torch.eye(H.shape[0], dtype=H.dtype) - eta * BH @ H.T
        self.U_inv.add_(eta * H.T @ torch.linalg.solve(system, BH @ self.U_inv))
        # The sparse part: V[c_i] -= eta gamma_i h_i^T U'^-1 (index_add sums repeated classes).
        self.V.index_add_(0, targets, (-eta * gamma[:, None] * H) @ self.U_inv)
        self.updates += 1
        if self.stabilize_every and self.updates % self.stabilize_every == 0:
            self.stabilize()

    @torch.no_grad()
    def stabilize(self) -> None:
        """Recompute ``U^-1`` by inversion (O(d^3)); :meth:`refresh` if ``U`` is ill-conditioned."""
        singular_values = torch.linalg.svdvals(self.U)
        if singular_values[0] > self.max_condition * singular_values[-1]:
            self.refresh()
            self.refreshes += 1
        else:
            self.U_inv.copy_(torch.linalg.inv(self.U))

    @torch.no_grad()
    def refresh(self) -> None:
        """Fold ``U`` and ``r`` into ``V`` and recompute ``Q``, ``w_bar`` exactly: O(D d^2)."""
        self.V.copy_(self.weight)
        self.U.copy_(torch.eye(self.dim, dtype=self.U.dtype))
        self.U_inv.copy_(self.U)
        self.r.zero_()
        self.Q.copy_(self.V.T @ self.V)
        self.w_bar.copy_(self.V.sum(0))

    def _check_h(self, h: Tensor) -> Tensor:
        check_features(h, self.dim)
        return h.to(self.V.dtype)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, num_classes={self.num_classes}, loss={self.loss_fn.name}, "
                f"lr={self.lr:g}, stabilize_every={self.stabilize_every}, "
                f"max_condition={self.max_condition:g}")
