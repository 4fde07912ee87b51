"""Input-compression baselines: Pillow JPEG, WebP and AVIF at a quality setting, in memory.

:func:`encode_image` -> the complete file bytes (what would be sent);
:func:`decode_image` -> ``uint8 (3, H, W)``; :func:`payload_bytes` -> the coded image data
without the file format's headers, which dominate a 32x32 file: a JPEG's entropy-coded segment
(:func:`jpeg_payload_bytes`: the file minus its markers and tables, SOI, APP0, DQT, SOF, DHT, SOS
header, EOI), a WebP's ``VP8``/``VP8L``/``ALPH`` chunk data (minus the RIFF header and chunk
headers, 20 bytes for a lossy file), an AVIF's ``mdat`` box data (minus the ``ftyp`` and
``meta`` boxes, ~270 bytes at 32x32).
"""

from __future__ import annotations

import io

import numpy as np
import torch

FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}


def available_codecs(names: tuple[str, ...] = tuple(FORMATS)) -> tuple[str, ...]:
    """The codecs of ``names`` this Pillow build can write (AVIF needs libavif)."""
    from PIL import features

    checks = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}
    return tuple(n for n in names if features.check(checks[n]))


def encode_image(image: torch.Tensor, codec: str, quality: int) -> bytes:
    """One ``uint8 (3, H, W)`` image -> ``codec`` file bytes at ``quality`` (1..100)."""
    from PIL import Image

    if codec not in FORMATS:
        raise ValueError(f"unknown codec {codec!r}; choose from {sorted(FORMATS)}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a uint8 (3, H, W) image, got {image.dtype} "
                         f"{tuple(image.shape)}")
    buf = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buf, FORMATS[codec], quality=quality)
    return buf.getvalue()


def decode_image(data: bytes) -> torch.Tensor:
    """File bytes -> ``uint8 (3, H, W)`` (RGB)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        array = np.asarray(img.convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def jpeg_payload_bytes(data: bytes) -> int:
    """Bytes of a single-scan JPEG's entropy-coded data (after the SOS header, before EOI)."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"malformed JPEG: expected a marker at byte {pos}")
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:  # start of scan: the entropy-coded data follows its header
            start = pos + 2 + length
            end = len(data) - 2 if data[-2:] == b"\xff\xd9" else len(data)
            return end - start
        pos += 2 + length
    raise ValueError("malformed JPEG: no start-of-scan marker")


def _webp_payload_bytes(data: bytes) -> int:
    """Bytes of a WebP file's image chunks (``VP8 ``, ``VP8L``, ``ALPH``) without headers."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file (no RIFF/WEBP header)")
    pos, total = 12, 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if data[pos : pos + 4] in (b"VP8 ", b"VP8L", b"ALPH"):
            total += size
        pos += 8 + size + (size & 1)
    if pos != len(data) or not total:
        raise ValueError("malformed WebP: its chunks do not fill the file or hold no image")
    return total


def _avif_payload_bytes(data: bytes) -> int:
    """Bytes of an AVIF file's ``mdat`` boxes' data (the AV1 bitstream) without headers."""
    pos, total, found = 0, 0, False
    while pos + 8 <= len(data):
        size, kind, head = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8], 8
        if size == 1:
            size, head = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = len(data) - pos
        if size < head:
            raise ValueError(f"malformed AVIF: a box of {size} bytes at byte {pos}")
        if kind == b"mdat":
            total, found = total + size - head, True
        pos += size
    if pos != len(data) or not found:
        raise ValueError("malformed AVIF: its boxes do not fill the file or hold no mdat")
    return total


def payload_bytes(data: bytes, codec: str) -> int:
    """Bytes of ``codec``'s coded image data in the file ``data``, without the format's headers
    (see the module docstring)."""
    readers = {"jpeg": jpeg_payload_bytes, "webp": _webp_payload_bytes,
               "avif": _avif_payload_bytes}
    if codec not in readers:
        raise ValueError(f"unknown codec {codec!r}; choose from {sorted(readers)}")
    return readers[codec](data)
