"""The reproduction, the socket demo and the benchmark end to end at toy size (real CIFAR-10
JPEGs; skipped when they are not staged), and the summary helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlab.entropic_student.experiment import (
    NEURAL_CODEC,
    RAW_BYTES,
    STUDENT,
    Config,
    acc_gap_at_interval,
    add_end_to_end,
    best_acc_at,
    bytes_saved_near_teacher,
    bytes_to_reach,
    min_bytes_at,
    scored,
)
from paperlab.entropic_student.train import CodecConfig, StudentConfig
from paperlab.vision.train import QUICK_CIFAR_TEACHER, TrainConfig

TOY = Config(
    teacher=QUICK_CIFAR_TEACHER,
    teacher_train=TrainConfig(epochs=1, batch_size=50, optimizer="sgd", lr=0.05,
                              warmup_epochs=0.5, label_smoothing=0.0, augment=False),
    train_per_class=5,
    student=StudentConfig(b=4, stage1_steps=3, stage2_steps=4, batch_size=25),
    betas=(0.1, 2.0),
    codec=CodecConfig(n=8, m=8, steps=7, batch_size=25),
    lambdas=(1.0, 1000.0),
    eval_images=20,
    monitor_images=10,
    codecs=("jpeg", "webp"),
    qualities=(10, 90),
    latency_images=2,
    bench_qualities=(50,),
    bench_images=3,
    bench_repeats=1,
    serve_images=10,
)


@pytest.fixture
def ctx(cifar_run_context):
    return cifar_run_context("entropic_student")


def test_run_bench_and_serve_toy(ctx):
    import dataclasses

    from paperlab.entropic_student.experiment import bench, run

    result = run(ctx, TOY)
    assert set(result.summary) >= {"acc_teacher", "acc_student_at_300_bytes",
                                   "acc_webp_at_300_bytes", "bytes_student_at_teacher_minus_2pts",
                                   "bytes_webp_at_teacher_minus_2pts",
                                   "acc_neural_codec_at_300_bytes",
                                   "bytes_neural_codec_at_teacher_minus_2pts"}
    students = [r for r in result.results if r["method"] == STUDENT]
    assert len(students) == 2 and all(12 < r["bytes_per_image"] < 3072 for r in students)
    neural = [r for r in result.results if r["method"] == NEURAL_CODEC]
    assert [r["setting"] for r in neural] == ["lambda=1", "lambda=1000"]
    assert all(12 < r["bytes_per_image"] < 3072 and 0 <= r["acc"] <= 1 for r in neural)
    jpeg = {r["setting"]: r for r in result.results if r["method"] == "JPEG"}
    assert jpeg["q=10"]["bytes_per_image"] < jpeg["q=90"]["bytes_per_image"]
    assert jpeg["q=10"]["payload_bytes_per_image"] < jpeg["q=10"]["bytes_per_image"] - 300
    for row in result.results:  # payloads leave the headers out
        assert 0 < row["payload_bytes_per_image"] <= row["bytes_per_image"]
    for row in students + neural:  # the 15-byte container of a one-image bitstream
        assert row["payload_bytes_per_image"] == row["bytes_per_image"] - 15
        assert row["train_steps"] == 7  # equal optimisation budgets
    for row in students:  # paired against the nearest-bytes WebP and neural codec
        assert row["vs_nearest_webp"].startswith("q=") and "p=" in row["vs_nearest_webp"]
        assert row["vs_nearest_neural_codec"].startswith("lambda=")
    comparisons = result.data["training"]["comparisons"]
    assert set(comparisons) == {"beta=0.1", "beta=2"}
    versus = comparisons["beta=0.1"]["webp"]
    assert versus["acc_gap_ci95"]["lo"] <= versus["acc_gap"] <= versus["acc_gap_ci95"]["hi"]
    history = result.data["training"]["students"]["0.1"]["history"]
    assert set(history["relative_errors"]) == {"layer1", "layer2", "layer3", "layer4"}
    assert len(result.data["training"]["codecs"]["1"]["history"]) == 7
    assert any("Convergence, beta=0.1" in note for note in result.notes)
    assert all("e2e_ms_0.1Mbps" in r for r in result.results)
    for row in result.results:
        assert row["acc_ci95"]["lo"] <= row["acc"] <= row["acc_ci95"]["hi"]
    summary = result.summary
    for name in ("webp", "neural_codec"):
        ci = summary[f"acc_student_minus_{name}_at_300_bytes_ci95"]
        gap = summary["acc_student_at_300_bytes"] - summary[f"acc_{name}_at_300_bytes"]
        assert ci["lo"] <= gap <= ci["hi"]
    ci = summary["bytes_saved_vs_webp_at_teacher_minus_2pts_ci95"]
    assert ci["lo"] <= summary["bytes_saved_vs_webp_at_teacher_minus_2pts"] <= ci["hi"]
    assert (ctx.out_dir / "entropic_student_rate_accuracy.png").exists()
    assert (ctx.out_dir / "entropic_student_training.png").exists()

    demo = run(ctx, dataclasses.replace(TOY, serve=True))
    assert demo.summary["images"] == 10 and demo.summary["agrees_with_local"]
    assert demo.summary["mean_bytes_sent"] == pytest.approx(
        students[0]["bytes_per_image"], rel=0.5)

    timed = bench(ctx, TOY)
    assert {r["encoder"] for r in timed.results} == {
        f"{STUDENT} beta=0.1", f"{STUDENT} beta=2", f"{NEURAL_CODEC} lambda=1",
        f"{NEURAL_CODEC} lambda=1000", "JPEG q=50", "WebP q=50"}
    assert timed.summary["neural_codec_encode_ms_batch1"] > 0
    assert all(r["encode_ms_per_image"] > 0 for r in timed.results)


def test_test_sets_are_disjoint(ctx):
    from paperlab.entropic_student.experiment import test_sets

    test, monitor = test_sets(ctx, TOY)
    assert len(test) == 20 and len(monitor) == 10
    assert torch.bincount(test.labels).tolist() == [2] * 10
    assert torch.bincount(monitor.labels).tolist() == [1] * 10
    seen = {bytes(img.numpy()) for img in test.images}
    assert not any(bytes(img.numpy()) in seen for img in monitor.images)


def test_versus_nearest():
    from paperlab.entropic_student.experiment import versus_nearest

    rng = np.random.default_rng(2)
    ours = _setting("S", (rng.random(400) < 0.8).tolist(), 120.0)
    near, far = (rng.random(400) < 0.6).tolist(), (rng.random(400) < 0.9).tolist()
    results = [ours, _setting("W", far, 400.0), _setting("W", near, 100.0)]
    got = versus_nearest(ours, results, "W")
    assert got["bytes_per_image"] == 100.0 and got["setting"] == "100.0"
    assert got["acc_gap"] == pytest.approx(ours.correct.mean() - np.mean(near))
    assert got["acc_gap_ci95"]["lo"] > 0 and got["mcnemar_p"] < 0.001
    assert versus_nearest(ours, results, "AVIF") is None


def test_summary_helpers():
    rows = [
        {"method": "A", "bytes_per_image": 100.0, "acc": 0.5},
        {"method": "A", "bytes_per_image": 250.0, "acc": 0.7},
        {"method": "A", "bytes_per_image": 900.0, "acc": 0.8},
        {"method": "B", "bytes_per_image": 50.0, "acc": 0.9},
    ]
    assert best_acc_at(rows, "A", 300) == 0.7
    assert best_acc_at(rows, "A", 99) is None
    assert min_bytes_at(rows, "A", 0.7) == 250.0
    assert min_bytes_at(rows, "A", 0.85) is None
    timed = [{"bytes_per_image": 1250.0, "encode_ms": 1.0, "server_ms": 2.0}]
    add_end_to_end(timed, (1.0, 10.0))
    assert timed[0]["e2e_ms_1Mbps"] == pytest.approx(1 + 10 + 2)
    assert timed[0]["e2e_ms_10Mbps"] == pytest.approx(1 + 1 + 2)


def _setting(method: str, correct: list[bool], size: float):
    return scored(method, f"{size}", torch.tensor(correct), [size] * len(correct),
                  [size] * len(correct))


def test_acc_gap_interval_at_the_budget():
    rng = np.random.default_rng(0)
    a, b, big = (rng.random(200) < p for p in (0.6, 0.4, 0.9))
    results = [_setting("A", a.tolist(), 250.0), _setting("A", big.tolist(), 900.0),
               _setting("B", b.tolist(), 100.0)]
    ci = acc_gap_at_interval(results, "A", "B", 300)
    point = best_acc_at([r.row for r in results], "A", 300) - best_acc_at(
        [r.row for r in results], "B", 300)
    assert ci["lo"] <= point <= ci["hi"] and ci["lo"] > 0  # the 900 B setting does not count
    assert ci["hi"] < big.mean() - b.mean()
    assert acc_gap_at_interval(results, "A", "B", 99) is None
    same = acc_gap_at_interval(results, "B", "B", 300)
    assert (same["lo"], same["hi"]) == (0.0, 0.0)


def test_bytes_to_reach_falls_back_to_the_raw_image():
    correct = np.array([[True, True], [False, True], [True, True], [False, False]])
    sizes = np.array([[100.0, 300.0]] * 4)
    assert bytes_to_reach(correct, sizes, 0.5) == 100.0
    assert bytes_to_reach(correct, sizes, 0.75) == 300.0
    assert bytes_to_reach(correct, sizes, 0.8) == RAW_BYTES


def test_bytes_saved_near_the_teacher():
    rng = np.random.default_rng(1)
    n = 300
    teacher = _setting("teacher", (rng.random(n) < 0.8).tolist(), RAW_BYTES)
    good_cheap, poor = (rng.random(n) < 0.85).tolist(), (rng.random(n) < 0.3).tolist()
    results = [teacher, _setting("S", good_cheap, 80.0), _setting("W", poor, 150.0),
               _setting("W", good_cheap, 250.0)]
    point, ci = bytes_saved_near_teacher(results, teacher, "S", "W")
    assert point == 250.0 - 80.0 and ci["lo"] > 0 and ci["lo"] <= point <= ci["hi"]
    # A student that never gets near the teacher needs the raw image: clearly more bytes.
    never = [teacher, _setting("S", poor, 80.0), *results[2:]]
    point, ci = bytes_saved_near_teacher(never, teacher, "S", "W")
    assert point == 250.0 - RAW_BYTES and ci["hi"] < 0
    assert bytes_saved_near_teacher(results, teacher, "S", "AVIF") is None
