"""Metrics, toy data, the batched sweep, the forecaster, and a tiny end-to-end experiment."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter1d

from paperlab.core.jobs import JobError
from paperlab.core.results import RunContext
from paperlab.core.seed import torch_threads
from paperlab.fourier_head import FourierHead, GMMHead, experiment, metrics, toy
from paperlab.fourier_head.experiment import (
    BenchConfig,
    Config,
    ForecastConfig,
    ToyConfig,
    bench,
    run,
    run_forecast,
    run_toy,
)
from paperlab.fourier_head.forecast import TinyForecaster, make_windows, support
from paperlab.fourier_head.sweep import Member, ToyEnsemble, train


@pytest.fixture(autouse=True)
def _own_job_cache(tmp_path, monkeypatch):
    """Each test keeps the toy sweep's finished jobs (the job map's cache) to itself."""
    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path / "cache"))


# --- metrics ----------------------------------------------------------------------------------


def test_kl_zero_for_identical_and_positive_otherwise():
    p = np.random.default_rng(0).dirichlet(np.ones(10), size=4)
    assert metrics.kl_divergence(p, p) == pytest.approx(0.0, abs=1e-8)
    q = np.roll(p, 1, axis=1)
    manual = np.mean(np.sum(p * np.log(p / (q + 1e-10)), axis=1))
    assert metrics.kl_divergence(q, p) == pytest.approx(manual)
    assert manual > 0


def test_smoothness_matches_filter_definition_and_orders_pmfs():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(30), size=3)
    direct = [sum(6 / (np.pi**2 * s**2) * np.linalg.norm(
        row - gaussian_filter1d(row, s, mode="wrap", radius=29)) for s in range(1, 101))
        for row in p]
    np.testing.assert_allclose(metrics.smoothness(p), direct, rtol=1e-10)
    flat = np.full((1, 30), 1 / 30)
    spike = np.zeros((1, 30))
    spike[0, 7] = 1.0
    assert metrics.smoothness(flat)[0] == pytest.approx(0.0, abs=1e-12)
    assert metrics.smoothness(spike)[0] > metrics.smoothness(p).max()


def test_crps_matches_integral_of_squared_cdf_difference():
    rng = np.random.default_rng(2)
    support_pts = np.sort(rng.uniform(-2, 2, 8))
    p = rng.dirichlet(np.ones(8), size=3)
    y = np.array([-0.3, 0.5, 3.0])
    grid = np.linspace(-4, 4, 200001)
    expected = []
    for row, obs in zip(p, y, strict=True):
        cdf = (row[None, :] * (support_pts[None, :] <= grid[:, None])).sum(1)
        expected.append(np.trapezoid((cdf - (grid >= obs)) ** 2, grid))
    np.testing.assert_allclose(metrics.crps_discrete(p, support_pts, y), expected, atol=1e-4)


def test_expected_bin_mse_known_case():
    pmf = np.zeros((2, 4))
    pmf[0, 1] = 1.0  # expected bin 1, centre -0.25
    pmf[1, [0, 2]] = 0.5  # expected bin 1
    assert metrics.expected_bin_mse(pmf, np.array([1, 3])) == pytest.approx((0 + 1.0**2) / 2)


@pytest.mark.parametrize("bad", [np.ones(5), np.full((2, 1), 1.0), np.array([[0.5, -0.5]]),
                                 np.array([[np.nan, 1.0]])])
def test_metrics_reject_malformed_pmfs(bad):
    with pytest.raises(ValueError):
        metrics.smoothness(bad)


# --- toy data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", toy.DATASETS)
def test_true_pmf_agrees_with_generated_samples(name):
    """The mean of the true conditional pmfs is the marginal histogram of the samples."""
    data = toy.generate(name, 20000, seed=3)
    assert data.shape == (20000, 3) and np.abs(data[:, 2]).max() <= 1.5
    centers = np.linspace(-1, 1, 51)[:-1] + 1 / 50
    true = toy.true_pmf(name, data[:, :2], centers)
    np.testing.assert_allclose(true.sum(1), 1.0)
    hist = np.bincount(toy.quantize(data[:, 2], 50), minlength=50) / len(data)
    assert 0.5 * np.abs(true.mean(0) - hist).sum() < 0.03


def test_toy_rejects_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset"):
        toy.generate("gmm3", 10, 0)


# --- batched sweep ----------------------------------------------------------------------------


def _trunk(model: ToyEnsemble, e: int, x: torch.Tensor) -> torch.Tensor:
    h = x
    for layer in model.trunk:
        h = torch.relu(h @ layer.weight[e] + layer.bias[e])
    return h


def test_ensemble_members_equal_standalone_heads():
    torch.manual_seed(0)
    members = [Member(0, "linear"), Member(0, "fourier", 3, 1e-6), Member(1, "fourier", 6, 0.0),
               Member(1, "gmm", gaussians=2), Member(0, "gmm", gaussians=1)]
    model = ToyEnsemble(members, num_bins=20).double()
    x = torch.rand(len(members), 5, 2, dtype=torch.float64) * 20
    logits, reg = model(x)
    for e, m in enumerate(model.members):
        h = _trunk(model, e, x[e])
        if m.head == "fourier":
            f = e - model.n_linear
            head = FourierHead(32, 20, m.frequencies, m.gamma).double()
            n1 = m.frequencies + 1
            w, b = model.fourier.weight[f], model.fourier.bias[f, 0]
            n_max = w.shape[1] // 2
            rows = list(range(n1)) + [n_max + j for j in range(n1)]
            with torch.no_grad():
                head.coefficients.weight.copy_(w[:, rows].T)
                head.coefficients.bias.copy_(b[rows])
            torch.testing.assert_close(torch.log_softmax(logits[e], -1), head(h))
            torch.testing.assert_close(reg[e], head.regularization_loss())
        elif m.head == "gmm":
            g = e - model.n_linear - model.n_fourier
            head = GMMHead(32, 20, m.gaussians).double()
            with torch.no_grad():
                head.mean_layer.weight.copy_(model.gmm.weight[g, :, :m.gaussians].T)
                head.mean_layer.bias.copy_(model.gmm.bias[g, 0, :m.gaussians])
                head.raw_stds.copy_(model.gmm_raw_std[g, 0, :m.gaussians])
            torch.testing.assert_close(logits[e], head(h))
        else:
            assert reg[e] == 0
            torch.testing.assert_close(logits[e], h @ model.linear.weight[e]
                                       + model.linear.bias[e])


def test_ensemble_training_lowers_loss_and_members_are_independent():
    torch.manual_seed(1)
    members = [Member(0, "linear"), Member(0, "fourier", 4, 1e-6), Member(0, "gmm", gaussians=1)]
    model = ToyEnsemble(members, num_bins=10)
    x = torch.rand(1, 256, 2) * 10
    z = (x[..., 0] * 0.9).long().clamp(0, 9)  # a learnable target
    x_probe = torch.rand(3, 4, 2)
    before = model(x_probe)[0][0].detach()
    # a gradient from member 2's loss alone must not touch member 0
    logits, _ = model(x_probe)
    logits[2].sum().backward()
    assert model.trunk[0].weight.grad[0].abs().max() == 0
    assert model.trunk[0].weight.grad[2].abs().max() > 0
    model.zero_grad()
    losses = train(model, x, z, epochs=15, batch_size=32, lr=3e-3,
                   generator=torch.Generator().manual_seed(0))
    assert losses[-1] < 0.6 * losses[0]
    assert not torch.allclose(model(x_probe)[0][0], before)


@pytest.mark.parametrize("fused", [False, True])
def test_a_member_trains_bit_for_bit_as_alone(fused, monkeypatch):
    """A group's heads trained alone or beside other groups' heads end bit-identical (so the
    sweep's job split cannot change a result); the fused CPU Adam would break this."""
    if fused:
        adam = torch.optim.Adam
        monkeypatch.setattr(torch.optim, "Adam", lambda params, lr, foreach: adam(
            params, lr=lr, fused=True))
    mine = [Member(0, "linear"), Member(0, "fourier", 4, 1e-6), Member(0, "gmm", gaussians=2)]
    others = [Member(1, "linear"), Member(1, "fourier", 4, 1e-6), Member(1, "gmm", gaussians=2)]
    torch.manual_seed(2)
    alone, crowd = ToyEnsemble(mine, num_bins=20), ToyEnsemble(mine + others, num_bins=20)
    # crowd's members: linear 0, linear 1, fourier 0, fourier 1, gmm 0, gmm 1; its head stacks
    # hold group 0 first. Give crowd's group 0 alone's initial weights.
    with torch.no_grad():
        for name, p in alone.named_parameters():
            crowd.get_parameter(name)[[0, 2, 4] if name.startswith("trunk") else [0]] = p
    x = torch.rand(2, 96, 2) * 20
    z = (x[..., 0] + x[..., 1]).long() % 20
    for model in (alone, crowd):
        train(model, x, z, epochs=3, batch_size=32, generator=torch.Generator().manual_seed(0))
    same = [torch.equal(p, crowd.get_parameter(name)[[0, 2, 4] if name.startswith("trunk")
                                                     else [0]])
            for name, p in alone.named_parameters()]
    assert all(same) != fused, same


def test_ensemble_rejects_unknown_head():
    with pytest.raises(ValueError, match="unknown head"):
        ToyEnsemble([Member(0, "softmax")])


# --- forecaster -------------------------------------------------------------------------------


def test_windows_quantise_and_map_back():
    rng = np.random.default_rng(4)
    values = np.cumsum(rng.normal(size=300)) + 50
    w = make_windows(values, context=16, num_bins=64, clip=4.0, start=16, stop=300, scale=1.0)
    assert w.tokens.shape == (284, 17) and w.tokens.max() < 64
    # the target's own bin centre maps back to within half a bin of the target (unless clipped)
    back = support(w, 64, 4.0)[np.arange(284), w.tokens[:, -1]]
    inside = np.abs(w.target - w.mean) < 3.9 * w.std
    half_bin = 4.0 * w.std / 64
    assert inside.mean() > 0.9
    assert np.all(np.abs(back - w.target)[inside] <= half_bin[inside] + 1e-9)
    with pytest.raises(ValueError, match="finite"):
        make_windows(np.array([1.0, np.nan] * 20), 4, 8, 4.0, 4, 40, 1.0)
    with pytest.raises(ValueError, match="context"):
        make_windows(values, 16, 8, 4.0, 8, 300, 1.0)


def test_forecaster_is_causal():
    torch.manual_seed(5)
    for head in ("linear", "fourier"):
        model = TinyForecaster(num_bins=16, context=12, head=head).eval()
        tokens = torch.randint(0, 16, (2, 12))
        changed = tokens.clone()
        changed[:, 8:] = (changed[:, 8:] + 5) % 16
        a, b = model(tokens), model(changed)
        torch.testing.assert_close(a[:, :8], b[:, :8])
        assert not torch.allclose(a[:, 8:], b[:, 8:])
    with pytest.raises(ValueError, match="head"):
        TinyForecaster(16, 12, head="mlp")


# --- tiny end-to-end --------------------------------------------------------------------------


def test_run_toy_tiny():
    cfg = ToyConfig(datasets=("gmm2",), seeds=2, frequencies=(2, 12), epochs=2, samples=400)
    rows, examples, info = run_toy(cfg, seed=0)
    methods = {r["method"] for r in rows}
    assert {"linear", "gmm", "true pmf", "fourier N=12 gamma=1e-06"} <= methods
    for r in rows:
        if r["method"] != "true pmf":
            assert np.isfinite([r["kl"], r["mse"], r["smoothness"]]).all() and r["kl"] > 0
    pmfs = np.array([h["examples"] for job in examples["jobs"] for h in job["heads"]])
    assert pmfs.shape == (2 * 6, 3, 50)
    np.testing.assert_allclose(pmfs.sum(-1), 1.0, atol=1e-6)
    assert info["seeds"] == [0, 1] and info["groups"] == [("gmm2", 0), ("gmm2", 1)]
    for r in rows:  # each head's mean over the two seeds, inside its t-interval
        if r["method"] != "true pmf":
            for key in ("kl", "smoothness"):
                ci = r[f"{key}_ci95"]
                assert ci["lo"] <= r[key] <= ci["hi"] and ci["method"] == "t over 2 seeds"
    lin, four = (next(r for r in rows if r["method"] == m)
                 for m in ("linear", "fourier N=12 gamma=1e-06"))
    for key in ("kl", "smoothness"):
        ci = experiment.seed_ratio_interval(examples["jobs"], "gmm2",
                                            "fourier N=12 gamma=1e-06", "linear", key)
        assert ci["lo"] <= four[key] / lin[key] <= ci["hi"]


def _jobs(pairs):
    """Toy-sweep jobs of gmm2, one per (fourier KL, linear KL) pair."""
    return [{"dataset": "gmm2", "seed": s,
             "heads": [{"method": "fourier", "kl": f}, {"method": "linear", "kl": lin}]}
            for s, (f, lin) in enumerate(pairs)]


def test_seed_ratio_interval_is_paired_by_seed():
    # the seeds differ fourfold in level but agree on the ratio: a paired interval is tight
    same = experiment.seed_ratio_interval(_jobs([(0.7, 1.0), (1.4, 2.0), (2.8, 4.0)]),
                                          "gmm2", "fourier", "linear", "kl")
    assert same["lo"] == pytest.approx(0.7) and same["hi"] == pytest.approx(0.7)
    spread = experiment.seed_ratio_interval(_jobs([(0.6, 1.0), (1.0, 1.0)]),
                                            "gmm2", "fourier", "linear", "kl")
    assert spread["lo"] < 0.6 and spread["hi"] > 1.0  # 2 seeds: t with 1 degree of freedom
    assert "2 seeds" in spread["method"]
    assert experiment.seed_ratio_interval(_jobs([(0.7, 1.0)]), "gmm2", "fourier", "linear",
                                          "kl") is None


def test_toy_sweep_same_on_two_workers_and_resumes_from_disk(monkeypatch):
    cfg = ToyConfig(datasets=("gmm2", "gaussian"), seeds=2, frequencies=(4,), gammas=(1e-6,),
                    epochs=1, samples=200)
    alone = run_toy(cfg, seed=3, options={"fresh": True})
    pooled = run_toy(cfg, seed=3, options={"fresh": True, "workers": 2})
    assert pooled == alone
    assert {r["method"] for r in alone[0]} == {"linear", "fourier N=4 gamma=1e-06", "gmm",
                                               "true pmf"}

    def must_not_train(*_args, **_kwargs):
        raise AssertionError("a finished job was trained again")

    monkeypatch.setattr(experiment, "train", must_not_train)
    assert run_toy(cfg, seed=3) == alone
    with pytest.raises(JobError, match="gmm2 seed=3"):  # fresh=True trains again
        run_toy(cfg, seed=3, options={"fresh": True})


def test_run_forecast_tiny():
    pytest.importorskip("statsmodels")
    cfg = ForecastConfig(series=("sunspots",), seeds=1, epochs=1, context=16)
    rows, info = run_forecast(cfg, seed=0)
    assert info[0]["name"] == "sunspots" and info[0]["length"] == 309
    assert "public domain" in info[0]["copyright"]
    assert {r["dataset"] for r in rows} == {"sunspots", "all"}
    assert all(r["crps"] > 0 and np.isfinite(r["nll"]) for r in rows)


TINY = Config(ToyConfig(datasets=("gaussian", "gmm2"), seeds=1, frequencies=(12,), epochs=1,
                        samples=300),
              ForecastConfig(series=("sunspots",), seeds=1, epochs=1, context=16),
              BenchConfig(bins=(50, 128), batch=8, dim_in=8, frequencies=4, warmup=0, repeats=1))


def test_run_and_bench_take_a_config_and_keep_the_thread_count(tmp_path):
    pytest.importorskip("statsmodels")
    ctx = RunContext("fourier_head", quick=False, seed=0, out_dir=tmp_path)
    with torch_threads(2):
        result = run(ctx, TINY)
        timed = bench(ctx, TINY)
        assert torch.get_num_threads() == 2
    assert {r["dataset"] for r in result.results} >= {"gaussian", "gmm2", "sunspots", "all"}
    assert result.summary["kl_gmm2_fourier_n12"] == next(
        r["kl"] for r in result.results
        if r["dataset"] == "gmm2" and r["method"] == "fourier N=12 gamma=1e-06")
    assert [r["bins"] for r in timed.results] == [50, 128]
    assert timed.summary["cpu_ratio_128_bins"] == timed.results[1]["cpu_ratio"]
    # one seed: no interval of the claims' ratios, and none claimed
    assert result.summary["kl_gmm2_fourier_n12_over_linear_ci95"] is None
    assert result.summary["smoothness_gmm2_fourier_n12_over_linear_ci95"] is None
    assert (tmp_path / "fourier_head_densities.png").exists()


def test_gmm_head_bad_input():
    with pytest.raises(ValueError, match="num_gaussians"):
        GMMHead(4, 10, 0)
    head = GMMHead(4, 10, 2)
    assert F.log_softmax(head(torch.randn(3, 4)), -1).exp().sum(-1).allclose(torch.ones(3))
