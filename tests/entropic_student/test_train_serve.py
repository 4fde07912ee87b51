"""The two training stages (what each freezes, what it learns) and the loopback split demo."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from paperlab.core.seed import torch_threads
from paperlab.entropic_student.model import (
    EntropicStudent,
    decode_and_classify,
    encode,
    load_student,
    save_student,
    teacher_features,
)
from paperlab.entropic_student.serve import ServerError, SplitServer, split_inference
from paperlab.entropic_student.train import (
    StudentConfig,
    relative_errors,
    train_stages,
    train_student,
)
from paperlab.vision.data import ImageSet, normalize
from paperlab.vision.train import QUICK_CIFAR_TEACHER


def _toy_set(n: int = 48) -> ImageSet:
    gen = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return ImageSet(images, torch.arange(n) % 10, tuple(str(i) for i in range(10)), "toy")


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values(), strict=True))


def test_stages_freeze_what_the_spec_freezes():
    data = _toy_set()
    cfg = StudentConfig(beta=0.5, b=4, stage1_steps=3, stage2_steps=3, batch_size=16)
    with torch_threads(1):
        torch.manual_seed(0)
        teacher = QUICK_CIFAR_TEACHER.build().eval()
        teacher_before = copy.deepcopy(teacher)
        student = EntropicStudent(teacher, b=4)
        start = copy.deepcopy(student)
        # stage 1 only: the copied tail must not move, the head must
        history = train_stages(student, teacher, data, dataclasses.replace(cfg, stage2_steps=0))
        assert _same(student.layer3, start.layer3) and _same(student.fc, start.fc)
        assert not _same(student.encoder, start.encoder)
        assert [r["step"] for r in history["stage1"]] == [1, 2, 3] and history["stage2"] == []
        assert history["stage1"][0]["bits"] > 0 and history["stage1"][0]["sse_layer1"] > 0
        after1 = copy.deepcopy(student)
        # stage 2: encoder and entropy model frozen, the tail fine-tuned
        train_stages(student, teacher, data, dataclasses.replace(cfg, stage1_steps=0))
        assert _same(student.encoder, after1.encoder)
        assert torch.equal(student.bottleneck.quantiles, after1.bottleneck.quantiles)
        assert not _same(student.fc, after1.fc) and not _same(student.decoder, after1.decoder)
        assert _same(teacher, teacher_before)
        assert student.bottleneck.pmf.numel() > 0


def test_history_curves_decay_and_held_out_checks():
    data = _toy_set(32)
    cfg = StudentConfig(beta=0.5, b=4, stride=2, stage1_steps=40, stage2_steps=8, batch_size=8,
                        stage1_decay_at=(0.5, 0.8), stage2_decay_at=(0.5,))
    with torch_threads(1):
        torch.manual_seed(0)
        teacher = QUICK_CIFAR_TEACHER.build().eval()
        student = EntropicStudent(teacher, b=4, stride=2)
        history = train_stages(student, teacher, data, cfg, held_out=data)
    stage1, stage2 = history["stage1"], history["stage2"]
    assert [r["step"] for r in stage1] == list(range(2, 41, 2))  # 20 windows of 2 steps
    assert {r["lr"] for r in stage1 if r["step"] <= 20} == {1e-3}
    assert stage1[-1]["lr"] == pytest.approx(1e-5) and stage1[10]["lr"] == pytest.approx(1e-4)
    assert [r["step"] for r in stage2] == list(range(1, 9))
    assert [r["step"] for r in stage2 if "held_out_acc" in r] == [2, 4, 6, 8]
    assert stage2[0]["lr"] == cfg.stage2_lr
    assert stage2[-1]["lr"] == pytest.approx(cfg.stage2_lr / 10)
    assert set(history["relative_errors"]) == {"layer1", "layer2", "layer3", "layer4"}
    assert 0 <= history["acc_after_stage1"] <= 1
    # the relative errors, checked against a direct computation
    with torch.no_grad():
        ours = relative_errors(student, teacher, data.images[:5])
        x = normalize(data.images[:5])
        theirs = teacher_features(teacher, x)[0]
        stage1 = student.decoder(student.bottleneck.quantize(student.encoder(x)))
        direct = float(((stage1 - theirs) ** 2).mean() / theirs.var(unbiased=False))
    assert ours["layer1"] == pytest.approx(direct, rel=1e-4)


def test_a_perfect_copy_has_no_relative_error():
    # a "student" whose every distilled output is the teacher's own: relative error 0
    data = _toy_set(8)
    with torch_threads(1):
        teacher = QUICK_CIFAR_TEACHER.build().eval()
        student = EntropicStudent(teacher, b=4).eval()

        def copy_of_teacher(x):
            feats = teacher_features(teacher, x)
            return feats, torch.ones(x.shape[0], *student.latent_shape)

        student.forward = copy_of_teacher
        errors = relative_errors(student, teacher, data.images)
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in errors.values())


def test_rate_weight_buys_fewer_bytes():
    # a large beta must give a shorter real bitstream than beta = 0 after the same training
    data = _toy_set(64)
    sizes = {}
    with torch_threads(1):
        teacher = QUICK_CIFAR_TEACHER.build().eval()
        for beta in (0.0, 100.0):
            torch.manual_seed(0)
            student = EntropicStudent(teacher, b=4)
            train_stages(student, teacher, data, StudentConfig(
                beta=beta, b=4, stage1_steps=12, stage2_steps=0, batch_size=16, augment=False,
                stage1_lr=1e-2, stage1_decay_at=()))
            sizes[beta] = len(encode(student.eval(), data.images[:16]))
    assert sizes[100.0] < 0.8 * sizes[0.0]


def test_student_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path))
    data = _toy_set(16)
    cfg = StudentConfig(b=4, stage1_steps=3, stage2_steps=3, batch_size=16)
    with torch_threads(1):
        teacher = QUICK_CIFAR_TEACHER.build().eval()
        first = train_student(teacher, data, cfg, teacher_key="t", held_out=data)
        again = train_student(teacher, data, cfg, teacher_key="t")
    assert not first.cached and again.cached and first.path == again.path
    assert first.path.is_relative_to(tmp_path) and again.history == first.history
    assert "relative_errors" in again.history  # the history comes back with the cached model
    assert encode(first.model, data.images[:2]) == encode(again.model, data.images[:2])


@pytest.mark.parametrize("stride", [2, 4])
@pytest.mark.parametrize("spec", ["quick", "resnet18"])
def test_geometry_and_save_load_round_trip(tmp_path, stride, spec, images):
    from paperlab.vision.models import ResNetSpec

    with torch_threads(1):
        torch.manual_seed(0)
        teacher = (QUICK_CIFAR_TEACHER if spec == "quick" else ResNetSpec()).build().eval()
        student = EntropicStudent(teacher, b=5, stride=stride).eval()
        student.bottleneck.update()
        side = 32 // stride
        assert student.latent_shape == (5, side, side)
        with torch.no_grad():
            x = normalize(images)
            feats, lik = student(x)
            target = teacher_features(teacher, x)
        assert [f.shape for f in feats] == [t.shape for t in target]  # 32x32 stage-1 map
        assert lik.shape == (3, 5, side, side)
        save_student(student, tmp_path / "s.pt")
        again = load_student(tmp_path / "s.pt")
        assert (again.stride, again.widths, again.blocks) == (stride, student.widths,
                                                              student.blocks)
        data = encode(student, images)
        assert encode(again, images) == data
        assert torch.equal(decode_and_classify(again, data), decode_and_classify(student, data))


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
