"""The vision ablation (:mod:`paperlab.pitome.ablation_vision`) on an untrained quick-size
distilled ViT and a few random images: the tables' fields and their consistency, keep 1.0,
the token kinds against PiToMe's plan, the test-image choice, ``paperlab pitome ablate
--modality vision`` end to end, and bad input."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from paperlab import cli
from paperlab.core.data import DataNotFoundError
from paperlab.core.seed import torch_threads
from paperlab.merging.energy import PiToMeRule, layer_margins, layer_protect
from paperlab.merging.plan import merge_state
from paperlab.pitome import ablation_vision as av
from paperlab.pitome.experiment import Config
from paperlab.pitome.merge import patch as pitome_patch
from paperlab.vision.data import CLASSES, ImageSet, normalize
from paperlab.vision.train import QUICK_CIFAR_VIT

IMAGES = 12


def tiny_cfg(**changes) -> av.VisionAblationConfig:
    vision = dataclasses.replace(Config.quick(), eval_images=IMAGES, threads=1)
    return av.VisionAblationConfig(vision=vision, **{"margins": (0.0,), **changes})


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return QUICK_CIFAR_VIT.build().eval()


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (IMAGES, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return ImageSet(pixels, torch.arange(IMAGES) % 10, CLASSES, "random pixels")


@pytest.fixture(scope="module")
def measured(vit, images):
    """Every variant, in batches of 5 (module-scoped fixtures come before the suite's
    one-thread fixture, so the thread count is set here)."""
    with torch_threads(1):
        return av.analyse(vit, images, tiny_cfg(batch_size=5), seed=0, nth=np.arange(IMAGES) // 10)


def test_rows_and_summary(measured):
    rows, summary, _ = measured
    names = [r["method"] for r in rows]
    assert names[:3] == [av.FULL, av.PITOME, av.TOME] and len(set(names)) == len(names)
    assert "PiToMe m_0 = 0.0" in names and any("random" in n for n in names)
    assert {"PiToMe with proportional attention",
            "ToMe matched without proportional attention"} <= set(names)
    by = {r["method"]: r for r in rows}
    assert by[av.PITOME]["mflops"] == pytest.approx(by[av.TOME]["mflops"])
    assert all(r["mflops"] == pytest.approx(by[av.PITOME]["mflops"]) for r in rows[1:])
    assert by[av.FULL]["flops_saved"] == 0 and by[av.FULL]["same_as_full"] == 1
    assert 0 < summary["flops_saved"] < 1
    for r in rows:
        assert r["acc_ci95"]["lo"] <= r["acc"] <= r["acc_ci95"]["hi"]
        ci = r["minus_tome_ci95"]
        assert ci["lo"] - 1e-9 <= r["minus_tome"] <= ci["hi"] + 1e-9
    assert by[av.PITOME]["minus_pitome"] == 0 and by[av.TOME]["minus_tome"] == 0
    assert summary["pitome_minus_tome"] == pytest.approx(
        summary["acc_pitome"] - summary["acc_tome_matched"])
    assert summary["eval_images"] == IMAGES and 0 <= summary["mcnemar_p"] <= 1
    assert summary["predictions_differ"] >= summary["pitome_only_right"] + summary[
        "tome_only_right"]


def test_energy_kinds_partition_the_scored_tokens(measured, vit):
    _, _, data = measured
    rule = PiToMeRule(0.9, layer_margins(4, 0.75), layer_protect(4))
    schedule = rule.schedule(66, 4, 2)  # 64 patches + class and distillation tokens
    assert data["prefix_tokens"] == 2 and data["protecting_blocks"] == [2, 3]
    assert data["merged_per_block"] == [a - b for a, b in schedule]
    groups: dict[tuple, list[dict]] = {}
    for r in data["energy"]:
        groups.setdefault((r["layer"], r["method"], r["subset"]), []).append(r)
    assert {k[0] for k in groups} == set(range(4))
    for (layer, method, subset), rows in groups.items():
        scored = schedule[layer][0] - 2
        assert all(r["scored_per_image"] == scored for r in rows)
        kinds = {r["tokens"]: r for r in rows}
        if subset == "all":
            assert sum(r["per_image"] for r in rows) == pytest.approx(scored)
        protected = kinds.get("protected", {"per_image": 0})["per_image"]
        if method == av.PITOME and layer in data["protecting_blocks"]:
            if subset == "all":
                assert protected == scored - 2 * data["merged_per_block"][layer]
        else:
            assert protected == 0 and (method == av.PITOME or "protected" not in kinds)
        merged = kinds["merged"]
        r = data["merged_per_block"][layer]
        if subset == "all":
            assert r + 1 <= merged["per_image"] <= 2 * r  # merged away + at least one target
            assert merged["q10"] <= merged["q25"] <= merged["q50"] <= merged["q75"] <= merged[
                "q90"]
            assert 0 <= merged["rank_mean"] <= 1
    # Where PiToMe protects it merges only among the 2r highest-energy tokens of each image:
    # its merged tokens outrank its protected ones.
    top = {(r["layer"], r["tokens"]): r for r in data["energy"]
           if r["method"] == av.PITOME and r["subset"] == "all"}
    for layer in data["protecting_blocks"]:
        assert top[(layer, "merged")]["rank_mean"] > top[(layer, "protected")]["rank_mean"]


def test_jaccard_groups_and_location(measured):
    _, _, data = measured
    assert [r["layer"] for r in data["jaccard"]] == [0, 1, 2, 3, "final"]
    for row in data["jaccard"]:
        for key, value in row.items():
            if key.startswith("jaccard_") and value is not None:
                assert 0 <= value <= 1
    assert data["jaccard"][0]["jaccard_all"] is not None
    for row in data["groups"]:
        if row["images"]:
            assert 2 <= row["largest_group_mean"] <= 64
            assert row["largest_q10"] <= row["largest_q50"] <= row["largest_q90"]
            assert row["patches_in_groups_mean"] >= 2 * row["groups_of_2plus_mean"]
    tokens_out = 66 - sum(data["merged_per_block"])
    for histogram in data["group_size_histogram"].values():
        sizes = np.arange(1, len(histogram) + 1)
        assert sum(histogram) == IMAGES * (tokens_out - 2)  # final patch tokens
        assert int((sizes * np.array(histogram)).sum()) == IMAGES * 64  # every patch once
    rows = {(r["patches"], r["subset"]): r for r in data["location"]}
    everything = rows[("all patches", "all")]
    assert everything["per_image"] == 64 and everything["cls_attention"] == pytest.approx(1)
    assert everything["border_share"] == pytest.approx(28 / 64)
    for name in ("PiToMe merged", "ToMe merged"):
        row = rows[(name, "all")]
        assert 0 < row["per_image"] < 64 and 0 < row["cls_attention"] < 1
        assert 0 <= row["border_share"] <= 1 and 0 < row["centre_distance"] < 8 * 2 ** 0.5 / 2
    for image in data["disagreeing_images"]:
        assert image["right"] in (av.PITOME, av.TOME) and image["class"] in CLASSES


def test_keep_one_merges_nothing(vit, images):
    rows, summary, data = av.analyse(vit, images, tiny_cfg(keep_ratio=1.0, variants=False))
    assert [r["method"] for r in rows] == [av.FULL, av.PITOME, av.TOME]
    assert summary["predictions_differ"] == 0 and summary["pitome_minus_tome"] == 0
    assert summary["pitome_only_right"] == summary["tome_only_right"] == 0
    assert summary["flops_saved"] == 0 and not data["disagreeing_images"]
    assert data["merged_per_block"] == [0, 0, 0, 0]
    assert all(r["same_as_full"] == 1 for r in rows)
    for r in data["energy"]:
        if r["tokens"] == "unmatched" and r["subset"] == "all":
            assert r["per_image"] == 64
        elif r["subset"] == "all":
            assert r["per_image"] == 0 and r["q50"] is None
    assert all(row["jaccard_all"] is None for row in data["jaccard"])
    assert all(row["largest_group_mean"] == 1 for row in data["groups"] if row["images"])
    assert all(row["per_image"] == 0 for row in data["location"]
               if row["patches"] != "all patches" and row["images"])


def test_token_kinds_follow_pitomes_plan(vit, images):
    model = pitome_patch(copy.deepcopy(vit), 0.9)
    rule = merge_state(model).rule
    tracer = av.traced(model)
    x = normalize(images.images)
    with torch.no_grad():
        traced_out = model(x)
        plain_out = pitome_patch(copy.deepcopy(vit), 0.9)(x)
    assert torch.allclose(traced_out, plain_out)  # tracing changes nothing
    for layer, (metric, plan) in enumerate(zip(tracer.metrics, tracer.plans, strict=True)):
        energy, kind = av.token_kinds(metric, plan, rule.margins[layer], rule.protect[layer], 2)
        assert energy.shape == kind.shape == (IMAGES, metric.shape[1] - 2)
        r = plan.src.shape[1]
        merged_away = torch.zeros_like(kind, dtype=torch.bool).scatter_(1, plan.src - 2, True)
        assert (kind[merged_away] == av.MERGED).all()
        protected = (kind == av.PROTECTED).sum(dim=1)
        assert (protected == (kind.shape[1] - 2 * r if rule.protect[layer] else 0)).all()


def test_first_test_images_take_each_class_in_turn():
    try:
        test, nth = av.first_test_images(None, 23)
    except DataNotFoundError:
        pytest.skip("CIFAR-10 JPEGs not staged under the data root")
    labels = test.labels.numpy()
    assert len(test) == 23 and np.bincount(labels).tolist() == [3, 3, 3] + [2] * 7
    assert all(nth[labels == c].tolist() == list(range((labels == c).sum())) for c in range(10))


def test_cli_end_to_end(vit, images, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(av.VisionAblationConfig, "quick",
                        classmethod(lambda cls: tiny_cfg(variants=False)))
    monkeypatch.setattr(av, "trained_vit", lambda ctx, cfg: (vit, {"cached": True}))
    monkeypatch.setattr(av, "first_test_images",
                        lambda root, n: (images.subset(slice(0, n)), np.zeros(n, np.int64)))
    out = tmp_path / "out"
    assert cli.main(["pitome", "ablate", "--modality", "vision", "--quick", "--eval-images",
                     "10", "--threads", "1", "--prop-attn", "both", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PiToMe - matched ToMe" in printed and "wrote" in printed
    rec = json.loads((out / "pitome_vision_ablation.json").read_text())
    assert rec["summary"]["eval_images"] == 10 and rec["summary"]["keep_ratio"] == 0.9
    assert rec["data"]["prop_attn"] == {av.PITOME: True, av.TOME: True}
    assert [r["method"] for r in rec["results"]] == [av.FULL, av.PITOME, av.TOME]
    assert rec["data"]["train"]["cached"] is True
    md = (out / "pitome_vision_ablation.md").read_text()
    assert "PiToMe's energy per block" in md and "Jaccard" in md
    assert (out / "pitome_vision_energy.png").exists()


@pytest.mark.parametrize("changes, message", [
    ({"keep_ratio": 0.4}, "keep_ratio must be in"), ({"keep_ratio": 1.2}, "keep_ratio"),
    ({"margins": (0.75,)}, "besides the default"), ({"prop_attn": "pitome"}, "prop_attn"),
    ({"batch_size": 0}, "batch_size")])
def test_config_is_checked(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_cfg(**changes)


@pytest.mark.parametrize("images_wanted", [0, -3, 10_001])
def test_eval_images_out_of_range(images_wanted):
    vision = dataclasses.replace(Config.quick(), eval_images=images_wanted)
    with pytest.raises(ValueError, match="eval_images must be in"):
        av.VisionAblationConfig(vision=vision)


@pytest.mark.parametrize("args, message", [
    (["--keep", "1.5"], "--keep must be in [0.5, 1]"),
    (["--keep", "0.4"], "--keep must be in [0.5, 1]"),
    (["--eval-images", "0"], "--eval-images must be in [1, 10000]"),
    (["--datasets", "sst2"], "--datasets does not apply to --modality vision"),
    (["--seeds", "2"], "--seeds does not apply")])
def test_vision_bad_options_exit_2(args, message, capsys):
    assert cli.main(["pitome", "ablate", "--modality", "vision", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--eval-images", "100"], ["--prop-attn", "both"],
                                  ["--keep", "1.0"]])
def test_vision_options_are_refused_for_text(args, capsys):
    assert cli.main(["pitome", "ablate", *args]) == 2
    assert "--modality text" in capsys.readouterr().err
