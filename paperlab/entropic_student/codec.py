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
  round-trips exactly. Each image is its own range-coder stream, so the decoder knows where
  every image's bytes end.
* :func:`pack` / :func:`unpack` -- the container (version 2): a 10-byte header (magic ``b"ES"``,
  version, latent ``C, H, W``, CRC-32 of the header, the image count and the payload), the image
  count ``N`` as a LEB128 varint (1 byte below 128 images), then the payload of
  :meth:`~EntropyBottleneck.compress`:

  * 4 bytes: CRC-32 of the coded offsets (``int32`` little-endian, image by image) followed by
    the shape ``(N, C, H, W)`` -- it ties the decoded latents to what the encoder coded, which a
    payload that was not written for them cannot match by chance;
  * the word counts of images ``1..N-1`` (LEB128; the last image takes the words that remain);
  * each image's range-coder words (32-bit little-endian), image after image.

  Truncated or corrupted containers, and payloads that are empty, random, written for another
  image count, run out or leave bytes over, raise :class:`BitstreamError` (a ``ValueError``)
  naming what is wrong and in which image: each image's bytes must be exactly what the encoder
  writes for the symbols they decode to (decoded, then coded again and compared), and the
  decoded offsets must match the checksum.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paperlab.core import checks

MAGIC = b"ES"
VERSION = 2
HEADER = struct.Struct(">2sBBBBI")  # magic, version, C, H, W, CRC-32 -> 10 bytes; then N (LEB128)
CHECK = struct.Struct(">I")  # the payload's first 4 bytes: CRC-32 of the offsets and the shape
SHAPE = struct.Struct(">QBBB")  # N, C, H, W as the checksum reads them
MAX_VARINT = 5  # bytes of a LEB128 count (< 2**35)
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
        channels = checks.integer(channels, "GDN channels", low=1)
        self.inverse = bool(inverse)
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
        channels = checks.integer(channels, "channels", low=1)
        if not isinstance(filters, (tuple, list)):
            raise TypeError(f"filters must be a tuple of widths, got {checks.describe(filters)}")
        filters = tuple(checks.integer(f, "each of filters", low=1) for f in filters)
        init_scale = checks.real(init_scale, "init_scale", low=0, low_open=True)
        tail_mass = checks.real(tail_mass, "tail_mass", low=0, high=1, low_open=True,
                                high_open=True)
        max_support = checks.integer(max_support, "max_support", low=1, high=ESCAPE_RANGE - 1)
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
        bound = checks.real(bound, "bound", low=0, low_open=True)
        steps = checks.integer(steps, "steps", low=1)
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
        (the mass outside), float64 ``(C, 2R + 2)``. Refuses a density whose parameters are
        not finite (no table could be built from it)."""
        broken = [name for name, p in self.named_parameters() if not torch.isfinite(p).all()]
        if broken:
            raise ValueError(f"the entropy model's parameters {', '.join(broken)} hold NaN or "
                             "inf: no coding table can be built")
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

    def _coder(self, h: int, w: int) -> _Coder:
        """The range coder for latents of ``h x w`` positions per channel, from the frozen
        tables."""
        if self.pmf.numel() == 0:
            raise RuntimeError("EntropyBottleneck.update() must be called before coding")
        pmf = self.pmf.cpu().numpy()
        if not (np.isfinite(pmf).all() and bool(torch.isfinite(self.quantiles).all())):
            raise ValueError("the coding tables or medians hold NaN or inf (a broken model or "
                             "checkpoint): nothing can be coded with them")
        return _Coder(np.repeat(pmf, h * w, axis=0), (pmf.shape[1] - 2) // 2)

    def _offsets(self, y: torch.Tensor, first: int = 0) -> np.ndarray:
        """Integer offsets from the medians, ``int64 (N, C*H*W)``, of latents ``y``
        ``(N, C, H, W)``; ``first`` numbers the images in errors. Refuses NaN/inf latents (a
        model with NaN weights) and offsets the escape code cannot carry."""
        if not isinstance(y, torch.Tensor) or y.ndim != 4 or y.shape[1] != self.channels:
            raise ValueError(f"expected latents (N, {self.channels}, H, W), got "
                             f"{checks.describe(y)}")
        y = y.detach()
        finite = torch.isfinite(y).flatten(1).all(1)
        if not bool(finite.all()):
            raise ValueError(f"latent not finite (NaN or inf) at {_where(first, ~finite)}: the "
                             "model's weights or activations are not finite; nothing was "
                             "encoded")
        offsets = torch.round(y - self.medians.view(1, -1, 1, 1))
        far = (offsets.abs() >= ESCAPE_RANGE).flatten(1).any(1)
        if bool(far.any()):
            raise ValueError(f"latent offsets beyond +-{ESCAPE_RANGE} cannot be coded "
                             f"(at {_where(first, far)})")
        return offsets.to(torch.int64).flatten(1).cpu().numpy()

    def compress(self, y: torch.Tensor) -> bytes:
        """Range-code ``y`` ``(N, C, H, W)`` (rounded about the medians) -> the payload (see
        the module docstring)."""
        return self.compress_chunks([y])[0]

    def compress_chunks(self, chunks: Iterable[torch.Tensor]
                        ) -> tuple[bytes, tuple[int, int, int, int]]:
        """Range-code latents that arrive in chunks ``(N_k, C, H, W)`` (same ``H, W``) ->
        ``(payload, (N, C, H, W))`` with ``N = sum N_k``. Holds one chunk's offsets at a time
        (and the coded words, a few hundred bytes per image), so memory does not grow with
        ``N`` beyond the output."""
        coder, words, crc, n, size = None, [], 0, 0, (0, 0)
        for y in chunks:
            offsets = self._offsets(y, first=n)
            if coder is None:
                size = tuple(y.shape[2:])
                coder = self._coder(*size)
            elif tuple(y.shape[2:]) != size:
                raise ValueError(f"latent chunks must share H x W: {size} then "
                                 f"{tuple(y.shape[2:])}")
            crc = zlib.crc32(offsets.astype("<i4").tobytes(), crc)
            words.extend(coder.encode(row) for row in offsets)
            n += offsets.shape[0]
        if n == 0:
            raise ValueError("no latents to code (no chunk, or only empty ones)")
        shape = (n, self.channels, *size)
        table = b"".join(_varint(len(w)) for w in words[:-1])
        return (CHECK.pack(zlib.crc32(SHAPE.pack(*shape), crc)) + table
                + b"".join(w.astype("<u4").tobytes() for w in words)), shape

    def decompress(self, payload: bytes, shape: tuple[int, int, int, int]) -> torch.Tensor:
        """Inverse of :meth:`compress`: the median-rounded latent ``(N, C, H, W)`` float32.
        Raises :class:`BitstreamError` unless every image's bytes are exactly what the encoder
        writes for the offsets they decode to, and those offsets match the checksum."""
        n, c, h, w = shape
        if c != self.channels:
            raise BitstreamError(f"bitstream has {c} channels, the model {self.channels}")
        coder = self._coder(h, w)
        check, segments = _split_payload(payload, n)
        q = np.empty((n, c * h * w), dtype=np.int64)
        for i, words in enumerate(segments):
            q[i] = coder.decode_exactly(words, f"image {i + 1} of {n}")
        if zlib.crc32(SHAPE.pack(*shape), zlib.crc32(q.astype("<i4").tobytes())) != check:
            raise BitstreamError(f"the decoded latents of the {n} image(s) do not match the "
                                 "payload's checksum: the payload was not written for them")
        q_t = torch.from_numpy(q.reshape(shape)).float()
        return q_t + self.medians.view(1, -1, 1, 1).cpu()


class _Coder:
    """One image's range coding: ``probs`` ``(C*H*W, 2R+2)``, each position's table over
    offsets ``-R..R`` and the escape symbol ``2R+1``; escaped offsets follow under a uniform
    model."""

    def __init__(self, probs: np.ndarray, r: int) -> None:
        import constriction

        self.probs, self.r = probs, r
        self.categorical = constriction.stream.model.Categorical(perfect=False)
        self.uniform = constriction.stream.model.Uniform(2 * ESCAPE_RANGE)
        self.queue = constriction.stream.queue

    def encode(self, offsets: np.ndarray) -> np.ndarray:
        """Offsets ``(C*H*W,)`` -> the stream's 32-bit words."""
        encoder = self.queue.RangeEncoder()
        escaped = np.abs(offsets) > self.r
        encoder.encode(np.where(escaped, 2 * self.r + 1, offsets + self.r).astype(np.int32),
                       self.categorical, self.probs)
        if escaped.any():
            encoder.encode((offsets[escaped] + ESCAPE_RANGE).astype(np.int32), self.uniform)
        return encoder.get_compressed()

    def decode_exactly(self, words: np.ndarray, which: str) -> np.ndarray:
        """A stream's words -> its offsets ``(C*H*W,)``, if the words are exactly what
        :meth:`encode` writes for them; else :class:`BitstreamError` naming ``which`` image and
        whether its bytes ran out, were left over, or are not the encoder's."""
        decoder = self.queue.RangeDecoder(words)
        try:
            symbols = decoder.decode(self.categorical, self.probs).astype(np.int64)
            offsets = symbols - self.r
            escaped = symbols == 2 * self.r + 1
            if escaped.any():
                offsets[escaped] = decoder.decode(self.uniform, int(escaped.sum())) - ESCAPE_RANGE
        except AssertionError as err:  # constriction: data no stream of this model can hold
            raise BitstreamError(f"{which}: the payload runs out or was altered: its bytes "
                                 f"code no latent of this model ({err})") from err
        again = self.encode(offsets)
        if len(again) > len(words):
            raise BitstreamError(f"{which}: the payload runs out: its symbols take "
                                 f"{4 * len(again)} bytes, {4 * len(words)} were there")
        if len(again) < len(words):
            raise BitstreamError(f"{which}: {4 * (len(words) - len(again))} bytes left over "
                                 "after its symbols")
        if not np.array_equal(again, words):
            raise BitstreamError(f"{which}: bytes that the encoder did not write (random or "
                                 "altered)")
        return offsets


