"""The Fourier head (Gillman et al., ICLR 2025): an output layer whose outputs are a smooth density.

A linear layer maps a feature vector to N+1 complex numbers ``a_0..a_N``. Their autocorrelation
``c_k = sum_j a_{j+k} conj(a_j)`` is, by the Fejér–Riesz theorem, the Fourier series of the
non-negative function ``|sum_j a_j exp(i pi j t)|^2`` on ``t in [-1, 1]``; dividing by ``2 Re c_0``
makes it a probability density::

    p(t) = 1/2 + Re sum_{k=1..N} (c_k / Re c_0) exp(i pi k t)        (>= 0, integrates to 1)

The classification head evaluates ``p`` at the centres of ``m`` equal bins and normalises, so it
can replace the final ``nn.Linear`` of any classifier over ordered bins; the MLE head evaluates
``p`` at a continuous target. Everything is real arithmetic (cos/sin matrices and real matmuls): no
complex ``conv1d`` (missing from older torch), so it runs on every supported torch,
on CPU and GPU, and under ``gradcheck``.

The user's value range ``[lo, hi]`` is mapped affinely onto ``t in [-1, 1]``; densities in value
units are ``p(t) * 2 / (hi - lo)``.
"""

from __future__ import annotations

import math
from numbers import Integral

import torch
from torch import Tensor, nn

# The reference adds this before the log so that an empty bin costs a finite loss.
LOG_EPS = 1e-5
# The reference divides the default nn.Linear init by 100: near-uniform densities at the start.
INIT_DENOMINATOR = 100.0


def autocorrelation(a_re: Tensor, a_im: Tensor) -> tuple[Tensor, Tensor]:
    """``c_k = sum_j a_{j+k} conj(a_j)`` for ``k = 0..N``, in real arithmetic.

    ``c`` are the Fourier coefficients of ``|A(t)|^2`` where ``A(t) = sum_j a_j exp(i pi j t)``.
    We evaluate ``|A|^2`` on ``M = 2(N+1)`` equispaced points of its period and project back
    with a real DFT matrix; ``|A|^2`` has frequencies ``-N..N`` and ``M > 2N``, so the
    projection is exact (no aliasing). Two small matmuls per row, fast on CPU and GPU, and
    free of complex ``conv1d``.

    Args:
        a_re: real parts of ``a``, shape ``(..., N+1)``.
        a_im: imaginary parts of ``a``, shape ``(..., N+1)``.

    Returns:
        ``(c_re, c_im)``, each ``(..., N+1)``; ``c_re[..., 0] = sum |a_j|^2 >= 0``.
    """
    _check_pair(a_re, a_im, "a_re", "a_im")
    length = a_re.shape[-1]
    grid = 2 * length
    t = torch.arange(grid, device=a_re.device, dtype=a_re.dtype) * (2.0 / grid) - 1
    angles = math.pi * torch.arange(length, device=a_re.device, dtype=a_re.dtype)[:, None] * t
    cos, sin = torch.cos(angles), torch.sin(angles)  # (N+1, M)
    # [Re A, Im A] = [u, v] @ [[cos, sin], [-sin, cos]]
    synthesis = torch.cat([torch.cat([cos, sin], 1), torch.cat([-sin, cos], 1)], 0)
    values = torch.cat([a_re, a_im], -1) @ synthesis
    power = values[..., :grid] ** 2 + values[..., grid:] ** 2  # |A(t_s)|^2, (..., M)
    # c_k = (1/M) sum_s |A(t_s)|^2 exp(-i pi k t_s)
    coef = power @ torch.cat([cos.T, -sin.T], 1) / grid
    return coef[..., :length], coef[..., length:]


def _check_pair(re: Tensor, im: Tensor, re_name: str, im_name: str) -> None:
    """``ValueError`` unless the real and imaginary parts are float tensors of one shape
    ``(..., L)`` with ``L >= 1``."""
    for name, t in ((re_name, re), (im_name, im)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a float tensor, got {type(t).__name__} "
                            f"{getattr(t, 'dtype', '')}")
    if re.shape != im.shape or re.dim() < 1 or re.shape[-1] < 1:
        raise ValueError(f"{re_name} and {im_name} must share a shape (..., L) with L >= 1, "
                         f"got {tuple(re.shape)} and {tuple(im.shape)}")


def frequency_energy(c_re: Tensor, c_im: Tensor) -> Tensor:
    """``sum_k 2 pi^2 k^2 |c_k|^2`` per row: ``(..., N+1)`` -> ``(...)`` (unnormalised c)."""
    _check_pair(c_re, c_im, "c_re", "c_im")
    k = torch.arange(c_re.shape[-1], device=c_re.device, dtype=c_re.dtype)
    return (2 * math.pi**2 * k**2 * (c_re**2 + c_im**2)).sum(-1)


