"""The Two-Pass Softmax Algorithm (Dukhan & Ablavatski, 2020) as C kernels for NumPy/torch.

>>> import numpy as np
>>> from paperlab.softmax import softmax
>>> y = softmax(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))

The public names are imported on first use: importing this package imports NumPy only
(``TwoPassSoftmax``, an ``nn.Module``, imports torch).
"""

from paperlab.core.lazy import lazy_exports
from paperlab.core.registry import System

SYSTEM = System(
    name="softmax",
    paper="The Two-Pass Softmax Algorithm (Dukhan & Ablavatski, arXiv 2020)",
    claim="Out of cache, two-pass softmax beats three-pass by up to 28% (AVX-512) and 18% "
    "(AVX2) on Skylake-X by reading the input twice instead of three times",
    run="paperlab.softmax.experiment:run",
    bench="paperlab.softmax.experiment:bench",
)

_EXPORTS = {
    **dict.fromkeys((
        "ALGORITHMS", "backend", "combine_partial_sums", "log_softmax", "softmax"),
        "paperlab.softmax.twopass"),
    "TwoPassSoftmax": "paperlab.softmax.torch_op",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["SYSTEM", *_EXPORTS]
