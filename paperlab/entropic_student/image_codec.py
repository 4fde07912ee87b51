"""The neural image codec baseline: a factorized-prior image codec in the shape of Balle et al.
(ICLR 2017 / 2018's "factorized prior"), whose decoded images feed the unmodified teacher.

* analysis ``g_a``: three Conv5x5 stride-2 layers, GDN between them; ``32x32x3 -> 4x4xM``
  (total stride 8: the paper's stride 16 leaves a 2x2 latent of a 32x32 image, which learned
  much more slowly here -- measured, see the README);
* the package's :class:`~paperlab.entropic_student.codec.EntropyBottleneck` (factorized density,
  uniform noise in training, median-rounding and ``constriction`` range coding at test time) and
  the same 12-byte container as the student (:func:`~paperlab.entropic_student.codec.pack`);
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

from paperlab.entropic_student.codec import GDN, EntropyBottleneck
from paperlab.entropic_student.model import IMAGE_SIZE, decode_latent

STAGES = 3  # stride-2 layers per transform (Balle et al. 2018: 4, on 256x256 crops)


class ImageCodec(nn.Module):
    """Factorized-prior image codec for ``32x32`` RGB images.

    Args:
        n: hidden channels of both transforms (paper, low rates: 128).
        m: latent channels (paper: 192; < 256, the container's limit).

    ``forward(x)`` on ``float`` images in ``[0, 1]`` ``(B, 3, 32, 32)`` returns ``(x_hat,
    likelihoods)``: reconstruction ``(B, 3, 32, 32)`` (unclamped) and latent likelihoods
    ``(B, m, 4, 4)``; noisy latents in training, median-rounded in eval.
    """

    def __init__(self, n: int = 64, m: int = 96) -> None:
        super().__init__()
        if n < 1 or not 1 <= m < 256:
            raise ValueError(f"need n >= 1 and 1 <= m < 256, got n={n}, m={m}")
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
        """Rounded latent ``(B, m, 4, 4)`` -> ``uint8`` images ``(B, 3, 32, 32)``."""
        return (self.decoder(y_hat).clamp(0, 1) * 255).round().to(torch.uint8)


@torch.inference_mode()
def decode_images(codec: ImageCodec, data: bytes) -> torch.Tensor:
    """Server side: a bitstream of :func:`~paperlab.entropic_student.model.encode` -> ``uint8``
    images ``(N, 3, 32, 32)``; raises
    :class:`~paperlab.entropic_student.codec.BitstreamError` on a bad bitstream."""
    codec.eval()
    return codec.synthesize(decode_latent(codec, data))


def save_codec(codec: ImageCodec, path: str | os.PathLike[str]) -> None:
    """Write the codec (its widths and state, coding tables included) for :func:`load_codec`."""
    torch.save({"n": codec.n, "m": codec.m, "state": codec.state_dict()}, path)


def load_codec(path: str | os.PathLike[str]) -> ImageCodec:
    """Read a codec written by :func:`save_codec` (``weights_only=True``)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    codec = ImageCodec(int(payload["n"]), int(payload["m"]))
    codec.load_state_dict(payload["state"])
    return codec.eval()
