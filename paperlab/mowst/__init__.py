"""Mowst: Mixture of Weak & Strong Experts on Graphs (Zeng et al., ICLR 2024).

A confidence-gated mixture of an MLP (weak expert, node features only) and a GNN (strong
expert). See :mod:`paperlab.mowst.mowst` for the model, :mod:`paperlab.mowst.training` for
Mowst / Mowst* training and evaluation, :mod:`paperlab.mowst.datasets` for the staged graphs,
:mod:`paperlab.mowst.synthetic` for generated contextual SBM graphs of any size.
The public names below are imported on first use, so importing this package imports no torch.
"""

from paperlab.core.claims import Bound, Claim, Threshold, fraction, value
from paperlab.core.lazy import lazy_exports
from paperlab.core.registry import Option, System, comma_list

BACKBONE_NAMES = ("gcn", "sage")  # the strong experts the run and the bench compare


def backbone_list(text: str) -> tuple[str, ...]:
    """Parse ``--backbones gcn,sage``: known names only, each once."""
    names = tuple(name.lower() for name in comma_list(text))
    unknown = [name for name in names if name not in BACKBONE_NAMES]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"choose distinct backbones among {','.join(BACKBONE_NAMES)}")
    return names

_CLAIMS = (
    Claim("beats_both_experts",
          "The best Mowst variant scores at least as well as both its MLP and its GNN",
          paper="on every benchmark and backbone (share of pairs 1.0)",
          rule=Threshold(fraction("mowst_beats_both_experts", "datasets", per=2,
                                  ci="mowst_beats_both_experts_ci95"),
                         paper=1.0, tolerance=0.1, null=0.5),
          how="our figure: share of (data set, backbone) pairs where the best Mowst variant's "
              "mean over seeds is >= both experts'. Its interval runs from the pairs that "
              "hold (the t interval over seeds of the per-seed score difference is >= 0 "
              "against both experts) to the pairs not lost (not significantly below either); "
              "a pair within the seeds' noise counts as neither. Within noise if the interval "
              "holds 0.5; reproduced if it reaches 0.9 (more than half the pairs hold, at "
              "most 10% lost); direction if above 0.5; no interval with one seed"),
    Claim("gain_over_gnn", "Mowst scores above its GNN, on average over data sets and backbones",
          paper="above the GNN on every benchmark",
          rule=Bound(value("mean_gain_over_gnn_pts", " pts", ci="mean_gain_over_gnn_pts_ci95"),
                     limit=0.0),
          how="mean over (pair, seed) of best Mowst minus its GNN, with a t interval over "
              "those gains (the pairs' spread counts as noise too): reproduced if the "
              "interval is above 0, within noise if it holds 0, else not reproduced"),
    Claim("training_cost", "Training Mowst end to end costs at most twice training its GNN",
          paper="comparable to one GNN (1.1-1.9x per step)",
          rule=Bound(value("train_time_ratio_vs_gnn", "x", ci="train_time_ratio_vs_gnn_ci95"),
                     limit=2.0, above=False, inclusive=True),
          how="per seed, the median over pairs of Mowst's training time (GNN pre-training "
              "included) over the GNN's; geometric mean over seeds with a t interval on the "
              "log scale: reproduced if the interval is <= 2x, within noise if it holds 2x, "
              "else not reproduced"),
    Claim("inference_cost",
          "Routed inference (the GNN only where the MLP is unsure) costs no more than the GNN",
          paper="<= 1x one GNN",
          rule=Bound(value("routed_inference_time_ratio_vs_gnn", "x",
                           ci="routed_inference_time_ratio_vs_gnn_ci95"),
                     limit=1.0, above=False, inclusive=True),
          how="per seed, the median over pairs of routed / full-GNN inference time (medians "
              "of interleaved repeats); geometric mean over seeds with a t interval on the log "
              "scale: reproduced if the interval is <= 1x, within noise if it holds 1x, else "
              "not reproduced"),
)

SYSTEM = System(
    name="mowst",
    paper="Mixture of Weak & Strong Experts on Graphs (Zeng et al., ICLR 2024)",
    claim="A confidence-gated MLP+GNN mixture (Mowst) beats both its experts on homophilous "
          "and heterophilous graphs at about the cost of one GNN",
    run="paperlab.mowst.experiment:run",
    bench="paperlab.mowst.experiment:bench",
    claims=_CLAIMS,
    options=(
        Option("datasets", comma_list,
               "comma-separated data sets to run (or bench) instead of the size's list",
               metavar="A,B,..."),
        Option("seeds", int, "number of seeds (splits) instead of the size's", min=1),
        Option("max_epochs", int, "training limit: epochs per expert or turn", min=1),
        Option("patience", int, "training limit: early-stopping patience in epochs", min=1),
        Option("max_rounds", int, "training limit: Mowst's big epochs (two turns each)", min=1),
        Option("turn_patience", int,
               "early-stopping patience of Mowst's turns (default: --patience)", min=1),
        Option("nodes", int,
               "bench only: a generated contextual SBM graph of this many nodes (mean degree "
               "20, 100 features, half the nodes easy for an MLP) instead of the staged graphs",
               min=20),
        Option("backbones", backbone_list,
               "bench only: GNN backbones (strong experts) to bench, among gcn,sage (default both)",
               metavar="B,..."),
    ),
)

_EXPORTS = {
    **dict.fromkeys((
        "GAT", "GCN", "GIN", "GNN", "MLP", "STRONG_EXPERTS", "GraphSAGE", "LocalOutput",
        "as_adj_t", "gcn_adjacency", "row_block", "with_self_loops"),
        "paperlab.mowst.experts"),
    **dict.fromkeys((
        "ConfidenceGate", "Mowst", "MowstOutput", "RoutedPrediction", "check_graph",
        "check_node_ids", "dispersion", "dispersion_entropy", "dispersion_variance",
        "receptive_field"),
        "paperlab.mowst.mowst"),
    **dict.fromkeys((
        "MowstReport", "NodeTask", "TrainConfig", "TrainReport", "evaluate", "gate_collapsed",
        "mowst_loss", "mowst_star_loss", "random_gating_scores", "roc_auc", "train_expert",
        "train_mowst", "train_mowst_star"),
        "paperlab.mowst.training"),
    **dict.fromkeys(("CSBM", "CSBMGraph", "contextual_sbm", "edge_homophily"),
                    "paperlab.mowst.synthetic"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["SYSTEM", *_EXPORTS]