def regularization(c_re: Tensor, c_im: Tensor) -> Tensor:
    """The paper's smoothness penalty ``2 * mean_batch sum_k 2 pi^2 k^2 |c_k|^2`` (unnormalised c).

    Args:
        c_re: real parts of the autocorrelation coefficients ``(..., N+1)`` from
            :func:`autocorrelation`.
        c_im: their imaginary parts.

    Returns:
        A scalar; multiply by gamma (1e-6 in the paper) and add to the loss.
    """
    return 2 * frequency_energy(c_re, c_im).mean()


def bin_centers(num_bins: int, lo: float = -1.0, hi: float = 1.0) -> Tensor:
    """Centres of ``num_bins`` equal bins on ``[lo, hi]`` (edges ``linspace(lo, hi, m+1)``)."""
    _check_count("num_bins", num_bins, 1)
    _check_range((lo, hi))
    edges = torch.linspace(lo, hi, num_bins + 1, dtype=torch.float64)
    return ((edges[:-1] + edges[1:]) / 2).float()


class FourierDensity:
    """A batch of Fourier-series densities on ``[lo, hi]``.

    Args:
        coef_re: real parts of the normalised coefficients ``c_k / Re c_0`` for
            ``k = 1..N``, ``(..., N)``.
        coef_im: their imaginary parts, ``(..., N)``.
        value_range: ``(lo, hi)`` the densities live on.

    Every method broadcasts over the batch shape ``...``. Points ``x`` are either one shared
    grid ``(K,)`` or one grid per distribution ``(..., K)``.
    """

    def __init__(self, coef_re: Tensor, coef_im: Tensor, value_range: tuple[float, float]):
        self.coef_re, self.coef_im = coef_re, coef_im
        self.lo, self.hi = float(value_range[0]), float(value_range[1])
        self.freqs = math.pi * torch.arange(1, coef_re.shape[-1] + 1, device=coef_re.device,
                                            dtype=coef_re.dtype)

    @property
    def batch_shape(self) -> torch.Size:
        return self.coef_re.shape[:-1]

    def _to_unit(self, x: Tensor, what: str) -> Tensor:
        """Validate ``x`` (finite, inside the range, shape) and map it to ``t in [-1, 1]``."""
        x = torch.as_tensor(x, dtype=self.coef_re.dtype, device=self.coef_re.device)
        if x.dim() == 0:
            raise ValueError(f"{what}: x must have at least one dimension, got a scalar")
        if not torch.isfinite(x).all():
            raise ValueError(f"{what}: x contains NaN or infinite values")
        if (x < self.lo).any() or (x > self.hi).any():
            raise ValueError(f"{what}: x has values outside the value range [{self.lo}, "
                             f"{self.hi}] (min {x.min().item():.4g}, max {x.max().item():.4g})")
        if x.dim() > 1 and x.shape[:-1] != self.batch_shape:
            raise ValueError(f"{what}: x of shape {tuple(x.shape)} must be (K,) or "
                             f"{tuple(self.batch_shape)} + (K,)")
        return 2 * (x - self.lo) / (self.hi - self.lo) - 1

    def _series(self, t: Tensor, cos_coef: Tensor, sin_coef: Tensor) -> Tensor:
        """``sum_k cos_coef_k cos(pi k t) + sin_coef_k sin(pi k t)`` at the points ``t``."""
        angles = t[..., None] * self.freqs  # (K, N) or (..., K, N)
        if t.dim() == 1:  # a shared grid: two matmuls, no (..., K, N) temporary
            return cos_coef @ torch.cos(angles).T + sin_coef @ torch.sin(angles).T
        return (torch.cos(angles) * cos_coef[..., None, :]
                + torch.sin(angles) * sin_coef[..., None, :]).sum(-1)

    def unit_pdf(self, t: Tensor) -> Tensor:
        """The density on ``[-1, 1]`` at unit points ``t`` (no validation)."""
        return 0.5 + self._series(t, self.coef_re, -self.coef_im)

    def pdf(self, x: Tensor) -> Tensor:
        """Density at ``x`` in value units: ``(K,)`` or ``(..., K)`` -> ``(..., K)``."""
        return self.unit_pdf(self._to_unit(x, "pdf")) * 2 / (self.hi - self.lo)

    def log_prob(self, x: Tensor) -> Tensor:
        """``log pdf(x)``; the density is >= 0 exactly but may round to 0, so it is floored."""
        return torch.log(self.pdf(x).clamp_min(torch.finfo(self.coef_re.dtype).tiny))

    def _unit_cdf(self, t: Tensor) -> Tensor:
        # int_{-1}^{t} of cos(pi k s) is sin(pi k t)/(pi k); of -sin(pi k s) it is
        # (cos(pi k t) - (-1)^k)/(pi k).
        sign = torch.cos(self.freqs)  # (-1)^k
        offset = (self.coef_im * sign / self.freqs).sum(-1, keepdim=True)
        series = self._series(t, self.coef_im / self.freqs, self.coef_re / self.freqs)
        return (t + 1) / 2 + series - offset

    def cdf(self, x: Tensor) -> Tensor:
        """Closed-form ``P(X <= x)``: ``(K,)`` or ``(..., K)`` -> ``(..., K)``."""
        return self._unit_cdf(self._to_unit(x, "cdf")).clamp(0.0, 1.0)

    def pmf(self, num_bins: int) -> Tensor:
        """Density at ``num_bins`` bin centres, normalised to sum to 1: ``(..., num_bins)``."""
        t = bin_centers(num_bins).to(self.coef_re)
        density = self.unit_pdf(t)
        return density / density.sum(-1, keepdim=True)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               iterations: int = 48) -> Tensor:
        """``n`` draws per distribution by inverse-CDF bisection: ``(..., n)`` in value units.

        48 halvings of ``[-1, 1]`` resolve a point to ``2^-47``, below float64 resolution.
        """
        if not isinstance(n, Integral) or n < 1:
            raise ValueError(f"sample: n must be an integer >= 1, got {n!r}")
        shape = (*self.batch_shape, n)
        u = torch.rand(shape, generator=generator, dtype=self.coef_re.dtype,
                       device=self.coef_re.device)
        lower = torch.full_like(u, -1.0)
        upper = torch.ones_like(u)
        for _ in range(iterations):
            mid = (lower + upper) / 2
            below = self._unit_cdf(mid) < u
            lower = torch.where(below, mid, lower)
            upper = torch.where(below, upper, mid)
        t = (lower + upper) / 2
        return self.lo + (t + 1) * (self.hi - self.lo) / 2


