"""The neural image codec baseline: exact latent round trip, deterministic decoding, real byte
counts, rate-distortion training that lowers the loss, caching, and clear errors."""

from __future__ import annotations

import copy

import pytest
import torch

from paperlab.core.seed import torch_threads
from paperlab.entropic_student.codec import CHECK, HEADER, BitstreamError, unpack
from paperlab.entropic_student.experiment import NEURAL_CODEC, neural_codec_row
from paperlab.entropic_student.image_codec import (
    ImageCodec,
    decode_images,
    load_codec,
    save_codec,
)
from paperlab.entropic_student.model import decode_latent, encode, quantized_latent
from paperlab.entropic_student.train import CodecConfig, fit_codec, rd_loss, train_codec
from paperlab.vision.data import ImageSet
from paperlab.vision.train import QUICK_CIFAR_TEACHER


@pytest.fixture(scope="module")
def codec():
    with torch_threads(1):
        torch.manual_seed(0)
        model = ImageCodec(n=8, m=6).eval()
        model.bottleneck.update()
    return model


def _smooth_set(n: int = 32) -> ImageSet:
    """Images that a tiny codec can learn quickly: a random colour per image plus a gradient."""
    gen = torch.Generator().manual_seed(5)
    colour = torch.rand(n, 3, 1, 1, generator=gen) * 200
    ramp = torch.linspace(0, 50, 32).view(1, 1, 1, 32)
    images = (colour + ramp).expand(n, 3, 32, 32).round().clamp(0, 255).to(torch.uint8)
    return ImageSet(images, torch.arange(n) % 10, tuple(str(i) for i in range(10)), "smooth")


def test_decode_encode_gives_quantized_latent_and_same_images(codec, images):
    data = encode(codec, images)
    latent = quantized_latent(codec, images)
    assert latent.shape == (3, 6, 4, 4) == (3, *codec.latent_shape)
    assert torch.equal(decode_latent(codec, data), latent)
    decoded = decode_images(codec, data)
    assert decoded.dtype == torch.uint8 and decoded.shape == images.shape
    assert torch.equal(decoded, decode_images(codec, data))
    with torch.no_grad():
        assert torch.equal(decoded, codec.synthesize(latent))


def test_reported_bytes_are_the_bitstream_length(codec, images):
    data = encode(codec, images)
    payload, shape = unpack(data)
    assert len(data) == HEADER.size + 1 + len(payload) and shape == (3, 6, 4, 4)
    test = ImageSet(images, torch.tensor([0, 1, 2]), tuple(str(i) for i in range(10)), "toy")
    with torch_threads(1):
        torch.manual_seed(0)
        result = neural_codec_row(codec, 3.0, QUICK_CIFAR_TEACHER.build().eval(), test,
                                  latency_images=1)
    sizes = [len(encode(codec, images[i : i + 1])) for i in range(3)]
    row = result.row
    assert row["method"] == NEURAL_CODEC and row["bytes_per_image"] == sum(sizes) / 3
    # payload: the range-coded words alone (header, image count and checksum left out)
    assert row["payload_bytes_per_image"] == sum(sizes) / 3 - HEADER.size - 1 - CHECK.size
    assert result.sizes.tolist() == sizes and row["acc"] == result.correct.mean()


def test_training_lowers_the_rate_distortion_loss():
    data = _smooth_set()
    cfg = CodecConfig(lam=10.0, n=8, m=6, steps=24, batch_size=8, decay_at=(0.9,),
                      augment=False)
    with torch_threads(1):
        torch.manual_seed(0)
        codec = ImageCodec(cfg.n, cfg.m)
        before = copy.deepcopy(codec)
        before.bottleneck.update()
        history = fit_codec(codec, data, cfg)
        with torch.no_grad():
            loss_before, _ = rd_loss(before.eval(), data.images, cfg.lam)
            loss_after, parts = rd_loss(codec.eval(), data.images, cfg.lam)
    assert [r["step"] for r in history] == sorted({round(24 * (k + 1) / 20) for k in range(20)})
    assert history[-1]["mse"] < history[0]["mse"]
    assert history[0]["lr"] == cfg.lr and history[-1]["lr"] == pytest.approx(cfg.lr / 10)
    assert float(loss_after) < 0.5 * float(loss_before)
    # the codec is usable after training: coding tables frozen, real bytes round-trip
    data_bytes = encode(codec, data.images[:4])
    assert torch.equal(decode_latent(codec, data_bytes), quantized_latent(codec, data.images[:4]))


