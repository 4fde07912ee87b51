"""Fourier Head (Gillman et al., ICLR 2025): an output layer that predicts a smooth density.

Public API::

    from paperlab.fourier_head import FourierHead, FourierHeadMLE
    head = FourierHead(dim_in=32, num_bins=50, num_frequencies=12)   # log-pmf over 50 bins
    loss = F.cross_entropy(head(h), bins) + head.regularization_loss()
"""

from paperlab.core.claims import Claim, Threshold, ratio
from paperlab.core.lazy import lazy_exports
from paperlab.core.registry import Option, System

# Each ratio's 95 % interval: a t-interval over seeds of the per-seed log-ratio (the two
# heads of one seed share its data), exponentiated; none with one seed.
_CLAIMS = (
    Claim("kl_gmm2",
          "The Fourier head (N = 12) fits the gmm2 toy density with lower KL than a linear head",
          paper="KL 0.238 -> 0.171 (ratio 0.72)",
          rule=Threshold(ratio("kl_gmm2_fourier_n12", "kl_gmm2_linear",
                               ci="kl_gmm2_fourier_n12_over_linear_ci95"),
                         paper=0.72, tolerance=0.1, null=1.0, better="lower")),
    Claim("smoothness_gmm2", "The Fourier head's gmm2 densities are smoother than a linear head's",
          paper="smoothness 0.068 -> 0.035 (ratio 0.51)",
          rule=Threshold(ratio("smoothness_gmm2_fourier_n12", "smoothness_gmm2_linear",
                               ci="smoothness_gmm2_fourier_n12_over_linear_ci95"),
                         paper=0.51, tolerance=0.1, null=1.0, better="lower")),
)

SYSTEM = System(
    name="fourier_head",
    paper="Fourier Head: Helping Large Language Models Learn Complex Probability Distributions "
          "(Gillman et al., ICLR 2025)",
    claim="A Fourier-series output head learns smoother, more accurate densities over ordered "
          "bins than a linear head (toy gmm2 KL 0.238 -> 0.171, smoothness 0.068 -> 0.035)",
    run="paperlab.fourier_head.experiment:run",
    bench="paperlab.fourier_head.experiment:bench",
    claims=_CLAIMS,
    options=(Option("reference_dir", str, "checkout of nate-gillman/fourier-head whose toy "
                    "script ran for gmm2 (its KLs are reported beside ours)", metavar="DIR"),),
)

_EXPORTS = {
    **dict.fromkeys((
        "FourierDensity", "FourierHead", "FourierHeadMLE", "autocorrelation", "bin_centers",
        "regularization"),
        "paperlab.fourier_head.fourier"),
    "GMMHead": "paperlab.fourier_head.gmm",
    **dict.fromkeys((
        "crps_discrete", "expected_bin_mse", "kl_divergence", "smoothness"),
        "paperlab.fourier_head.metrics"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["SYSTEM", *_EXPORTS]