def fourier_density(params: Tensor, value_range: tuple[float, float] = (-1.0, 1.0)
                    ) -> tuple[FourierDensity, Tensor, Tensor]:
    """Densities from raw layer outputs ``(..., 2(N+1))`` (real parts, then imaginary parts).

    Returns ``(density, c_re, c_im)`` with the unnormalised autocorrelation for the regulariser.
    Zeroing ``a_j`` for ``j > n`` gives exactly the density of a head with ``n`` frequencies.
    """
    n1 = params.shape[-1] // 2
    c_re, c_im = autocorrelation(params[..., :n1], params[..., n1:])
    # Re c_0 = sum |a_j|^2 > 0 unless every a_j is exactly 0 (a degenerate layer).
    c0 = c_re[..., :1]
    return FourierDensity(c_re[..., 1:] / c0, c_im[..., 1:] / c0, value_range), c_re, c_im


def log_pmf(density: FourierDensity, num_bins: int) -> Tensor:
    """``log((pmf + eps) / (1 + m eps))`` over ``num_bins`` bins: ``(..., num_bins)``.

    The reference returns ``log(pmf + eps)`` as logits; dividing by ``1 + m eps`` makes it a
    normalised log-pmf with the same softmax, so cross-entropy is unchanged.
    """
    return torch.log(density.pmf(num_bins) + LOG_EPS) - math.log1p(num_bins * LOG_EPS)


def _check_count(name: str, value: int, low: int) -> None:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_range(value_range: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in value_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"value_range must be finite with lo < hi, got {value_range}")
    return lo, hi


def _check_features(h: Tensor, dim_in: int) -> None:
    if not isinstance(h, Tensor) or not h.is_floating_point():
        raise TypeError(f"features must be a float tensor (..., {dim_in}), got "
                        f"{type(h).__name__} {getattr(h, 'dtype', '')}")
    if h.dim() < 1 or h.shape[-1] != dim_in:
        raise ValueError(f"expected features of shape (..., {dim_in}), got {tuple(h.shape)}")
    if not torch.isfinite(h).all():
        raise ValueError("features contain NaN or infinite values")


