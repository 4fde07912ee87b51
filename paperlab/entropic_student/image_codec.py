"""The neural image codec baseline: a factorized-prior image codec in the shape of Balle et al.
(ICLR 2017 / 2018's "factorized prior"), whose decoded images feed the unmodified teacher.

* analysis ``g_a``: three Conv5x5 stride-2 layers, GDN between them; ``32x32x3 -> 4x4xM``
  (total stride 8: the paper's stride 16 leaves a 2x2 latent of a 32x32 image, which learned
  much more slowly here -- measured, see the README);
* the package's :class:`~paperlab.entropic_student.codec.EntropyBottleneck` (factorized density,
  uniform noise in training, median-rounding and ``constriction`` range coding at test time) and
  the same container as the student (:func:`~paperlab.entropic_student.codec.pack`);
* synthesis ``g_s``: three ConvTranspose5x5 stride-2 layers, IGDN between them;
  ``4x4xM -> 32x32x3``, clamped to ``[0, 1]`` and rounded to ``uint8`` on decode.

Pixels enter as ``uint8 / 255`` (not the teacher's normalisation). Edge side:
:func:`~paperlab.entropic_student.model.encode` (shared with the student) -> bytes; server side:
:func:`decode_images` -> ``uint8`` images for the teacher. Trained by
:func:`paperlab.entropic_student.train.train_codec` on ``MSE + lambda * bits per pixel``.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from paperlab.core import checks
from paperlab.entropic_student.codec import GDN, EntropyBottleneck
from paperlab.entropic_student.model import (
    CHUNK,
    IMAGE_SIZE,
    MAX_WIDTH,
    decode_latent,
    load_state,
    read_checkpoint,
)

STAGES = 3  # stride-2 layers per transform (Balle et al. 2018: 4, on 256x256 crops)


class ImageCodec(nn.Module):
    """Factorized-prior image codec for ``32x32`` RGB images.

    Args:
        n: hidden channels of both transforms (paper, low rates: 128), an integer >= 1.
        m: latent channels (paper: 192), an integer in ``1..255`` (the container's limit).
            NumPy and 0-d tensor integers are accepted for both.

    ``forward(x)`` on ``float`` images in ``[0, 1]`` ``(B, 3, 32, 32)`` returns ``(x_hat,
    likelihoods)``: reconstruction ``(B, 3, 32, 32)`` (unclamped) and latent likelihoods
    ``(B, m, 4, 4)``; noisy latents in training, median-rounded in eval.
    """

    def __init__(self, n: int = 64, m: int = 96) -> None:
        super().__init__()
        n = checks.integer(n, "hidden channels n", low=1)
        m = checks.integer(m, "latent channels m", low=1, high=MAX_WIDTH)
        self.n, self.m = n, m
        analysis: list[nn.Module] = []
        synthesis: list[nn.Module] = []
        for k in range(STAGES):
            last = k == STAGES - 1
            analysis.append(nn.Conv2d(3 if k == 0 else n, m if last else n, 5, 2, 2))
            synthesis.append(nn.ConvTranspose2d(m if k == 0 else n, 3 if last else n, 5, 2, 2,
                                                output_padding=1))
            if not last:
                analysis.append(GDN(n))
                synthesis.append(GDN(n, inverse=True))
        self.encoder = nn.Sequential(*analysis)
        self.bottleneck = EntropyBottleneck(m)
        self.decoder = nn.Sequential(*synthesis)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(m, 4, 4)``: one image's latent."""
        side = IMAGE_SIZE >> STAGES
        return (self.m, side, side)

    def analyze(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8`` images ``(B, 3, 32, 32)`` -> unrounded latent ``(B, m, 4, 4)``."""
        return self.encoder(images.float() / 255.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y_tilde, likelihoods = self.bottleneck(self.encoder(x))
        return self.decoder(y_tilde), likelihoods

    def synthesize(self, y_hat: torch.Tensor) -> torch.Tensor:
        """Rounded latent ``(B, m, 4, 4)`` -> ``uint8`` images ``(B, 3, 32, 32)``; a
        reconstruction that is NaN or inf (a codec with NaN weights) raises ``ValueError``
        instead of turning into arbitrary pixels."""
        x_hat = self.decoder(y_hat)
        if not bool(torch.isfinite(x_hat).all()):
            raise ValueError("the codec's reconstruction is not finite (NaN or inf): its "
                             "weights are not finite")
        return (x_hat.clamp(0, 1) * 255).round().to(torch.uint8)


def _check_codec(codec: object) -> None:
    if not isinstance(codec, ImageCodec):
        raise TypeError(f"codec must be an ImageCodec, got {checks.describe(codec)}")


@torch.inference_mode()
def decode_images(codec: ImageCodec, data: bytes, chunk_size: int = CHUNK) -> torch.Tensor:
    """Server side: a bitstream of :func:`~paperlab.entropic_student.model.encode` -> ``uint8``
    images ``(N, 3, 32, 32)``, synthesized ``chunk_size`` images at a time; raises
    :class:`~paperlab.entropic_student.codec.BitstreamError` on a bad bitstream."""
    _check_codec(codec)
    chunk_size = checks.integer(chunk_size, "chunk_size", low=1)
    codec.eval()
    y_hat = decode_latent(codec, data)
    return torch.cat([codec.synthesize(y_hat[i : i + chunk_size])
                      for i in range(0, y_hat.shape[0], chunk_size)])


def save_codec(codec: ImageCodec, path: str | os.PathLike[str]) -> None:
    """Write the codec (its widths and state, coding tables included) for :func:`load_codec`."""
    _check_codec(codec)
    torch.save({"n": codec.n, "m": codec.m, "state": codec.state_dict()}, path)


def load_codec(path: str | os.PathLike[str]) -> ImageCodec:
    """Read a codec written by :func:`save_codec` (``weights_only=True``); a file that is not
    one raises :class:`~paperlab.entropic_student.model.CheckpointError` naming it."""
    sizes, state = read_checkpoint(path, "save_codec", {"n": (1, 1 << 16), "m": (1, MAX_WIDTH)})
    codec = ImageCodec(sizes["n"], sizes["m"])
    load_state(codec, state, path)
    return codec.eval()
