"""CPU torch tensors through the C kernels: zero-copy views, autograd, an nn.Module.

``TwoPassSoftmax(dim)`` stands in for ``torch.nn.Softmax(dim)`` (or ``LogSoftmax`` with
``log=True``) in a model: the forward pass runs the two-pass kernel, the backward pass is
the usual closed form from the saved output.
"""

from __future__ import annotations

import torch

from paperlab.softmax.twopass import check_options, softmax_numpy

_DTYPES = (torch.float32, torch.float64)


def _check_tensor(t: torch.Tensor, what: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"paperlab.softmax runs on CPU tensors; {what} is on {t.device}")
    if t.dtype not in _DTYPES:
        raise TypeError(f"softmax needs float32 or float64 tensors, {what} is {t.dtype}")


def _forward(x: torch.Tensor, dim: int, out, algorithm: str, threads, log: bool):
    x_np = x.detach().resolve_conj().resolve_neg().numpy()  # a view, strides and all
    if out is None:
        return torch.from_numpy(softmax_numpy(x_np, dim, None, algorithm, threads, log))
    _check_tensor(out, "out")
    if out.requires_grad:
        raise ValueError("out= cannot be a tensor that requires grad")
    softmax_numpy(x_np, dim, out.numpy(), algorithm, threads, log)
    return out


class SoftmaxFunction(torch.autograd.Function):
    """Autograd for the C softmax: ``dx = y * (g - sum(g * y))``; log-softmax:
    ``dx = g - exp(y) * sum(g)``."""

    @staticmethod
    def forward(ctx, x, dim, algorithm, threads, log):
        y = _forward(x, dim, None, algorithm, threads, log)
        ctx.save_for_backward(y)
        ctx.dim, ctx.log = dim, log
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if ctx.log:
            grad_x = grad - torch.exp(y) * grad.sum(ctx.dim, keepdim=True)
        else:
            grad_x = y * (grad - (grad * y).sum(ctx.dim, keepdim=True))
        return grad_x, None, None, None, None


def apply(x: torch.Tensor, dim: int, out, algorithm: str, threads, log: bool) -> torch.Tensor:
    """softmax / log_softmax of a CPU tensor; through autograd when x requires grad."""
    _check_tensor(x, "x")
    if x.requires_grad and torch.is_grad_enabled():
        if out is not None:
            raise ValueError("out= is not supported for a tensor that requires grad")
        return SoftmaxFunction.apply(x, dim, algorithm, threads, log)
    return _forward(x, dim, out, algorithm, threads, log)


class TwoPassSoftmax(torch.nn.Module):
    """Softmax over ``dim`` by the two-pass C kernel; a stand-in for ``nn.Softmax(dim)``.

    Args:
        dim: dimension normalised over (default -1).
        algorithm: see :data:`paperlab.softmax.ALGORITHMS` (default ``"two_pass"``).
        threads: worker threads (default: automatic, see :func:`paperlab.softmax.softmax`).
        log: compute log-softmax instead (a stand-in for ``nn.LogSoftmax``).

    Input: a float32/float64 CPU tensor of any shape; output: the same shape.
    """

    def __init__(
        self, dim: int = -1, algorithm: str = "two_pass", threads: int | None = None,
        log: bool = False,
    ) -> None:
        super().__init__()
        check_options(algorithm, threads, dim)  # not at the first forward, deep in a model
        self.dim, self.algorithm, self.threads, self.log = dim, algorithm, threads, log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply(x, self.dim, None, self.algorithm, self.threads, self.log)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, algorithm={self.algorithm!r}, log={self.log}"
