"""The reproduction end to end on the smallest staged graph, at a toy size."""

from __future__ import annotations

import statistics

import pytest
import torch

from paperlab.core.config import resolve_config
from paperlab.core.data import DataNotFoundError
from paperlab.core.jobs import JobError
from paperlab.core.results import RunContext
from paperlab.core.seed import torch_threads
from paperlab.mowst import experiment
from paperlab.mowst.training import TrainConfig

SUMMARY_KEYS = {"datasets", "mowst_beats_both_experts", "mean_gain_over_gnn_pts",
                "train_time_ratio_vs_gnn", "routed_inference_time_ratio_vs_gnn",
                "short_turns_train_time_ratio_vs_gnn", "short_turns_mean_score_change_pts",
                "mowst_beats_both_experts_ci95", "mean_gain_over_gnn_pts_ci95",
                "train_time_ratio_vs_gnn_ci95", "routed_inference_time_ratio_vs_gnn_ci95"}
INTERVALS = {"mean_gain_over_gnn_pts", "train_time_ratio_vs_gnn",
             "routed_inference_time_ratio_vs_gnn"}


@pytest.fixture(autouse=True)
def _own_job_cache(tmp_path, monkeypatch):
    """Each test keeps its finished splits (the job map's cache) to itself."""
    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path / "cache"))


def _on_texas(entry, tmp_path, seed: int = 0, ablate: bool = False, seeds: int = 1,
              **options):
    """``entry`` (experiment.run or .bench) on the smallest staged graph at a toy size."""
    cfg = experiment.Config(datasets=("texas",), seeds=seeds, ablation_datasets=("texas",) * ablate,
                            ablation_seeds=int(ablate), bench_datasets=("texas",),
                            bench_repeats=1, draws=5,
                            train=TrainConfig(max_epochs=4, patience=2, max_rounds=1))
    try:
        return entry(RunContext("mowst", quick=True, seed=seed, out_dir=tmp_path,
                                options=options), cfg)
    except DataNotFoundError:
        pytest.skip("staged graph data not available")


def test_run_reports_every_method_and_the_issue_summary_keys(tmp_path) -> None:
    with torch_threads(2):  # run pins one thread inside, and gives the count back
        result = _on_texas(experiment.run, tmp_path, seed=2, ablate=True)
        assert torch.get_num_threads() == 2
    methods = {r["method"] for r in result.results}
    assert {"MLP", "GCN", "SAGE", "Mowst-GCN", "Mowst*-GCN", "Mowst-SAGE", "Mowst*-SAGE",
            "Mowst-GCN (no pre-training)", "Mowst-GCN (entropy only)",
            "Mowst-GCN (short turns)", "Mowst-SAGE (short turns)"} <= methods
    assert set(result.summary) == SUMMARY_KEYS
    assert all(0 <= r["mean"] <= 100 for r in result.results)
    assert (tmp_path / "mowst_confidence.png").exists()
    # one seed: the pairs and times have no spread to show; the gain is judged over 2 pairs
    assert result.summary["mowst_beats_both_experts_ci95"] is None
    assert result.summary["train_time_ratio_vs_gnn_ci95"] is None
    assert result.summary["mean_gain_over_gnn_pts_ci95"]["method"] == "t over 2 pairs x 1 seeds"


def test_two_seeds_give_each_claimed_figure_its_interval(tmp_path) -> None:
    result = _on_texas(experiment.run, tmp_path, seeds=2)
    summary = result.summary
    for key in INTERVALS:
        ci = summary[f"{key}_ci95"]
        assert ci["lo"] <= summary[key] <= ci["hi"] and ci["level"] == 0.95, key
    share = len(summary["mowst_beats_both_experts"]) / 2
    ci = summary["mowst_beats_both_experts_ci95"]
    assert ci["lo"] <= share <= ci["hi"] and "t interval over 2 seeds" in ci["method"]
    # the gain is the mean over the (pair, seed) gains of the rows' means
    rows = {r["method"]: r["mean"] for r in result.results}
    best = [max(rows[f"Mowst-{g}"], rows[f"Mowst*-{g}"]) - rows[g] for g in ("GCN", "SAGE")]
    assert summary["mean_gain_over_gnn_pts"] == pytest.approx(sum(best) / 2)
    assert (tmp_path / "mowst_scores.png").exists()


