"""Bitstreams that must be refused, and encoding that works in chunks.

Crafted containers have a valid header CRC (made with ``pack``) and a payload that was not
written for them: empty, random, for another image count, with bytes left over, truncated, with
images' words swapped or re-split. Before these checks (container version 1, one range-coder
stream for the whole batch) such payloads decoded to class labels without a word: the decoder
padded a short stream with zeros and ignored bytes after the last symbol. Both server-side
decoders are checked: the student's ``decode_and_classify`` and the image codec's
``decode_images``. ``encode`` analyses and codes ``chunk_size`` images at a time (before, a whole
batch at once: 70,000 CIFAR images took 20 GB); NaN latents are refused at encode time.
"""

from __future__ import annotations

import copy
import math
import struct
import weakref

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paperlab.core.seed import torch_threads
from paperlab.entropic_student.codec import (
    CHECK,
    HEADER,
    MAGIC,
    BitstreamError,
    EntropyBottleneck,
    pack,
    unpack,
)
from paperlab.entropic_student.image_codec import ImageCodec, decode_images
from paperlab.entropic_student.model import (
    decode_and_classify,
    decode_latent,
    encode,
    quantized_latent,
)

FAST = settings(max_examples=25, deadline=None, derandomize=True)


@pytest.fixture(scope="module")
def codec():
    """A tiny untrained image codec whose analysis is scaled up so that images get different
    latents (at initialisation they all round to the medians)."""
    with torch_threads(1):
        torch.manual_seed(2)
        model = ImageCodec(n=4, m=4).eval()
        with torch.no_grad():
            model.encoder[-1].weight.mul_(40)
        model.bottleneck.update()
    return model


@pytest.fixture(params=["student", "codec"])
def coder(request, student, codec):
    """(model, its server-side decoder): the student's labels or the codec's images."""
    if request.param == "student":
        return student, decode_and_classify
    return codec, decode_images


