"""Z-loss and the spherical family (de Brebisson & Vincent, 2016) with the exact factored
output layer of Vincent et al. (2015): SGD on a D x d output layer in O(d^2) per example.

Usage::

    from paperlab.zloss import SphericalOutputLayer
    layer = SphericalOutputLayer(dim=64, num_classes=50_000, loss="z", a=1.0, b=10.0)
    h = encoder(x)                             # (m, 64), part of an autograd graph
    loss, grad_h = layer.step(h, targets)      # exact SGD step on W in O(m d^2)
    h.backward(grad_h)                         # into the network below
    layer.topk(h, 10)                          # O(D d), only when predictions are asked for
"""

from paperlab.core.claims import Bound, Claim, Threshold, difference, value
from paperlab.core.lazy import lazy_exports
from paperlab.core.registry import Option, System

# Intervals: the speed-up's is the bootstrap of the ratio of medians over each layer's timed
# steps; the top-10 differences' are exact paired (McNemar) intervals over the test examples
# both models were scored on.
_CLAIMS = (
    Claim("output_layer_speedup",
          "At D = 793,471 the factored Z-loss output layer's SGD step beats the full "
          "softmax's (d = 512, one CPU thread)",
          paper="40x (whole network, One Billion Word)",
          rule=Threshold(value("speedup_vs_softmax_at_793k", "x",
                               ci="speedup_vs_softmax_at_793k_ci95"),
                         paper=40.0, tolerance=0.0, null=1.0, at_least=True),
          quick_is_paper_size=True),  # the quick sweep times the same layer at D = 793,471
    Claim("topk_vs_softmax", "Z-loss beats log-softmax on top-10 accuracy",
          paper="better top-k (Penn Treebank)",
          rule=Bound(difference("top10_acc_zloss", "top10_acc_softmax",
                                ci="top10_zloss_minus_softmax_ci95"), limit=0.0)),
    Claim("topk_at_equal_time",
          "Z-loss with (a, b, lr) tuned for top-10 beats log-softmax on top-10 within the "
          "log-softmax's training CPU time",
          paper="better top-k (Penn Treebank; (a, b) tuned for top-k)",
          rule=Bound(difference("top10_zloss_at_softmax_time", "top10_softmax_curve_end",
                                ci="top10_zloss_at_softmax_time_minus_softmax_ci95"),
                     limit=0.0)),
)

SYSTEM = System(
    name="zloss",
    paper="The Z-loss: a shift and scale invariant classification loss belonging to the "
          "Spherical Family (de Brebisson & Vincent, 2016)",
    claim="Z-loss trains a large-vocabulary output layer exactly in O(d^2) per example "
          "(40x faster than log-softmax at D=793,471) and beats log-softmax on top-k",
    run="paperlab.zloss.experiment:run",
    bench="paperlab.zloss.experiment:bench",
    claims=_CLAIMS,
    options=(Option("train_examples", int, "training examples of the LM comparison and the "
                    "equal-time curves (default: quick 20,000, full 300,000)", min=1000),),
)

_EXPORTS = {
    **dict.fromkeys((
        "AdaptiveSoftmaxLayer", "FullSoftmaxLayer"),
        "paperlab.zloss.baselines"),
    "SphericalOutputLayer": "paperlab.zloss.factored",
    **dict.fromkeys((
        "SphericalLoss", "log_softmax_loss", "make_loss", "mse", "spherical_softmax",
        "taylor_softmax", "z_loss"),
        "paperlab.zloss.losses"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["SYSTEM", *_EXPORTS]