def test_bench_reports_ratios_and_the_routing_sweep(tmp_path) -> None:
    result = _on_texas(experiment.bench, tmp_path)
    assert [(r["dataset"], r["backbone"]) for r in result.results] == [("texas", "GCN"),
                                                                        ("texas", "SAGE")]
    for row in result.results:
        ratios = [row[f"routed_ratio_at_{share:g}"] for share in experiment.ROUTED_SHARES]
        paying = [s for s, r in zip(experiment.ROUTED_SHARES, ratios, strict=True) if r <= 1]
        assert row["break_even_share"] == (min(paying) if paying else None)
        assert 0 <= row["messages_saved"] <= 1 and 0 <= row["query_routed_to_mlp"] <= 1
        for key in ("gnn_val", "mowst_val", "mowst_short_turns_val", "mowst_star_val"):
            assert 0 <= row[key] <= 1, key
    # the summary's ratios are the medians of the rows' (what the README quotes)
    for key, column in (("train_time_ratio_vs_gnn", "mowst_train_ratio"),
                        ("short_turns_train_time_ratio_vs_gnn", "mowst_short_turns_train_ratio"),
                        ("routed_inference_time_ratio_vs_gnn", "routed_inference_ratio"),
                        ("query_routed_inference_time_ratio_vs_gnn",
                         "query_routed_inference_ratio")):
        assert result.summary[key] == statistics.median(r[column] for r in result.results), key
    assert result.summary["goal_routed_inference_le_1x"] == (
        result.summary["routed_inference_time_ratio_vs_gnn"] <= 1)
    assert result.summary["goal_routed_inference_le_1x_per_query"] == (
        result.summary["query_routed_inference_time_ratio_vs_gnn"] <= 1)
    assert (tmp_path / "mowst_routed_inference.png").exists()


def test_flags_narrow_the_size(tmp_path):
    from paperlab.mowst.experiment import Config

    options = {"datasets": ("cora", "texas"), "seeds": 2, "patience": 7, "max_epochs": None,
               "turn_patience": 3}
    cfg = resolve_config(RunContext("mowst", quick=False, seed=0, out_dir=tmp_path,
                                    options=options), Config)
    assert cfg.datasets == ("cora", "texas") and cfg.ablation_datasets == ("cora",)
    assert cfg.bench_datasets == ("cora", "texas")
    assert cfg.seeds == 2 and cfg.ablation_seeds == 2
    assert cfg.train.patience == 7 and cfg.train.max_epochs == Config.full().train.max_epochs
    assert cfg.train.turn_patience == 3 and cfg.short_turns().turn_patience == 7 // 5
    assert Config.quick().with_options({}) == Config.quick()


def test_a_baseline_does_not_depend_on_the_methods_run_before_it(tmp_path) -> None:
    # the ablation adds GCN-based variants that train before SAGE: SAGE must not move
    with_ablation = _on_texas(experiment.run, tmp_path, ablate=True).results
    without = _on_texas(experiment.run, tmp_path, ablate=False).results
    score = {r["method"]: r["mean"] for r in without}
    compared = {"MLP", "GCN", "SAGE", "Mowst-SAGE", "Mowst*-SAGE"}
    rows = [row for row in with_ablation if row["method"] in compared]
    assert {row["method"] for row in rows} == compared
    for row in rows:
        assert row["mean"] == score[row["method"]], row["method"]


def test_the_sweep_gives_the_same_results_on_two_workers_and_resumes_from_disk(
        tmp_path, monkeypatch) -> None:
    def scores(results):  # everything but the wall-clock timings
        timings = {"ms_per_epoch", "train_s", "routed_time_ratio"}
        return [{k: v for k, v in row.items() if k not in timings} for row in results]

    alone = _on_texas(experiment.run, tmp_path / "alone", seed=1, fresh=True).results
    pooled = _on_texas(experiment.run, tmp_path / "pooled", seed=1, fresh=True,
                       workers=2).results
    assert scores(pooled) == scores(alone) and {r["method"] for r in alone} >= {"Mowst-GCN"}

    def must_not_train(*_args):
        raise AssertionError("a finished split was trained again")

    monkeypatch.setattr(experiment, "_run_seed", must_not_train)
    # the stored splits are the pooled run's (it ran last): timings included, they come back
    assert _on_texas(experiment.run, tmp_path / "resumed", seed=1).results == pooled
    with pytest.raises(JobError, match="texas seed=1"):  # --fresh trains again
        _on_texas(experiment.run, tmp_path / "fresh", seed=1, fresh=True)


def _bench_generated(tmp_path, nodes: int = 400, repeats: int = 2):
    cfg = experiment.Config(datasets=(), seeds=1, ablation_datasets=(), ablation_seeds=0,
                            bench_repeats=repeats, draws=5, nodes=nodes,
                            train=TrainConfig(max_epochs=4, patience=2, max_rounds=1))
    return experiment.bench(RunContext("mowst", quick=False, seed=0, out_dir=tmp_path), cfg)


