"""The trainer: cache hit, retrain, resume after an interruption equals an uninterrupted run,
a CNN with SGD, deterministic augmentation."""

from __future__ import annotations

import pytest
import torch

from paperlab.vision.data import ImageSet
from paperlab.vision.models import ResNetSpec, ViTSpec
from paperlab.vision.train import TrainConfig, accuracy, augment, checkpoint_path, fit, predict

SPEC = ViTSpec(dim=16, depth=1, heads=2, img_size=8, patch_size=4, drop_path=0.1)
CFG = TrainConfig(epochs=2, batch_size=16, warmup_epochs=0.5)


def _data(n=48, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    return ImageSet(images, torch.randint(0, 10, (n,), generator=g), tuple("abcdefghij"), "toy")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path))


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values(), strict=True))


def test_cache_hit_and_retrain():
    data = _data()
    first = fit(SPEC, data, CFG)
    assert not first.cached and first.path.exists() and len(first.history) == 2
    again = fit(SPEC, data, CFG)
    assert again.cached and _same(first.model, again.model)
    assert again.history == first.history
    retrained = fit(SPEC, data, CFG, retrain=True)
    assert not retrained.cached and _same(first.model, retrained.model)  # deterministic
    other = checkpoint_path(SPEC, CFG, _data(seed=1))
    assert other != first.path  # the data is part of the key


def test_resume_equals_uninterrupted(monkeypatch):
    data = _data()
    reference = fit(SPEC, data, CFG, cache=False)
    calls = {"n": 0}
    step = torch.optim.AdamW.step

    def failing_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # the first step of epoch 2 (3 steps per epoch)
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", failing_step)
    with pytest.raises(KeyboardInterrupt):
        fit(SPEC, data, CFG)
    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    assert checkpoint_path(SPEC, CFG, data).with_suffix(".partial").exists()
    resumed = fit(SPEC, data, CFG)
    assert resumed.resumed_at == 1 and not resumed.cached
    assert _same(resumed.model, reference.model)
    assert not checkpoint_path(SPEC, CFG, data).with_suffix(".partial").exists()


def test_resnet_cifar_stem_trains_with_sgd():
    spec = ResNetSpec()
    model = spec.build()
    assert model.conv1.stride == (1, 1) and isinstance(model.maxpool, torch.nn.Identity)
    data = _data(n=8, size=32)
    cfg = TrainConfig(epochs=1, batch_size=8, optimizer="sgd", lr=0.05, warmup_epochs=0)
    trained = fit(spec, data, cfg, cache=False)
    assert predict(trained.model, data.images).shape == (8,)
    assert 0.0 <= accuracy(trained.model, data) <= 1.0


