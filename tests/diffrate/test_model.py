"""DiffRate's proxy, search and apply on tiny random ViTs."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

import paperlab.merging.prune as prune_module
from paperlab.diffrate.model import (
    SearchConfig,
    apply,
    flops_range,
    learned_rates,
    rates_flops,
    rule_tokens,
    search,
    search_flops,
    searchable,
    uniform_rates,
)
from paperlab.diffrate.rates import RateProxy, Rates, candidate_counts, flops_loss
from paperlab.merging.energy import layer_margins
from paperlab.vision.data import ImageSet
from paperlab.vision.flops import model_flops

N = 65  # 64 patches + the class token


def _data(n: int = 32) -> ImageSet:
    gen = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=gen)
    return ImageSet(images, labels, tuple(f"c{i}" for i in range(10)), "synthetic")


# --- the proxy -------------------------------------------------------------------------------


def test_candidates_and_initial_count():
    assert candidate_counts(64, 4) == list(range(64, -1, -4))
    proxy = RateProxy(64, 4)
    assert proxy.integer() == 32 + 1  # uniform p: mean candidate 32, plus the class token
    mask = proxy.mask(N)
    assert mask[:33].eq(1).all() and mask[33:].eq(0).all()


def test_proxy_gradient_matches_finite_differences():
    torch.manual_seed(0)
    proxy = RateProxy(64, 4).double()
    with torch.no_grad():
        proxy.logits.normal_()
    coef = torch.randn(N, dtype=torch.double)

    def smooth(logits: torch.Tensor) -> torch.Tensor:
        # what the straight-through outputs differentiate as: the soft mask and the expectation
        p = logits.softmax(-1)
        soft = (torch.arange(N, dtype=torch.double)[:, None] < proxy.counts[None] + 1).double() @ p
        return coef @ soft + 0.1 * (p @ proxy.counts)

    (coef @ proxy.mask(N) + 0.1 * proxy.kept()).backward()
    grad = proxy.logits.grad.clone()
    assert grad.abs().sum() > 0
    eps = 1e-6
    for k in range(len(proxy.counts)):
        step = torch.zeros_like(proxy.logits)
        step[k] = eps
        with torch.no_grad():
            fd = (smooth(proxy.logits + step) - smooth(proxy.logits - step)) / (2 * eps)
        assert grad[k] == pytest.approx(float(fd), rel=1e-5, abs=1e-8)
    # forward: the hard mask and the rounded-up count
    assert set(proxy.mask(N).detach().unique().tolist()) <= {0.0, 1.0}
    assert proxy.kept().item() == float(torch.ceil(proxy.expected().detach() - 1e-4) + 1)


def test_search_loss_reaches_every_blocks_logits(tiny_vit, images):
    net = copy.deepcopy(tiny_vit)
    proxies = searchable(net)
    out = net(images)
    full = model_flops(tiny_vit)
    (out.logsumexp(-1).sum() + flops_loss(search_flops(net), 0.5 * full, full)).backward()
    for prune, merge in proxies:
        assert prune.logits.grad.abs().sum() > 0 and merge.logits.grad.abs().sum() > 0


# --- apply -----------------------------------------------------------------------------------


@pytest.mark.parametrize("merge_rule", ["diffrate", "pitome"])
def test_keep_all_equals_the_model(tiny_vit, images, merge_rule):
    want = tiny_vit(images)
    got = apply(copy.deepcopy(tiny_vit), Rates.keep_all(N, 4), merge_rule=merge_rule)(images)
    assert torch.allclose(got, want, atol=1e-6)


def test_keep_all_equals_timm_vit_224():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=3).eval()
    x = torch.randn(1, 3, 224, 224)
    want = model(x)
    for merge_rule in ("diffrate", "pitome"):
        got = apply(copy.deepcopy(model), Rates.keep_all(197, 3), merge_rule=merge_rule)(x)
        assert torch.allclose(got, want, atol=1e-6)
    rates = Rates((197, 150, 120), (197, 120, 60), 197)
    apply(model, rates)(x)
    assert model._diffrate.tokens == rates.tokens()


def test_apply_slices_and_merges(tiny_vit, images):
    rates = Rates((N, 49, 33, 20), (N, 41, 21, 9), N)
    model = apply(copy.deepcopy(tiny_vit), rates)
    out = model(images)
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    assert model._diffrate.tokens == [(65, 65), (65, 41), (41, 21), (21, 9)]
    size = model._diffrate.size
    assert size.shape == (3, 9, 1) and (size >= 1).all() and (size[:, 1:].sum(1) > 8).all()
    assert rates_flops(tiny_vit, rates) < model_flops(tiny_vit)


def test_pitome_rule_prunes_like_diffrate(tiny_vit, images):
    """Pruning only (merge = prune): the merge rule has nothing to do, both give one output."""
    rates = Rates((N, 49, 33, 20), (N, 49, 33, 20), N)
    own = apply(copy.deepcopy(tiny_vit), rates)(images)
    combo = apply(copy.deepcopy(tiny_vit), rates, merge_rule="pitome")(images)
    assert torch.allclose(own, combo, atol=1e-6)


def test_pitome_rule_merges_by_the_energy_rule(tiny_vit, images, monkeypatch):
    """Each reducing block prunes to ``prune`` by class attention and hands those tokens to the
    substrate's energy rule with the block's margin and protection and ``prune - merge`` merges,
    capped at half the patch tokens (block 3: 11 asked of 19, 9 merged)."""
    calls = []
    real = prune_module.energy_plan

    def spy(metric, r, margin, prefix, protect):
        calls.append((metric.shape[1], r, margin, prefix, protect))
        return real(metric, r, margin, prefix, protect)

    monkeypatch.setattr(prune_module, "energy_plan", spy)
    rates = Rates((N, 49, 33, 20), (N, 41, 21, 9), N)
    model = apply(copy.deepcopy(tiny_vit), rates, merge_rule="pitome")
    combo = model(images)
    margins = layer_margins(4)
    assert calls == [(49, 8, margins[1], 1, False), (33, 12, margins[2], 1, True),
                     (20, 9, margins[3], 1, True)]
    tokens = [(65, 65), (65, 41), (41, 21), (21, 11)]
    assert model._diffrate.tokens == rule_tokens(rates, "pitome") == tokens
    size = model._diffrate.size  # size-weighted merge: whole patches, the class token alone
    assert size.shape == (3, 11, 1) and torch.equal(size, size.round()) and (size[:, 0] == 1).all()
    assert rates_flops(tiny_vit, rates, "pitome") == model_flops(tiny_vit, tokens)
    assert rates_flops(tiny_vit, rates, "pitome") > rates_flops(tiny_vit, rates)
    own = apply(copy.deepcopy(tiny_vit), Rates((N, 49, 33, 20), (N, 41, 21, 11), N))(images)
    assert not torch.allclose(own, combo, atol=1e-3)  # another merge, another output


def test_rule_tokens_carry_what_one_split_cannot_merge():
    rates = Rates((N, 60, 10, 10), (N, 10, 10, 5), N)
    assert rule_tokens(rates) == [(65, 65), (65, 10), (10, 10), (10, 5)]
    # block 1: 60 kept by pruning, 29 of their 59 patch tokens merge -> 31; block 2 prunes the
    # excess (to 10); block 3: 10 kept, 4 of 9 patch tokens merge -> 6
    assert rule_tokens(rates, "pitome") == [(65, 65), (65, 31), (31, 10), (10, 6)]
    assert prune_module.energy_merges(60, 10) == 29 == math.floor(59 / 2)


def _one_hot(proxy: RateProxy, kept: int) -> None:
    with torch.no_grad():
        proxy.logits.zero_()
        proxy.logits[proxy.counts.tolist().index(kept - 1)] = 60.0


def test_search_mode_forward_equals_the_applied_model(tiny_vit, images):
    """With one-hot rate logits the masked search forward (no token dropped) gives the logits
    of the model that really prunes and merges."""
    rates = Rates((N, 49, 33, 17), (N, 41, 21, 13), N)
    net = copy.deepcopy(tiny_vit)
    proxies = searchable(net)
    for (prune, merge), p, m in zip(proxies, rates.prune[1:], rates.merge[1:], strict=True):
        _one_hot(prune, p)
        _one_hot(merge, m)
    assert learned_rates(net) == rates
    masked = net(images)
    assert search_flops(net).item() == pytest.approx(rates_flops(tiny_vit, rates))
    real = apply(copy.deepcopy(tiny_vit), rates)(images)
    assert torch.allclose(masked, real, atol=1e-5)


# --- search ----------------------------------------------------------------------------------


def test_flops_loss_falls_and_counts_never_increase(tiny_vit):
    least, full = flops_range(tiny_vit)
    trace: list[dict[str, float]] = []
    cfg = SearchConfig(epochs=6, batch_size=16, lr=0.05, lr_min=0.01)
    rates = search(tiny_vit, _data(), 0.55 * full / 1e9, cfg, trace)
    assert len(trace) == 12
    assert trace[-1]["flops_loss"] < 0.5 * trace[0]["flops_loss"]
    assert rates.prune[0] == rates.merge[0] == N
    kept = [c for pair in zip(rates.prune, rates.merge, strict=True) for c in pair]
    assert all(a >= b for a, b in zip(kept, kept[1:], strict=False))
    assert abs(rates_flops(tiny_vit, rates) - 0.55 * full) < abs(trace[0]["gflops"] * 1e9
                                                                - 0.55 * full)
    assert not hasattr(tiny_vit, "_diffrate")  # the model itself is untouched


def test_uniform_rates_match_flops(tiny_vit):
    full = model_flops(tiny_vit)
    rates = uniform_rates(tiny_vit, 0.75 * full)
    assert rates.prune == rates.merge
    steps = [a - b for a, b in zip(rates.merge, rates.merge[1:], strict=False)]
    assert max(steps) - min(steps) <= 1
    assert rates_flops(tiny_vit, rates) == pytest.approx(0.75 * full, rel=0.03)


# --- schedules and bad input -----------------------------------------------------------------


def test_rates_json_round_trip(tmp_path):
    rates = Rates((N, 49, 33), (N, 41, 21), N)
    assert Rates.load(rates.save(tmp_path / "r.json")) == rates
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        Rates.load(tmp_path / "bad.json")
    (tmp_path / "odd.json").write_text(json.dumps({"prune": [65]}))
    with pytest.raises(ValueError, match="num_tokens, prune and merge"):
        Rates.load(tmp_path / "odd.json")


@pytest.mark.parametrize("prune, merge, match", [
    ((64, 40), (64, 30), "block 0 keeps everything"),
    ((N, 40, 50), (N, 30, 20), "never increase"),
    ((N, 40), (N, 45), "never increase"),
    ((N, 40), (N, 0), "never increase"),
    ((N, 40, 30), (N, 30), "same number"),
])
def test_bad_rates(prune, merge, match):
    with pytest.raises(ValueError, match=match):
        Rates(prune, merge, N)


def test_bad_input_is_named(tiny_vit):
    least, full = flops_range(tiny_vit)
    with pytest.raises(ValueError, match="outside the reachable range"):
        search(tiny_vit, _data(), 1.01 * full / 1e9)
    with pytest.raises(ValueError, match="outside the reachable range"):
        search(tiny_vit, _data(), 0.99 * least / 1e9)
    with pytest.raises(ValueError, match="6 blocks of 65 tokens; the model has 4 blocks"):
        apply(tiny_vit, Rates.keep_all(N, 6))
    with pytest.raises(TypeError, match=r"prune\[1\] must be an integer, got 40.5"):
        Rates((N, 40.5), (N, 30), N)
    with pytest.raises(TypeError, match="must be a Rates"):
        apply(tiny_vit, [N, N, N, N])
    with pytest.raises(TypeError, match="timm VisionTransformer"):
        apply(torch.nn.Linear(2, 2), Rates.keep_all(N, 4))
    for bad in ("tome", "PiToMe", None):
        with pytest.raises(ValueError, match=r"merge_rule must be one of \('diffrate', "
                                             r"'pitome'\), got"):
            apply(tiny_vit, Rates.keep_all(N, 4), merge_rule=bad)
    with pytest.raises(ValueError, match="merge_rule must be one of"):
        rule_tokens(Rates.keep_all(N, 4), "energy")


# --- sentences of other lengths: the schedule as fractions ------------------------------------


@pytest.mark.parametrize("prefix", [1, 2])
def test_for_length_scales_the_non_prefix_counts(prefix):
    rates = Rates((N, 49, 33, 20), (N, 41, 21, 9), N, prefix)
    assert rates.for_length(N) is rates
    for length in range(prefix + 1, 2 * N):
        scaled = rates.for_length(length)
        assert scaled.num_tokens == length and scaled.prefix == prefix
        for c, s in zip(rates.merge + rates.prune, scaled.merge + scaled.prune, strict=True):
            assert s == prefix + math.ceil((length - prefix) * (c - prefix) / (N - prefix))
    assert Rates.keep_all(N, 4, prefix).for_length(7) == Rates.keep_all(7, 4, prefix)
    with pytest.raises(ValueError, match=f"length must be >= {prefix + 1}"):
        rates.for_length(prefix)


@pytest.mark.parametrize("patches", [3, 17, 64, 100])
def test_proxy_count_at_a_length_is_the_scaled_schedule(patches):
    torch.manual_seed(patches)
    for prefix in (1, 2):
        proxy = RateProxy(64, 4, prefix)
        with torch.no_grad():
            proxy.logits.normal_()
        count = proxy.integer()
        rates = Rates((64 + prefix, count), (64 + prefix, count), 64 + prefix, prefix)
        want = rates.for_length(patches + prefix).merge[1]
        assert proxy.kept(patches).item() == want
        mask = proxy.mask(patches + prefix, patches)
        assert mask[:want].eq(1).all() and mask[want:].eq(0).all()


def test_rates_files_keep_the_prefix(tmp_path):
    rates = Rates((66, 50), (66, 42), 66, prefix=2)
    assert Rates.load(rates.save(tmp_path / "r.json")) == rates
    (tmp_path / "old.json").write_text(json.dumps({"num_tokens": N, "prune": [N, 9],
                                                   "merge": [N, 9]}))
    assert Rates.load(tmp_path / "old.json").prefix == 1
    with pytest.raises(ValueError, match="need 2 <= merge"):
        Rates((66, 50), (66, 1), 66, prefix=2)
    with pytest.raises(ValueError, match="must exceed the prefix"):
        Rates((2,), (2,), 2, prefix=2)


# --- a DeiT ViT with a distillation token ------------------------------------------------------

D = 66  # 64 patches + the class and distillation tokens


@pytest.fixture
def distilled():
    from timm.models.deit import VisionTransformerDistilled

    torch.manual_seed(0)
    return VisionTransformerDistilled(img_size=32, patch_size=4, embed_dim=32, depth=4,
                                      num_heads=2, num_classes=10).eval()


@pytest.mark.parametrize("merge_rule", ["diffrate", "pitome"])
def test_distilled_keep_all_equals_the_model(distilled, images, merge_rule):
    want = distilled(images)
    got = apply(copy.deepcopy(distilled), Rates.keep_all(D, 4, prefix=2),
                merge_rule=merge_rule)(images)
    assert torch.allclose(got, want, atol=1e-6)


def test_distilled_prefix_tokens_stay_in_front(distilled, images):
    """Reducing only in the last block: the class and distillation tokens attend before the
    reduction and stay first, so both keep their unpatched outputs (the two heads read them)."""
    want = distilled.forward_features(images)
    model = apply(copy.deepcopy(distilled), Rates((D,) * 4, (D, D, D, 5), D, prefix=2))
    got = model.forward_features(images)
    assert got.shape[1] == 5 and torch.allclose(got[:, :2], want[:, :2], atol=1e-6)
    rates = Rates((D, 50, 34, 22), (D, 42, 22, 10), D, prefix=2)
    model = apply(copy.deepcopy(distilled), rates)
    model(images)
    assert model._diffrate.tokens == rates.tokens()
    assert torch.all(model._diffrate.size[:, :2] == 1)  # never merged into
    # FLOPs: both prefix tokens counted in every block
    assert rates_flops(distilled, Rates.keep_all(D, 4, prefix=2)) == model_flops(distilled)
    assert rates_flops(distilled, rates) == model_flops(distilled, rates.tokens())


def test_distilled_search_forward_equals_the_applied_model(distilled, images):
    rates = Rates((D, 50, 34, 22), (D, 42, 22, 10), D, prefix=2)
    net = copy.deepcopy(distilled)
    proxies = searchable(net)
    for (prune, merge), p, m in zip(proxies, rates.prune[1:], rates.merge[1:], strict=True):
        for proxy, kept in ((prune, p), (merge, m)):
            with torch.no_grad():
                proxy.logits.zero_()
                proxy.logits[proxy.counts.tolist().index(kept - 2)] = 60.0
    assert learned_rates(net) == rates
    assert torch.allclose(net(images), apply(copy.deepcopy(distilled), rates)(images), atol=1e-5)
    assert search_flops(net).item() == pytest.approx(rates_flops(distilled, rates))


def test_distilled_search_and_uniform(distilled):
    least, full = flops_range(distilled)
    assert least == model_flops(distilled, [(D, D)] + [(D, 2)] + [(2, 2)] * 2)
    rates = search(distilled, _data(16), 0.6 * full / 1e9, SearchConfig(epochs=1, batch_size=8))
    assert rates.prefix == 2 and rates.num_tokens == D and min(rates.merge) >= 2
    uniform = uniform_rates(distilled, 0.6 * full)
    assert uniform.prefix == 2 and rates_flops(distilled, uniform) == pytest.approx(0.6 * full,
                                                                                   rel=0.03)
    with pytest.raises(ValueError, match="rates keep 1 prefix token"):
        apply(copy.deepcopy(distilled), Rates.keep_all(D, 4))