class _FourierLayer(nn.Module):
    """What both heads share: the coefficient layer, the density, the regulariser."""

    def __init__(self, dim_in: int, num_frequencies: int, regularization_gamma: float = 1e-6,
                 value_range: tuple[float, float] = (-1.0, 1.0)):
        super().__init__()
        _check_count("dim_in", dim_in, 1)
        _check_count("num_frequencies", num_frequencies, 1)
        if not (math.isfinite(regularization_gamma) and regularization_gamma >= 0):
            raise ValueError(f"regularization_gamma must be a finite number >= 0, got "
                             f"{regularization_gamma}")
        lo, hi = _check_range(value_range)
        self.dim_in, self.num_frequencies = dim_in, num_frequencies
        self.regularization_gamma = float(regularization_gamma)
        self.value_range = (lo, hi)
        self.coefficients = nn.Linear(dim_in, 2 * (num_frequencies + 1))
        with torch.no_grad():
            self.coefficients.weight /= INIT_DENOMINATOR
            self.coefficients.bias /= INIT_DENOMINATOR
        self._last: tuple[FourierDensity, Tensor] | None = None

    def density(self, h: Tensor) -> FourierDensity:
        """The densities for features ``h`` of shape ``(..., dim_in)``; remembers them (and the
        regulariser) for :meth:`pdf`, :meth:`cdf`, :meth:`sample`, :meth:`regularization_loss`."""
        _check_features(h, self.dim_in)
        dist, c_re, c_im = fourier_density(self.coefficients(h), self.value_range)
        self._last = (dist, regularization(c_re, c_im))
        return dist

    def _remembered(self) -> tuple[FourierDensity, Tensor]:
        if self._last is None:
            raise RuntimeError("call the head on a batch of features before pdf/cdf/sample/"
                               "regularization_loss: they describe the last forward pass")
        return self._last

    def regularization_loss(self) -> Tensor:
        """``gamma * 2 * mean_batch sum_k 2 pi^2 k^2 |c_k|^2`` of the last forward pass."""
        return self.regularization_gamma * self._remembered()[1]

    def pdf(self, x: Tensor) -> Tensor:
        """Density (value units) of the last forward's distributions at ``x``: ``(..., K)``."""
        return self._remembered()[0].pdf(x)

    def cdf(self, x: Tensor) -> Tensor:
        """CDF of the last forward's distributions at ``x``: ``(..., K)``."""
        return self._remembered()[0].cdf(x)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples from each of the last forward's distributions: ``(..., n)``."""
        return self._remembered()[0].sample(n, generator=generator)

    def extra_repr(self) -> str:
        return (f"dim_in={self.dim_in}, num_frequencies={self.num_frequencies}, "
                f"regularization_gamma={self.regularization_gamma}, "
                f"value_range={self.value_range}")


class FourierHead(_FourierLayer):
    """Drop-in replacement for ``nn.Linear(dim_in, num_bins)`` over ordered bins.

    Args:
        dim_in: feature size.
        num_bins: number of equal bins ``m`` on ``value_range`` (>= 2).
        num_frequencies: ``N``, the number of Fourier frequencies (>= 1).
        regularization_gamma: weight of :meth:`regularization_loss` (paper: 1e-6).
        value_range: ``(lo, hi)`` covered by the bins.

    ``forward(h)`` maps ``(..., dim_in)`` to a log-pmf ``(..., num_bins)`` (it sums to 1 after
    ``exp``), so ``F.cross_entropy(head(h), target_bins)`` or ``F.nll_loss`` applies. Add
    ``head.regularization_loss()`` to the loss.

    Example::

        head = FourierHead(32, num_bins=50, num_frequencies=12)
        loss = F.cross_entropy(head(h), bins) + head.regularization_loss()
    """

    def __init__(self, dim_in: int, num_bins: int, num_frequencies: int,
                 regularization_gamma: float = 1e-6,
                 value_range: tuple[float, float] = (-1.0, 1.0)):
        _check_count("num_bins", num_bins, 2)
        super().__init__(dim_in, num_frequencies, regularization_gamma, value_range)
        self.num_bins = num_bins

    def forward(self, h: Tensor) -> Tensor:
        """Log-pmf over the bins, ``(..., num_bins)`` (see :func:`log_pmf`)."""
        return log_pmf(self.density(h), self.num_bins)

    def extra_repr(self) -> str:
        return f"num_bins={self.num_bins}, " + super().extra_repr()


class FourierHeadMLE(_FourierLayer):
    """The continuous variant, trained by maximum likelihood on real-valued targets.

    Args:
        dim_in: as in :class:`FourierHead`.
        num_frequencies: as in :class:`FourierHead`.
        regularization_gamma: as in :class:`FourierHead`.
        value_range: as in :class:`FourierHead`.

    ``forward(h)`` returns the :class:`FourierDensity` for ``h`` of shape ``(..., dim_in)``;
    ``nll(h, y)`` is the mean negative log-density (value units) of targets ``y`` shaped like
    ``h.shape[:-1]``; sample with ``head.sample(n)`` or ``head(h).sample(n)``.
    """

    def forward(self, h: Tensor) -> FourierDensity:
        return self.density(h)

    def nll(self, h: Tensor, y: Tensor) -> Tensor:
        """Mean ``-log p(y | h)`` over the batch (add :meth:`regularization_loss` to train)."""
        dist = self.density(h)
        y = torch.as_tensor(y, dtype=dist.coef_re.dtype, device=dist.coef_re.device)
        if y.shape != dist.batch_shape:
            raise ValueError(f"targets of shape {tuple(y.shape)} must match the batch shape "
                             f"{tuple(dist.batch_shape)}")
        return -dist.log_prob(y[..., None]).mean()