def test_learns_an_easy_task():
    """Bright vs dark images: a tiny ViT must separate them after a few epochs."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(64) % 2
    images = (labels[:, None, None, None] * 150 + torch.randint(0, 100, (64, 3, 8, 8),
                                                              generator=g)).to(torch.uint8)
    data = ImageSet(images, labels, ("dark", "bright"), "toy")
    spec = ViTSpec(dim=16, depth=1, heads=2, img_size=8, patch_size=4, num_classes=2,
                   drop_path=0.0)
    trained = fit(spec, data, TrainConfig(epochs=6, batch_size=16, lr=3e-3, warmup_epochs=0.5,
                                          augment=False), cache=False)
    assert accuracy(trained.model, data) > 0.9


def test_augment_and_config_checks():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).reshape(2, 3, 8, 8).to(torch.uint8)
    out1 = augment(images, torch.Generator().manual_seed(0))
    out2 = augment(images, torch.Generator().manual_seed(0))
    assert out1.shape == images.shape and torch.equal(out1, out2)
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=0)
    assert CFG.lr_at(0, 100, 10) == pytest.approx(CFG.lr / 5)
    assert CFG.lr_at(100, 100, 10) == pytest.approx(0.0)


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not a checkpoint", b"PK\x03\x04zip?"])
def test_a_garbage_cached_checkpoint_is_named(tmp_path, content):
    from paperlab.core.checkpoint import CheckpointError, load

    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="model.pt"):
        load(path)


def test_a_torch_file_that_is_not_a_model_checkpoint_is_named(tmp_path):
    import torch

    from paperlab.core.checkpoint import CheckpointError, load

    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="expected the fields model"):
        load(path)


def test_cifar_resnet_has_torchvision_layout_and_stage_shapes():
    from paperlab.vision.models import CifarResNetSpec

    model = CifarResNetSpec(widths=(4, 8, 16, 32)).build().eval()
    x = torch.randn(2, 3, 32, 32)
    h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    shapes = []
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        h = layer(h)
        shapes.append(tuple(h.shape[1:]))
    assert shapes == [(4, 32, 32), (8, 16, 16), (16, 8, 8), (32, 4, 4)]
    assert torch.allclose(model.fc(torch.flatten(model.avgpool(h), 1)), model(x))
    with pytest.raises(ValueError, match="4 stages"):
        CifarResNetSpec(widths=(4, 8, 16))
    with pytest.raises(ValueError, match=">= 1"):
        CifarResNetSpec(blocks=(1, 0, 1, 1))


def _bright_dark(n=64, size=8):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    images = (labels[:, None, None, None] * 150 + torch.randint(0, 100, (n, 3, size, size),
                                                              generator=g)).to(torch.uint8)
    return ImageSet(images, labels, ("dark", "bright"), "toy")


class _Oracle(torch.nn.Module):
    """A 'teacher' that answers class 1 for every image: the distillation head must learn it."""

    def forward(self, x):
        return torch.tensor([[0.0, 1.0]]).expand(x.shape[0], -1)


def test_hard_distillation_trains_the_dist_head_on_teacher_labels(tmp_path):
    from paperlab.vision.train import Trained

    data = _bright_dark()
    spec = ViTSpec(dim=16, depth=1, heads=2, img_size=8, patch_size=4, num_classes=2,
                   drop_path=0.0, distilled=True)
    teacher = Trained(_Oracle(), tmp_path / "oracle.pt", True)
    cfg = TrainConfig(epochs=8, batch_size=16, lr=3e-3, warmup_epochs=0.5, augment=False)
    student = fit(spec, data, cfg, teacher=teacher, cache=False).model
    assert student.num_prefix_tokens == 2 and not student.distilled_training
    from paperlab.vision.data import normalize

    x = normalize(data.images)
    with torch.no_grad():
        feats = student.forward_features(x)
        cls_pred = student.head(feats[:, 0]).argmax(-1)
        dist_pred = student.head_dist(feats[:, 1]).argmax(-1)
    assert (cls_pred == data.labels).float().mean() > 0.9  # the class head learned the labels
    assert (dist_pred == 1).float().mean() > 0.9  # the distillation head learned the teacher


def test_distillation_key_names_the_teacher_and_needs_a_dist_head(tmp_path):
    from paperlab.vision.train import Trained

    data = _bright_dark()
    spec = ViTSpec(dim=16, depth=1, heads=2, img_size=8, patch_size=4, num_classes=2,
                   distilled=True)
    a = Trained(_Oracle(), tmp_path / "a.pt", True)
    b = Trained(_Oracle(), tmp_path / "b.pt", True)
    assert checkpoint_path(spec, CFG, data, a) != checkpoint_path(spec, CFG, data, b)
    assert checkpoint_path(spec, CFG, data, a) != checkpoint_path(spec, CFG, data)
    plain = ViTSpec(dim=16, depth=1, heads=2, img_size=8, patch_size=4, num_classes=2)
    with pytest.raises(ValueError, match="distillation head"):
        fit(plain, data, CFG, teacher=a, cache=False)


def test_fit_cifar10_shares_one_teacher_across_student_seeds(monkeypatch):
    import paperlab.vision.train as train_mod
    from paperlab.vision.models import CifarResNetSpec

    data = _bright_dark(n=32, size=32)
    monkeypatch.setattr(train_mod, "load_cifar10", lambda split, root, per_class: data)
    student = ViTSpec(dim=16, depth=1, heads=2, img_size=32, patch_size=8, num_classes=2,
                      distilled=True)
    teacher = (CifarResNetSpec(widths=(4, 4, 8, 8), num_classes=2),
               TrainConfig(epochs=1, batch_size=16, optimizer="sgd", lr=0.05, warmup_epochs=0))
    cfg = TrainConfig(epochs=1, batch_size=16, warmup_epochs=0)
    _, _, first = train_mod.fit_cifar10(student, cfg, data_root=None, per_class=None, seed=1,
                                        teacher=teacher)
    _, _, second = train_mod.fit_cifar10(student, cfg, data_root=None, per_class=None, seed=2,
                                         teacher=teacher)
    assert not first["teacher"]["cached"] and second["teacher"]["cached"]
    assert first["teacher"]["checkpoint"] == second["teacher"]["checkpoint"]
    assert first["checkpoint"] != second["checkpoint"] and not second["cached"]


def test_bf16_trains_a_cnn_and_keeps_float32_keys(monkeypatch):
    """bf16 autocast learns the easy task with float32 weights, is its own cache entry, and a
    float32 configuration's key is the one it had before the field existed."""
    import hashlib
    import json
    from dataclasses import asdict

    from paperlab.vision.models import CifarResNetSpec

    data = _bright_dark()
    spec = CifarResNetSpec(widths=(4, 8, 8, 8), blocks=(1, 1, 1, 1), num_classes=2)
    cfg = TrainConfig(epochs=6, batch_size=16, optimizer="sgd", lr=0.05, warmup_epochs=0.5,
                      augment=False, bf16=True)
    trained = fit(spec, data, cfg, cache=False)
    assert trained.bf16 and all(p.dtype == torch.float32 for p in trained.model.parameters())
    assert accuracy(trained.model, data) > 0.9
    fp32 = TrainConfig(epochs=6, batch_size=16, optimizer="sgd", lr=0.05, warmup_epochs=0.5,
                       augment=False)
    assert checkpoint_path(spec, cfg, data) != checkpoint_path(spec, fp32, data)
    legacy = asdict(fp32)
    del legacy["bf16"]
    key = json.dumps({"model": spec.key(), "train": legacy, "data": data.fingerprint()},
                     sort_keys=True)
    digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    assert checkpoint_path(spec, fp32, data).name == f"CifarResNetSpec-{digest}.pt"