def test_bench_on_a_generated_graph_needs_no_data_and_judges_the_cost_claims(tmp_path):
    result = _bench_generated(tmp_path)
    (graph,) = result.data
    assert graph["name"] == "csbm-400" and graph["generator"] == "contextual SBM"
    assert graph["mean_degree"] == pytest.approx(20, rel=0.1) and graph["generation_s"] >= 0
    assert [(r["dataset"], r["backbone"]) for r in result.results] == [("csbm-400", "GCN"),
                                                                        ("csbm-400", "SAGE")]
    for row in result.results:
        assert row["mlp_test"] == result.results[0]["mlp_test"]  # one MLP per graph
        for method in ("mlp", "gnn", "mowst", "mowst_short_turns", "mowst_star"):
            ci = row[f"{method}_test_ci95"]
            assert ci["lo"] <= row[f"{method}_test"] <= ci["hi"], method
            if method != "gnn":
                # the scores are float32 means: 1e-4 points of rounding (an exact interval's
                # end can equal the difference, e.g. one discordant node)
                diff = row[f"{method}_minus_gnn_pts_ci95"]
                assert diff["lo"] <= row[f"{method}_test"] - row["gnn_test"] + 1e-4, method
                assert row[f"{method}_test"] - row["gnn_test"] - 1e-4 <= diff["hi"], method
        for key in ("routed_inference_ratio", "query_routed_inference_ratio",
                    "mowst_two_turns_epoch_ratio", "mowst_star_epoch_ratio"):
            assert row[f"{key}_ci95"]["method"].startswith("bootstrap of medians"), key
        assert {f"query_ratio_at_{s:g}" for s in experiment.ROUTED_SHARES} <= set(row)
        verdicts = row["cost_verdicts"]
        assert set(verdicts) == {"training_cost", "training_cost (short turns)",
                                 "inference_cost (whole graph)", "inference_cost (per query)"}
        # the verdicts follow the claims' rules: <= 2x training, an interval <= 1x inference
        expected = "reproduced" if row["mowst_train_ratio"] <= 2 else "not reproduced"
        assert verdicts["training_cost"].startswith(f"{expected}: ")
        ci = row["query_routed_inference_ratio_ci95"]
        expected = ("within noise" if ci["lo"] <= 1 <= ci["hi"] else
                    "reproduced" if ci["hi"] < 1 else "not reproduced")
        assert verdicts["inference_cost (per query)"].startswith(f"{expected}: ")
    assert set(result.summary["cost_verdicts"]) == {"csbm-400/GCN", "csbm-400/SAGE"}
    assert (tmp_path / "mowst_routed_inference.png").exists()


def test_one_repeat_gives_the_timings_no_interval(tmp_path):
    row = _bench_generated(tmp_path, nodes=200, repeats=1).results[0]
    assert row["routed_inference_ratio_ci95"] is None
    assert "no interval" in row["cost_verdicts"]["inference_cost (whole graph)"]


def test_nodes_flag_sets_the_scale_training_and_is_bench_only(tmp_path):
    from paperlab.mowst.experiment import SCALE_TRAIN, Config

    cfg = Config.quick().with_options({"nodes": 1000})
    assert cfg.nodes == 1000 and cfg.train == SCALE_TRAIN
    cfg = Config.full().with_options({"nodes": 1000, "patience": 3})
    assert cfg.train.patience == 3 and cfg.train.max_epochs == SCALE_TRAIN.max_epochs
    with pytest.raises(ValueError, match="--nodes sets the generated graph of 'paperlab bench"):
        experiment.run(RunContext("mowst", quick=True, seed=0, out_dir=tmp_path,
                                  options={"nodes": 1000}))


def test_backbones_flag_narrows_the_bench_and_refuses_unknown_names(tmp_path):
    from paperlab.mowst import backbone_list

    assert backbone_list("GCN") == ("gcn",) and backbone_list("sage,gcn") == ("sage", "gcn")
    for bad in ("gat", "gcn,gcn", "gcn,"):
        with pytest.raises(ValueError):
            backbone_list(bad)
    cfg = experiment.Config(datasets=(), seeds=1, ablation_datasets=(), ablation_seeds=0,
                            bench_repeats=1, draws=5, nodes=300,
                            train=TrainConfig(max_epochs=3, patience=2, max_rounds=1))
    result = experiment.bench(RunContext("mowst", quick=False, seed=0, out_dir=tmp_path),
                              cfg.with_options({"backbones": ("sage",)}))
    assert [r["backbone"] for r in result.results] == ["SAGE"]
    with pytest.raises(ValueError, match="--backbones narrows 'paperlab bench mowst'"):
        experiment.run(RunContext("mowst", quick=True, seed=0, out_dir=tmp_path,
                                  options={"backbones": ("gcn",)}))
