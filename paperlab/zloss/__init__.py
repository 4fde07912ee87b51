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

from paperlab.core.lazy import lazy_exports
from paperlab.core.registry import System

SYSTEM = System(
    name="zloss",
    paper="The Z-loss: a shift and scale invariant classification loss belonging to the "
          "Spherical Family (de Brebisson & Vincent, 2016)",
    claim="Z-loss trains a large-vocabulary output layer exactly in O(d^2) per example "
          "(40x faster than log-softmax at D=793,471) and beats log-softmax on top-k",
    run="paperlab.zloss.experiment:run",
    bench="paperlab.zloss.experiment:bench",
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
