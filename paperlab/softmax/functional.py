"""``softmax`` and ``log_softmax`` for NumPy arrays and CPU torch tensors.

Arrays go to the kernels' driver (:mod:`paperlab.softmax.twopass`), tensors through
:mod:`paperlab.softmax.torch_op` (imported only when a tensor comes in), which itself calls
the driver: the dependencies run one way, and importing this module imports no torch.
"""

from __future__ import annotations

from typing import Any

from paperlab.softmax.twopass import check_options, softmax_numpy


def softmax(
    x: Any,
    axis: int = -1,
    out: Any = None,
    algorithm: str = "two_pass",
    threads: int | None = None,
) -> Any:
    """``exp(x) / sum(exp(x))`` along ``axis``.

    Args:
        x: float32 or float64 NumPy array (any shape, any strides) or CPU torch tensor.
            A tensor that requires grad goes through the autograd wrapper.
        axis: the axis normalised over (default the last).
        out: optional array/tensor of x's shape and dtype to write into; may be ``x``
            itself. Preallocating it avoids the page faults of a fresh large array.
        algorithm: ``"two_pass"`` (default), ``"three_pass_recompute"``,
            ``"three_pass_reload"`` or ``"online"``; all give the same result.
        threads: worker threads (default: all CPUs from ``PARALLEL_MIN`` elements up,
            else 1). Rows are split between threads; with fewer rows than threads a
            two-pass row is split into blocks whose partial sums are combined.

    Returns:
        An array (tensor for a tensor input) of x's shape. Without ``out`` the result is
        contiguous along ``axis``, so for ``axis`` other than the last it is a strided view.

    A NaN or +inf in a slice makes that slice NaN; a slice of only -inf is NaN; a -inf
    element gives 0 (as ``torch.softmax`` and ``scipy.special.softmax``).
    """
    return _dispatch(x, axis, out, algorithm, threads, log=False)


def log_softmax(
    x: Any,
    axis: int = -1,
    out: Any = None,
    algorithm: str = "two_pass",
    threads: int | None = None,
) -> Any:
    """``x - log(sum(exp(x)))`` along ``axis``; arguments as :func:`softmax`."""
    return _dispatch(x, axis, out, algorithm, threads, log=True)


def _dispatch(x: Any, axis: int, out: Any, algorithm: str, threads: int | None, log: bool):
    check_options(algorithm, threads, axis)
    if type(x).__module__.startswith("torch"):
        from paperlab.softmax import torch_op  # torch only when a tensor comes in

        return torch_op.apply(x, axis, out, algorithm, threads, log)
    return softmax_numpy(x, axis, out, algorithm, threads, log)