def test_trained_codec_is_cached_and_reloads_identically(tmp_path, monkeypatch, images):
    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path / "cache"))
    data = _smooth_set(8)
    cfg = CodecConfig(lam=5.0, n=4, m=4, steps=2, batch_size=8)
    with torch_threads(1):
        first = train_codec(data, cfg)
        again = train_codec(data, cfg)
    path = first.path
    assert (first.cached, again.cached, path) == (False, True, again.path)
    assert again.seconds == 0.0 and again.history == first.history and len(first.history) == 2
    assert path.name.startswith("codec-") and path.exists() and path.with_suffix(".json").exists()
    first, again = first.model, again.model
    assert path.name.startswith("codec-") and path.exists()
    assert encode(again, images) == encode(first, images)
    save_codec(first, tmp_path / "c.pt")
    assert torch.equal(load_codec(tmp_path / "c.pt").bottleneck.pmf, first.bottleneck.pmf)


@pytest.mark.parametrize("bad, err, match", [
    (torch.zeros(0, 3, 32, 32, dtype=torch.uint8), ValueError, "empty batch"),
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), ValueError, "32x32"),
    (torch.zeros(1, 3, 32, 32), TypeError, "uint8"),
])
def test_bad_images_raise(codec, bad, err, match):
    with pytest.raises(err, match=match):
        encode(codec, bad)


def test_bad_bitstreams_raise(codec, student, images):
    data = encode(codec, images)
    for cut in (0, 7, HEADER.size, len(data) - 4, len(data) - 1):
        with pytest.raises(BitstreamError):
            decode_images(codec, data[:cut])
    with pytest.raises(BitstreamError, match="does not fit"):
        decode_images(codec, encode(student, images))  # the student's bitstream


def test_gradient_clipping_bounds_each_step_and_keeps_unclipped_cache_keys():
    import dataclasses

    from paperlab.entropic_student.train import _cache_path, codec_path

    data = _smooth_set(8)
    base = CodecConfig(lam=5.0, n=4, m=4, steps=1, batch_size=8, augment=False, lr=1e-2,
                       clip_norm=None)
    moved = {}
    for clip in (None, 1e-9):
        with torch_threads(1):
            torch.manual_seed(0)
            codec = ImageCodec(base.n, base.m)
            start = [p.detach().clone() for p in codec.parameters()]
            fit_codec(codec, data, dataclasses.replace(base, clip_norm=clip))
        moved[clip] = max(float((p.detach() - q).abs().max())
                          for p, q in zip(codec.parameters(), start, strict=True))
    # Adam's first step moves each weight by ~lr whatever the gradient's size, unless the
    # gradient is ~0: clipped to a norm of 1e-9 it is below Adam's eps
    assert moved[None] > 1e-3 and moved[1e-9] < 0.1 * moved[None]
    fields = dataclasses.asdict(base)
    del fields["clip_norm"]  # an unclipped codec's key is the one it had before the field
    assert codec_path(base, data) == _cache_path("codec", {"cfg": fields,
                                                           "data": data.fingerprint()})
    assert codec_path(dataclasses.replace(base, clip_norm=1.0), data) != codec_path(base, data)
    with pytest.raises(ValueError, match="clip_norm"):
        CodecConfig(clip_norm=0.0)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="m"):
        ImageCodec(n=8, m=256)
    with pytest.raises(ValueError, match="lam"):
        CodecConfig(lam=-1.0)
