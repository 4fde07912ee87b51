"""PiToMe: Accelerating Transformers with Spectrum-Preserving Token Merging (Tran et al.,
NeurIPS 2024), on the shared vision substrate (:mod:`paperlab.vision`), with ToMe as baseline.

Public API::

    from paperlab import pitome
    pitome.patch(model, keep_ratio=0.9)     # a timm VisionTransformer, patched in place

The public names are imported on first use, so importing this package imports no torch.
"""

from paperlab.core.lazy import lazy_exports
from paperlab.core.registry import Option, System

SYSTEM = System(
    name="pitome",
    paper="Accelerating Transformers with Spectrum-Preserving Token Merging "
          "(Tran et al., NeurIPS 2024)",
    claim="Merging high-energy (redundant) tokens and protecting low-energy ones saves 40-60% "
          "of a ViT's FLOPs off the shelf with a smaller accuracy drop than ToMe at equal FLOPs",
    run="paperlab.pitome.experiment:run",
    bench="paperlab.pitome.experiment:bench",
    options=(
        Option("retrain", int, "1: retrain the ViT even if a cached checkpoint exists",
               choices=(0, 1)),
        Option("epochs", int, "training epochs of the ViT (a different checkpoint)", min=1),
        Option("eval_images", int, "test images evaluated (of 10,000)", min=100, max=10000),
    ),
)

_EXPORTS = {
    **dict.fromkeys(
        ("PiToMeRule", "energy_score", "layer_margins", "merge_count", "patch", "pitome_plan"),
        "paperlab.pitome.merge"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["SYSTEM", *_EXPORTS]
