"""Bitstreams: exact latent round trip, real byte counts, and clear errors on bad input."""

from __future__ import annotations

import math

import pytest
import torch

from paperlab.entropic_student.codec import (
    CHECK,
    GDN,
    HEADER,
    BitstreamError,
    EntropyBottleneck,
    pack,
    unpack,
)
from paperlab.entropic_student.model import (
    decode_and_classify,
    decode_latent,
    encode,
    load_student,
    quantized_latent,
    save_student,
)


def test_decode_encode_gives_quantized_latent_exactly(student, images):
    data = encode(student, images)
    latent = quantized_latent(student, images)
    assert latent.shape == (3, 8, 8, 8)
    assert torch.equal(decode_latent(student, data), latent)


def test_classification_from_bytes_equals_local_classification(student, images):
    data = encode(student, images)
    with torch.no_grad():
        local = student.classify_latent(quantized_latent(student, images)).argmax(-1)
    assert torch.equal(decode_and_classify(student, data), local)


def test_bytes_are_the_bitstream_length(student, images):
    data = encode(student, images)
    payload, shape = unpack(data)
    assert len(data) == HEADER.size + 1 + len(payload) and shape == (3, 8, 8, 8)


def test_payload_size_follows_the_information_content():
    # the range coder's output is close to the model's ideal code length (escapes cost
    # extra), for a spread-out latent and for one at the medians
    torch.manual_seed(0)
    eb = EntropyBottleneck(4).eval()
    eb.update()
    with torch.no_grad():
        for y in (torch.randn(1, 4, 16, 16) * 4, eb.medians.view(1, 4, 1, 1).expand(1, 4, 16, 16)):
            _, lik = eb(y)
            ideal_bits = float(-torch.log2(lik).sum())
            coded_bits = 8 * (len(eb.compress(y)) - CHECK.size)  # one image: no word counts
            assert ideal_bits - 1 <= coded_bits <= 1.05 * ideal_bits + 96


def test_escape_symbols_round_trip_far_tails():
    torch.manual_seed(0)
    eb = EntropyBottleneck(4).eval()
    eb.update()
    r = (eb.pmf.shape[1] - 2) // 2
    y = torch.randn(2, 4, 3, 3) * 3
    y[0, 1, 1, 1] = r + 500.3  # beyond the table: escape + uniform
    y[1, 2, 0, 0] = -(r + 20_000.0)
    payload = eb.compress(y)
    assert torch.equal(eb.decompress(payload, (2, 4, 3, 3)), eb.quantize(y))
    with pytest.raises(ValueError, match="cannot be coded"):
        eb.compress(torch.full((1, 4, 1, 1), 1e6))


def test_coding_needs_update():
    eb = EntropyBottleneck(2)
    with pytest.raises(RuntimeError, match="update"):
        eb.compress(torch.zeros(1, 2, 2, 2))


def test_tables_survive_save_and_load(student, images, tmp_path):
    path = tmp_path / "student.pt"
    save_student(student, path)
    again = load_student(path)
    assert torch.equal(again.bottleneck.pmf, student.bottleneck.pmf)
    assert encode(again, images) == encode(student, images)


def test_truncated_bytes_raise(student, images):
    data = encode(student, images)
    for cut in (0, 5, HEADER.size, len(data) - 4, len(data) - 1):
        with pytest.raises(BitstreamError):
            decode_and_classify(student, data[:cut])


def test_corrupted_bytes_raise(student, images):
    data = bytearray(encode(student, images))
    for pos in (0, 3, HEADER.size + 2, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 0x41
        with pytest.raises(BitstreamError):
            decode_and_classify(student, bytes(bad))


def test_bitstream_of_another_model_is_refused(student):
    payload = b"\x00" * 8
    with pytest.raises(BitstreamError, match="does not fit"):
        decode_latent(student, pack(payload, (1, 5, 8, 8)))
    with pytest.raises(TypeError, match="bytes"):
        unpack("not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad, err, match", [
    (torch.zeros(0, 3, 32, 32, dtype=torch.uint8), ValueError, "empty batch"),
    (torch.zeros(1, 3, 28, 28, dtype=torch.uint8), ValueError, "32x32"),
    (torch.zeros(1, 1, 32, 32, dtype=torch.uint8), ValueError, "shape"),
    (torch.zeros(1, 3, 32, 32), TypeError, "uint8"),
    ([[0]], TypeError, "torch.Tensor"),
])
def test_bad_images_raise(student, bad, err, match):
    with pytest.raises(err, match=match):
        encode(student, bad)


def test_gdn_inverse_undoes_gdn():
    torch.manual_seed(0)
    gdn, igdn = GDN(6), GDN(6, inverse=True)
    x = torch.randn(2, 6, 4, 4)
    # with identical parameters IGDN(GDN(x)) = x only approximately (the norm sees GDN(x));
    # what must hold exactly is the diagonal case: gamma = 0 -> x / sqrt(beta) and back
    with torch.no_grad():
        for g in (gdn, igdn):
            g.gamma_raw.fill_(-60.0)
    assert torch.allclose(igdn(gdn(x)), x, atol=1e-5)
    assert gdn(x).shape == x.shape


def test_update_finds_median_and_tails_of_the_density():
    torch.manual_seed(0)
    eb = EntropyBottleneck(3)
    with torch.no_grad():
        for b in eb.biases:
            b.add_(torch.randn_like(b))
    eb.update()
    with torch.no_grad():
        logits = eb._logits_cumulative(eb.quantiles.unsqueeze(1)).squeeze(1)
    tail = math.log(2 / eb.tail_mass - 1)  # sigmoid(-tail) = tail_mass / 2
    expected = torch.tensor([-tail, 0.0, tail]).expand(3, 3)
    assert torch.allclose(logits, expected, atol=1e-3)
    assert torch.equal(eb.medians, eb.quantiles[:, 1])
    # the table is a distribution over offsets -R..R plus the escape
    assert torch.allclose(eb.pmf.sum(1), torch.ones(3, dtype=torch.float64), atol=1e-6)