def _where(first: int, mask: torch.Tensor) -> str:
    """``"batch index 3"`` / ``"batch indices 0, 4, 9 (3 images)"`` for the set entries of
    ``mask``, numbered from ``first`` (the chunk's place in the batch)."""
    index = (first + torch.nonzero(mask).flatten()).tolist()
    if len(index) == 1:
        return f"batch index {index[0]}"
    shown = ", ".join(map(str, index[:5])) + (", ..." if len(index) > 5 else "")
    return f"batch indices {shown} ({len(index)} images)"


def _varint(value: int) -> bytes:
    """``value`` >= 0 as LEB128 (7 bits a byte, low first, high bit = more follow)."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """The LEB128 number at ``data[pos:]`` and the position after it; ``what`` names it in the
    :class:`BitstreamError` for one that runs out, is too long, or is not minimally coded."""
    value = 0
    for k in range(MAX_VARINT):
        if pos + k >= len(data):
            raise BitstreamError(f"the bitstream runs out in {what}")
        byte = data[pos + k]
        value |= (byte & 0x7F) << (7 * k)
        if not byte & 0x80:
            if k and not byte:
                raise BitstreamError(f"{what} is not minimally coded (a trailing zero byte)")
            return value, pos + k + 1
    raise BitstreamError(f"{what} is longer than {MAX_VARINT} bytes")


def _split_payload(payload: bytes, n: int) -> tuple[int, list[np.ndarray]]:
    """The payload's checksum and each of its ``n`` images' words, or :class:`BitstreamError`
    for a payload that is empty, runs out, or leaves bytes over."""
    if not payload:
        raise BitstreamError(f"empty payload: expected the coded latents of {n} image(s)")
    if len(payload) < CHECK.size + n - 1:
        raise BitstreamError(
            f"the payload runs out: {len(payload)} bytes cannot hold the {CHECK.size}-byte "
            f"checksum and the word counts of {n} images (at least {CHECK.size + n - 1} bytes)")
    (check,) = CHECK.unpack_from(payload)
    pos, counts = CHECK.size, []
    for i in range(n - 1):
        count, pos = _read_varint(payload, pos, f"the word count of image {i + 1} of {n}")
        counts.append(count)
    body = len(payload) - pos
    if body % 4:
        raise BitstreamError(f"image {n} of {n}: the payload ends {body % 4} byte(s) into a "
                             "32-bit word (truncated, or bytes left over)")
    ends = np.cumsum(np.asarray(counts, dtype=np.int64))
    short = np.flatnonzero(ends > body // 4)
    if short.size:
        i = int(short[0])
        raise BitstreamError(f"image {i + 1} of {n}: the payload runs out (its words end at "
                             f"word {int(ends[i])}, the payload has {body // 4})")
    words = np.frombuffer(payload, dtype="<u4", offset=pos).astype(np.uint32)
    return check, np.split(words, ends)


def pack(payload: bytes, shape: tuple[int, int, int, int]) -> bytes:
    """Header (10 bytes: magic, version, C, H, W, CRC-32) + ``N`` (LEB128) + payload."""
    n, c, h, w = shape
    if not (n >= 1 and 1 <= c < 256 and 1 <= h < 256 and 1 <= w < 256):
        raise ValueError(f"latent shape {shape} does not fit the header (N >= 1, C/H/W < 256)")
    count = _varint(n)
    crc = zlib.crc32(count + payload, zlib.crc32(HEADER.pack(MAGIC, VERSION, c, h, w, 0)))
    return HEADER.pack(MAGIC, VERSION, c, h, w, crc) + count + payload


def unpack(data: bytes) -> tuple[bytes, tuple[int, int, int, int]]:
    """Split a container into ``(payload, (N, C, H, W))``; raises :class:`BitstreamError` on a
    short, foreign, truncated or corrupted container (the payload itself is checked by
    :meth:`EntropyBottleneck.decompress`)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) <= HEADER.size:
        raise BitstreamError(f"bitstream of {len(data)} bytes is shorter than its "
                             f"{HEADER.size + 1}-byte header")
    magic, version, c, h, w, crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise BitstreamError(f"not an Entropic Student bitstream (magic {magic!r})")
    if version != VERSION:
        raise BitstreamError(f"bitstream version {version}; this library reads version "
                             f"{VERSION} (encode the images again)")
    n, pos = _read_varint(data, HEADER.size, "the image count")
    if zlib.crc32(data[HEADER.size:], zlib.crc32(HEADER.pack(magic, version, c, h, w, 0))) != crc:
        raise BitstreamError("bitstream corrupted or truncated (CRC-32 mismatch)")
    if min(n, c, h, w) < 1:
        raise BitstreamError(f"bitstream declares an empty latent shape {(n, c, h, w)}")
    return data[pos:], (n, c, h, w)