def _images(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value >> 7 else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _split(payload: bytes, n: int) -> tuple[bytes, list[bytes]]:
    """(checksum, each image's words) of a payload of ``n`` images, read by the layout the codec
    documents (written again here, independently of the codec's reader)."""
    pos, counts = CHECK.size, []
    for _ in range(n - 1):
        value = shift = 0
        while True:
            byte = payload[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        counts.append(value)
    words = payload[pos:]
    counts.append(len(words) // 4 - sum(counts))
    ends = np.cumsum([0, *counts]) * 4
    return payload[: CHECK.size], [words[a:b] for a, b in zip(ends[:-1], ends[1:], strict=True)]


def _join(check: bytes, segments: list[bytes]) -> bytes:
    return check + b"".join(_leb128(len(s) // 4) for s in segments[:-1]) + b"".join(segments)


def _coded(model, n: int, seed: int = 0) -> tuple[bytes, tuple[int, int, int, int]]:
    """The payload and shape that ``encode`` writes for ``n`` random images."""
    return unpack(encode(model, _images(n, seed)))


# -- what is accepted -------------------------------------------------------------------------


@FAST
@given(n=st.integers(1, 6), chunk=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_decoding_gives_the_encoded_latent_for_any_chunk_size(student, n, chunk, seed):
    images = _images(n, seed)
    data = encode(student, images, chunk_size=chunk)
    assert torch.equal(decode_latent(student, data), quantized_latent(student, images))
    assert data == encode(student, images, chunk_size=n)  # the bytes do not depend on chunking


def test_encode_holds_one_chunk_at_a_time(student, monkeypatch):
    # Peak work is per chunk: analyze() sees at most chunk_size images, and a chunk's latent is
    # freed once it is coded (at most the current and the previous one are alive).
    images, seen, alive, live = _images(7), [], [], []
    analyze = student.analyze

    def recording(batch: torch.Tensor) -> torch.Tensor:
        alive.append(sum(ref() is not None for ref in live))
        seen.append(batch.shape[0])
        y = analyze(batch)
        live.append(weakref.ref(y))
        return y

    monkeypatch.setattr(student, "analyze", recording)
    data = encode(student, images, chunk_size=3)
    assert seen == [3, 3, 1] and max(alive) <= 1
    monkeypatch.undo()
    assert data == encode(student, images, chunk_size=7)
    assert torch.equal(decode_latent(student, data), quantized_latent(student, images))


def test_image_counts_beyond_16_bits_fit_the_header():
    # 70,000 images (a whole CIFAR-10) did not fit version 1's 16-bit count.
    payload, shape = unpack(pack(b"\x00" * 8, (70_000, 8, 7, 7)))
    assert shape == (70_000, 8, 7, 7) and payload == b"\x00" * 8
    assert len(pack(b"", (127, 8, 7, 7))) == HEADER.size + 1


# -- crafted containers: valid header CRC, wrong payload -------------------------------------


def test_empty_payload(coder):
    model, decode = coder
    for n in (1, 3):
        with pytest.raises(BitstreamError, match="empty payload"):
            decode(model, pack(b"", (n, *model.latent_shape)))


@FAST
@given(payload=st.binary(min_size=1, max_size=400), n=st.integers(1, 4))
def test_random_payload(student, codec, payload, n):
    for model, decode in ((student, decode_and_classify), (codec, decode_images)):
        with pytest.raises(BitstreamError):
            decode(model, pack(payload, (n, *model.latent_shape)))


@FAST
@given(k=st.integers(1, 3), n=st.integers(1, 6), seed=st.integers(0, 99))
def test_payload_for_another_image_count(student, codec, k, n, seed):
    if n == k:
        n += 1
    for model, decode in ((student, decode_and_classify), (codec, decode_images)):
        payload, shape = _coded(model, k, seed)
        with pytest.raises(BitstreamError):
            decode(model, pack(payload, (n, *shape[1:])))


@FAST
@given(k=st.integers(1, 3), extra=st.binary(min_size=1, max_size=12), seed=st.integers(0, 99))
def test_bytes_left_over(student, codec, k, extra, seed):
    for model, decode in ((student, decode_and_classify), (codec, decode_images)):
        payload, shape = _coded(model, k, seed)
        problem = "left over" if len(extra) % 4 == 0 else "into a 32-bit word"
        with pytest.raises(BitstreamError, match=f"image {k} of {k}: .*{problem}"):
            decode(model, pack(payload + extra, shape))


@FAST
@given(k=st.integers(1, 3), cut=st.integers(1, 10_000), seed=st.integers(0, 99))
def test_truncated_payload(student, codec, k, cut, seed):
    for model, decode in ((student, decode_and_classify), (codec, decode_images)):
        payload, shape = _coded(model, k, seed)
        cut = 1 + cut % len(payload)
        short = payload[:-cut]
        problem = ("empty payload" if not short else "runs out" if cut % 4 == 0 or
                   len(short) < CHECK.size + k - 1 else "runs out|into a 32-bit word")
        with pytest.raises(BitstreamError, match=problem):
            decode(model, pack(short, shape))


def test_left_over_and_running_out_name_the_image(coder):
    model, decode = coder
    payload, shape = _coded(model, 3)
    check, segments = _split(payload, 3)
    assert _join(check, segments) == payload  # the test's reading of the layout is right
    longer = [segments[0], segments[1] + b"\x00\x00\x00\x01", segments[2]]
    with pytest.raises(BitstreamError, match="image 2 of 3: 4 bytes left over"):
        decode(model, pack(_join(check, longer), shape))
    shorter = [segments[0][:-4], segments[1], segments[2]]
    with pytest.raises(BitstreamError, match="image 1 of 3: the payload runs out"):
        decode(model, pack(_join(check, shorter), shape))
    # the word counts say image 2 runs past the end of the payload
    table = check + _leb128(len(segments[0]) // 4) + _leb128(10**6)
    with pytest.raises(BitstreamError, match="image 2 of 3: the payload runs out"):
        decode(model, pack(table + b"".join(segments), shape))


def test_each_image_decodes_only_from_its_own_bytes(coder):
    model, decode = coder
    payload, shape = _coded(model, 3, seed=4)
    check, segments = _split(payload, 3)
    assert segments[0] != segments[1]
    swapped = [segments[1], segments[0], segments[2]]  # valid streams, in the wrong places
    with pytest.raises(BitstreamError, match="checksum"):
        decode(model, pack(_join(check, swapped), shape))
    # image 1's last word given to image 2: each stream must end where its symbols end
    moved = [segments[0][:-4], segments[0][-4:] + segments[1], segments[2]]
    with pytest.raises(BitstreamError, match="image 1 of 3"):
        decode(model, pack(_join(check, moved), shape))
    bad_check = struct.pack(">I", struct.unpack(">I", check)[0] ^ 1)
    with pytest.raises(BitstreamError, match="checksum"):
        decode(model, pack(_join(bad_check, segments), shape))


@FAST
@given(image=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_random_words_in_a_well_formed_payload(student, codec, image, seed):
    # layout, word counts and checksum intact; one image's words replaced by random ones
    rng = np.random.default_rng(seed)
    for model, decode in ((student, decode_and_classify), (codec, decode_images)):
        payload, shape = _coded(model, 3)
        check, segments = _split(payload, 3)
        segments[image] = rng.bytes(len(segments[image]))
        with pytest.raises(BitstreamError, match=rf"image {image + 1} of 3|checksum"):
            decode(model, pack(_join(check, segments), shape))


def test_word_counts_must_be_minimal_and_short(coder):
    model, decode = coder
    payload, shape = _coded(model, 2)
    check, segments = _split(payload, 2)
    count = len(segments[0]) // 4
    assert count < 128  # one LEB128 byte; written in two it is not minimal
    with pytest.raises(BitstreamError, match="not minimally coded"):
        decode(model, pack(check + bytes([0x80 | count, 0]) + b"".join(segments), shape))
    with pytest.raises(BitstreamError, match="longer than 5 bytes"):
        decode(model, pack(check + b"\xff" * 6 + b"".join(segments), shape))


def test_version_1_and_foreign_containers(student, images):
    payload, shape = unpack(encode(student, images))
    v1 = struct.pack(">2sBHBBBI", MAGIC, 1, *shape, 0) + payload
    with pytest.raises(BitstreamError, match="version 1; this library reads version 2"):
        decode_and_classify(student, v1)
    with pytest.raises(BitstreamError, match="magic"):
        decode_and_classify(student, b"PK" + encode(student, images)[2:])


# -- non-finite models ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_latents_are_refused_at_encode(value):
    torch.manual_seed(0)
    eb = EntropyBottleneck(4).eval()
    eb.update()
    y = torch.randn(5, 4, 3, 3)
    y[2, 1, 0, 0] = value
    y[4, 0, 2, 1] = value
    with pytest.raises(ValueError, match=r"\(NaN or inf\) at batch indices 2, 4 \(2 images\)"):
        eb.compress(y)
    # numbered across chunks: the second chunk's first image is batch index 3
    with pytest.raises(ValueError, match=r"at batch index 3:"):
        eb.compress_chunks([y[:3].nan_to_num(0.0, 0.0, 0.0), y[3:].flip(0)])


def test_student_with_nan_weights_is_refused(student, images):
    broken = copy.deepcopy(student)
    with torch.no_grad():
        broken.encoder[0].weight[0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match=r"\(NaN or inf\) at batch indices 0, 1, 2 \(3 images\)"):
        encode(broken, images)
    with pytest.raises(ValueError, match=r"not finite \(NaN or inf\) at batch index 0:"):
        encode(broken, images[1:2])
    tail = copy.deepcopy(student)
    with torch.no_grad():
        tail.fc.weight.fill_(math.nan)
    with pytest.raises(ValueError, match="logits are not finite"):
        decode_and_classify(tail, encode(student, images))


def test_codec_with_nan_weights_is_refused(codec, images):
    broken = copy.deepcopy(codec)
    with torch.no_grad():
        broken.decoder[0].weight.fill_(math.nan)
    with pytest.raises(ValueError, match="reconstruction is not finite"):
        decode_images(broken, encode(codec, images))


def test_nan_density_builds_no_tables(student):
    eb = EntropyBottleneck(3)
    with torch.no_grad():
        eb.biases[1][0, 0, 0] = math.nan
    with pytest.raises(ValueError, match=r"biases\.1 hold NaN"):
        eb.update()
    broken = copy.deepcopy(student)
    broken.bottleneck.pmf[0, 0] = math.nan
    with pytest.raises(ValueError, match="coding tables"):
        encode(broken, _images(1))
