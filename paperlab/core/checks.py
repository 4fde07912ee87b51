"""Plain-number checks for public entry points: a Python, NumPy or 0-d array/tensor scalar in, a
Python ``float`` or ``int`` out, or an error that names the argument, what it expects and what
came.

    keep_ratio = checks.real(keep_ratio, "keep_ratio", low=0, high=1, low_open=True)
    epochs = checks.integer(epochs, "epochs", low=1)

``0.9``, ``np.float32(0.9)`` and ``torch.tensor(0.9)`` are all accepted and become ``0.9``; a
``bool`` is not a number here (``True`` for a ratio is a mistake, not ``1.0``). No torch is
imported: a 0-d tensor or array is recognised by ``ndim == 0`` and read with ``.item()``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def describe(value: Any) -> str:
    """What came, for an error message: ``"a Tensor of shape (3, 32)"`` for an array or
    tensor with axes, else its (shortened) repr and type, ``"'0.5' (str)"``."""
    shape = getattr(value, "shape", None)
    if shape is not None and getattr(value, "ndim", 0) != 0:
        return f"a {type(value).__name__} of shape {tuple(shape)}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _scalar(value: Any) -> Any:
    """A NumPy scalar or a 0-d array/tensor as the Python number it holds; anything else as
    it is."""
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        return value.item()
    return value


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    return f"{'<' if high_open else '<='} {high}"


def _check_range(value: float, name: str, low: float | None, high: float | None,
                 low_open: bool, high_open: bool) -> None:
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        raise ValueError(f"{name} must be {_bounds(low, high, low_open, high_open)}, "
                         f"got {value}")


def real(value: Any, name: str, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite Python ``float`` within the bounds (closed unless ``*_open``).

    Raises:
        TypeError: not a real number (a string, a bool, a tensor with axes, ``None``, ...).
        ValueError: NaN or infinite, or outside the bounds (the message gives the range).
    """
    number = _scalar(value)
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    try:
        number = float(number)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {number}")
    _check_range(number, name, low, high, low_open, high_open)
    return number


def integer(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as a Python ``int`` within ``[low, high]`` (a float, even ``2.0``, is not an
    integer here: a count given as a float is usually a computed ratio that was not rounded).

    Raises:
        TypeError: not an integer (a float, a bool, a string, ``None``, ...).
        ValueError: outside the bounds (the message gives the range).
    """
    number = _scalar(value)
    if isinstance(number, bool) or not isinstance(number, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {describe(value)}")
    number = int(number)
    _check_range(number, name, low, high, False, False)
    return number
