"""Entropy coding parts of the Entropic Student: GDN, a factorized-prior entropy bottleneck whose
range coder (``constriction``) writes real bytes, and the bitstream container.

* :class:`GDN` -- generalized divisive normalization (Balle et al. 2016),
  ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)``; ``inverse=True`` multiplies instead (IGDN).
* :class:`EntropyBottleneck` -- the non-parametric factorized density of Balle et al. 2018 (one
  monotone cumulative per channel), additive uniform noise while training, median-centred rounding
  at test time, and an exact range coder over per-channel probability tables frozen by
  :meth:`~EntropyBottleneck.update`, which first finds each channel's median and tail quantiles
  by bisection on the learned cumulative (instead of the auxiliary loss, see the README).
  Offsets from the median beyond the table's support are coded as an escape symbol followed by
  the offset under a uniform model on ``[-32768, 32768)``, so every integer latent in that range
  round-trips exactly.
* :func:`pack` / :func:`unpack` -- the container: a 12-byte header (magic ``b"ES"``, version,
  latent shape ``N, C, H, W``, CRC-32 of header and payload) and the range coder's 32-bit words.
  Truncated or corrupted containers raise :class:`BitstreamError` (a ``ValueError``).
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MAGIC = b"ES"
VERSION = 1
HEADER = struct.Struct(">2sBHBBBI")  # magic, version, n, c, h, w, crc32 -> 12 bytes
ESCAPE_RANGE = 1 << 15
LIKELIHOOD_BOUND = 1e-9


class BitstreamError(ValueError):
    """A bitstream that is truncated, corrupted, or does not fit the model."""


def _inverse_softplus(x: torch.Tensor) -> torch.Tensor:
    return torch.log(torch.expm1(x))


class GDN(nn.Module):
    """GDN over ``channels`` (``inverse=True``: IGDN). Input and output ``(N, C, H, W)``.

    ``beta`` (init 1) and ``gamma`` (init ``0.1 I``) are kept positive by a softplus.
    """

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_raw = nn.Parameter(_inverse_softplus(torch.ones(channels)))
        gamma = 0.1 * torch.eye(channels) + 1e-6
        self.gamma_raw = nn.Parameter(_inverse_softplus(gamma))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = F.softplus(self.beta_raw)
        gamma = F.softplus(self.gamma_raw)
        norm = F.conv2d(x * x, gamma[:, :, None, None], beta).sqrt()
        return x * norm if self.inverse else x / norm


class EntropyBottleneck(nn.Module):
    """Factorized prior over ``channels`` latent channels.

    Args:
        channels: latent channels C.
        filters: hidden widths of each channel's cumulative network (Balle 2018: 3, 3, 3).
        init_scale: initial width of the density (and of the tail quantiles).
        tail_mass: probability mass outside the learned quantiles.
        max_support: cap on the table's half-width R (offsets ``-R..R`` from the median).

    ``forward(y)`` returns ``(y_tilde, likelihoods)``, both ``(N, C, H, W)``: noisy in training,
    median-rounded in eval (medians from the last :meth:`update`; 0 before).
    :meth:`compress` / :meth:`decompress` need :meth:`update` first.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3),
                 init_scale: float = 10.0, tail_mass: float = 1e-9,
                 max_support: int = 255) -> None:
        super().__init__()
        self.channels, self.tail_mass, self.max_support = channels, tail_mass, max_support
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[k + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[k + 1], dims[k]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[k + 1], 1) - 0.5))
            if k < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[k + 1], 1)))
        self.register_buffer("quantiles",
                             torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1))
        self.register_buffer("pmf", torch.zeros(0, dtype=torch.float64), persistent=True)

    # -- density ------------------------------------------------------------------------------

    def _logits_cumulative(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of each channel's cumulative at ``x`` ``(C, 1, M)`` -> ``(C, 1, M)``
        (monotone increasing in ``x``)."""
        logits = x
        for k, matrix in enumerate(self.matrices):
            logits = torch.matmul(F.softplus(matrix), logits) + self.biases[k]
            if k < len(self.factors):
                logits = logits + torch.tanh(self.factors[k]) * torch.tanh(logits)
        return logits

    @torch.no_grad()
    def fit_quantiles(self, bound: float = 1e6, steps: int = 64) -> None:
        """Set each channel's lower tail, median and upper tail (``tail_mass / 2`` beyond each
        tail) by bisection on the monotone cumulative -- what the auxiliary loss of Balle et al.
        converges to, exactly and in one call."""
        target = math.log(2 / self.tail_mass - 1)
        goal = torch.tensor([-target, 0.0, target]).expand(self.channels, 1, 3)
        lo = torch.full((self.channels, 1, 3), -bound)
        hi = torch.full((self.channels, 1, 3), bound)
        for _ in range(steps):
            mid = (lo + hi) / 2
            below = self._logits_cumulative(mid) < goal
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        self.quantiles = ((lo + hi) / 2).squeeze(1)

    def _likelihood(self, values: torch.Tensor) -> torch.Tensor:
        """Mass of ``[v - 1/2, v + 1/2]`` per channel, ``values`` ``(C, 1, M)``."""
        lower = self._logits_cumulative(values - 0.5)
        upper = self._logits_cumulative(values + 0.5)
        sign = -torch.sign(lower + upper).detach()
        return (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()

    @property
    def medians(self) -> torch.Tensor:
        """Per-channel median ``(C,)`` (the rounding centre)."""
        return self.quantiles[:, 1]

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """Median-centred rounding of ``y`` ``(N, C, H, W)`` (the values the coder transmits)."""
        m = self.medians.view(1, -1, 1, 1)
        return torch.round(y - m) + m

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if y.ndim != 4 or y.shape[1] != self.channels:
            raise ValueError(f"expected latents (N, {self.channels}, H, W), got {tuple(y.shape)}")
        if self.training:
            y_tilde = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        else:
            y_tilde = self.quantize(y)
        flat = y_tilde.permute(1, 0, 2, 3).reshape(self.channels, 1, -1)
        lik = self._likelihood(flat).clamp_min(LIKELIHOOD_BOUND)
        n, c, h, w = y.shape
        return y_tilde, lik.reshape(c, n, h, w).permute(1, 0, 2, 3)

    # -- coding ------------------------------------------------------------------------------

    @torch.no_grad()
    def update(self) -> None:
        """Fit the quantiles (:meth:`fit_quantiles`) and freeze the coding tables from the
        current density: offsets ``-R..R`` from each channel's median plus one escape symbol
        (the mass outside), float64 ``(C, 2R + 2)``."""
        self.fit_quantiles()
        q = self.quantiles
        m = q[:, 1]
        half = torch.maximum(m - q[:, 0], q[:, 2] - m).ceil().max()
        r = int(min(max(half.item(), 1), self.max_support))
        offsets = torch.arange(-r, r + 1, dtype=q.dtype)
        values = (m[:, None] + offsets[None, :]).unsqueeze(1)  # (C, 1, 2R+1)
        lik = self._likelihood(values).squeeze(1).double()
        escape = (1 - lik.sum(1, keepdim=True)).clamp_min(LIKELIHOOD_BOUND)
        self.pmf = torch.cat([lik, escape], 1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        key = prefix + "pmf"
        if key in state_dict:
            self.pmf = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _tables(self) -> tuple[np.ndarray, int]:
        if self.pmf.numel() == 0:
            raise RuntimeError("EntropyBottleneck.update() must be called before coding")
        pmf = self.pmf.cpu().numpy()
        return pmf, (pmf.shape[1] - 2) // 2

    def compress(self, y: torch.Tensor) -> bytes:
        """Range-code ``y`` ``(N, C, H, W)`` (rounded about the medians) -> payload bytes."""
        import constriction

        pmf, r = self._tables()
        m = self.medians.view(1, -1, 1, 1)
        q = torch.round(y.detach() - m).to(torch.int64)
        if q.numel() and int(q.abs().max()) >= ESCAPE_RANGE:
            raise ValueError(f"latent offsets beyond +-{ESCAPE_RANGE} cannot be coded")
        q = q.cpu().numpy().reshape(q.shape[0], -1)
        channel = np.repeat(np.arange(self.channels), q.shape[1] // self.channels)
        categorical = constriction.stream.model.Categorical(perfect=False)
        uniform = constriction.stream.model.Uniform(2 * ESCAPE_RANGE)
        encoder = constriction.stream.queue.RangeEncoder()
        for row in q:  # image by image: the table gather stays one image large
            escaped = np.abs(row) > r
            encoder.encode(np.where(escaped, 2 * r + 1, row + r).astype(np.int32), categorical,
                           pmf[channel])
            if escaped.any():
                encoder.encode((row[escaped] + ESCAPE_RANGE).astype(np.int32), uniform)
        return encoder.get_compressed().astype("<u4").tobytes()

    def decompress(self, payload: bytes, shape: tuple[int, int, int, int]) -> torch.Tensor:
        """Inverse of :meth:`compress`: the median-rounded latent ``(N, C, H, W)`` float32."""
        import constriction

        pmf, r = self._tables()
        n, c, h, w = shape
        if c != self.channels:
            raise BitstreamError(f"bitstream has {c} channels, the model {self.channels}")
        if len(payload) % 4:
            raise BitstreamError(f"payload of {len(payload)} bytes is not whole 32-bit words")
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        channel = np.repeat(np.arange(c), h * w)
        categorical = constriction.stream.model.Categorical(perfect=False)
        uniform = constriction.stream.model.Uniform(2 * ESCAPE_RANGE)
        q = np.empty((n, c * h * w), dtype=np.int64)
        try:
            decoder = constriction.stream.queue.RangeDecoder(words)
            for i in range(n):
                symbols = decoder.decode(categorical, pmf[channel]).astype(np.int64)
                q[i] = symbols - r
                escaped = symbols == 2 * r + 1
                if escaped.any():
                    q[i, escaped] = decoder.decode(uniform, int(escaped.sum())) - ESCAPE_RANGE
        except Exception as err:  # constriction raises its own errors on malformed input
            raise BitstreamError(f"range decoding failed: {err}") from err
        q_t = torch.from_numpy(q.reshape(shape)).float()
        return q_t + self.medians.view(1, -1, 1, 1).cpu()


def pack(payload: bytes, shape: tuple[int, int, int, int]) -> bytes:
    """Header (12 bytes: magic, version, N, C, H, W, CRC-32) + payload."""
    n, c, h, w = shape
    if not (1 <= n < 1 << 16 and 1 <= c < 256 and 1 <= h < 256 and 1 <= w < 256):
        raise ValueError(f"latent shape {shape} does not fit the header (N < 65536, C/H/W < 256)")
    crc = zlib.crc32(payload, zlib.crc32(HEADER.pack(MAGIC, VERSION, n, c, h, w, 0)))
    return HEADER.pack(MAGIC, VERSION, n, c, h, w, crc) + payload


def unpack(data: bytes) -> tuple[bytes, tuple[int, int, int, int]]:
    """Split a container into ``(payload, (N, C, H, W))``; raises :class:`BitstreamError` on a
    short, foreign, truncated or corrupted container."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < HEADER.size:
        raise BitstreamError(f"bitstream of {len(data)} bytes is shorter than its "
                             f"{HEADER.size}-byte header")
    magic, version, n, c, h, w, crc = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise BitstreamError(f"not an Entropic Student bitstream (magic {magic!r}, "
                             f"version {version})")
    payload = data[HEADER.size:]
    if zlib.crc32(payload, zlib.crc32(HEADER.pack(magic, version, n, c, h, w, 0))) != crc:
        raise BitstreamError("bitstream corrupted or truncated (CRC-32 mismatch)")
    if min(n, c, h, w) < 1:
        raise BitstreamError(f"bitstream declares an empty latent shape {(n, c, h, w)}")
    return payload, (n, c, h, w)
