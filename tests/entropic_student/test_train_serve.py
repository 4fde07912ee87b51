"""The two training stages (what each freezes, what it learns) and the loopback split demo."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from paperlab.core.seed import torch_threads
from paperlab.entropic_student.model import (
    EntropicStudent,
    TeacherSpec,
    decode_and_classify,
    encode,
    save_student,
)
from paperlab.entropic_student.serve import ServerError, SplitServer, split_inference
from paperlab.entropic_student.train import StudentConfig, train_stages, train_student
from paperlab.vision.data import ImageSet


def _toy_set(n: int = 48) -> ImageSet:
    gen = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return ImageSet(images, torch.arange(n) % 10, tuple(str(i) for i in range(10)), "toy")


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values(), strict=True))


def test_stages_freeze_what_the_spec_freezes():
    data = _toy_set()
    cfg = StudentConfig(beta=0.5, b=4, stage1_epochs=1, stage2_epochs=1, batch_size=16)
    with torch_threads(1):
        torch.manual_seed(0)
        teacher = TeacherSpec().build().eval()
        teacher_before = copy.deepcopy(teacher)
        student = EntropicStudent(teacher, b=4)
        start = copy.deepcopy(student)
        # stage 1 only: the copied tail must not move, the head must
        history = train_stages(student, teacher, data,
                               StudentConfig(beta=0.5, b=4, stage1_epochs=1, stage2_epochs=0,
                                             batch_size=16))
        assert _same(student.layer3, start.layer3) and _same(student.fc, start.fc)
        assert not _same(student.encoder, start.encoder)
        assert history[0]["stage"] == 1 and history[0]["bpp"] > 0
        after1 = copy.deepcopy(student)
        # stage 2: encoder and entropy model frozen, the tail fine-tuned
        train_stages(student, teacher, data, dataclasses.replace(cfg, stage1_epochs=0))
        assert _same(student.encoder, after1.encoder)
        assert torch.equal(student.bottleneck.quantiles, after1.bottleneck.quantiles)
        assert not _same(student.fc, after1.fc) and not _same(student.decoder, after1.decoder)
        assert _same(teacher, teacher_before)
        assert student.bottleneck.pmf.numel() > 0


def test_rate_weight_buys_fewer_bytes():
    # a large beta must give a shorter real bitstream than beta = 0 after the same training
    data = _toy_set(64)
    sizes = {}
    with torch_threads(1):
        teacher = TeacherSpec().build().eval()
        for beta in (0.0, 20.0):
            torch.manual_seed(0)
            student = EntropicStudent(teacher, b=4)
            train_stages(student, teacher, data, StudentConfig(
                beta=beta, b=4, stage1_epochs=3, stage2_epochs=0, batch_size=16, augment=False,
                stage1_lr=1e-2))
            sizes[beta] = len(encode(student.eval(), data.images[:16]))
    assert sizes[20.0] < 0.8 * sizes[0.0]


def test_student_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path))
    data = _toy_set(16)
    cfg = StudentConfig(b=4, stage1_epochs=1, stage2_epochs=1, batch_size=16)
    with torch_threads(1):
        teacher = TeacherSpec().build().eval()
        first, path, cached, _ = train_student(teacher, data, cfg, teacher_key="t")
        again, path2, cached2, _ = train_student(teacher, data, cfg, teacher_key="t")
    assert not cached and cached2 and path == path2 and path.is_relative_to(tmp_path)
    assert encode(first, data.images[:2]) == encode(again, data.images[:2])


def test_socket_demo_round_trips_a_batch(student, images, tmp_path):
    path = tmp_path / "student.pt"
    save_student(student, path)
    local = decode_and_classify(student, encode(student, images))
    with SplitServer(path, timeout_s=30) as server:
        reply = server.classify_bytes(encode(student, images))
        assert torch.equal(reply.labels, local)
        assert reply.bytes_sent == len(encode(student, images))
        rows = split_inference(student, server, images)
        assert [r["label"] for r in rows] == local.tolist()
        assert all(r["end_to_end_ms"] >= r["encode_ms"] > 0 for r in rows)
        # a corrupted bitstream gets an error reply, and the session goes on
        bad = bytearray(encode(student, images))
        bad[-1] ^= 0xFF
        with pytest.raises(ServerError, match="corrupted"):
            server.classify_bytes(bytes(bad))
        assert torch.equal(server.classify_bytes(encode(student, images[:1])).labels, local[:1])
    assert server._proc is None
