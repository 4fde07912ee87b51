"""PiToMe: Accelerating Transformers with Spectrum-Preserving Token Merging (Tran et al.,
NeurIPS 2024), on the shared vision substrate (:mod:`paperlab.vision`), with ToMe as baseline.

Public API::

    from paperlab import pitome
    pitome.patch(model, keep_ratio=0.9)     # a timm VisionTransformer or a Hugging Face
                                            # BERT model, patched in place

The public names are imported on first use, so importing this package imports no torch.
"""

from paperlab.core.claims import Bound, Claim, Threshold, difference, value
from paperlab.core.lazy import lazy_exports
from paperlab.core.parts import parse_parts
from paperlab.core.registry import Option, System, Tool, comma_list


def _ratios(text: str) -> tuple[float, ...]:
    """``"0.9,0.8"`` -> ``(0.9, 0.8)``, each in (0.5, 1)."""
    values = tuple(float(v) for v in comma_list(text))
    if not all(0.5 <= v < 1 for v in values):
        raise ValueError(f"keep ratios must be in [0.5, 1), got {text!r}")
    return values


def _ints(text: str) -> tuple[int, ...]:
    """``"2,4"`` -> ``(2, 4)``, each >= 1."""
    values = tuple(int(v) for v in comma_list(text))
    if not all(v >= 1 for v in values):
        raise ValueError(f"r values must be >= 1, got {text!r}")
    return values


# Accuracies are fractions and FLOPs reductions the fraction saved. A fixed keep ratio saves
# less on a shallow ViT (6 blocks here) than on the paper's 12-32-block models. The FLOPs are
# counted (no noise); the accuracy gap is judged on its exact paired interval over the same test
# images, the speed ratio on the spread of the interleaved timing repeats.
_CLAIMS = (
    Claim("flops_saved", "PiToMe at keep ratio 0.9 saves 40-60% of the ViT's FLOPs",
          paper="40-60% (DeiT-S 4.6 -> 2.60 GFLOPs: 43%)",
          rule=Threshold(value("flops_reduction_at_0.9", exact=True), paper=0.5, tolerance=0.1,
                         null=0.0)),
    Claim("beats_tome", "At matched FLOPs PiToMe keeps more accuracy than ToMe",
          paper="-0.5 vs -2.6 pts average drop (+2.1 pts)",
          rule=Threshold(difference("acc_pitome_at_0.9", "acc_tome_at_matched_flops",
                                    ci="acc_pitome_minus_tome_at_matched_flops_ci95"),
                         paper=0.021, tolerance=0.01, null=0.0)),
    Claim("faster", "PiToMe at keep ratio 0.9 runs faster than the full model",
          paper="faster at every ratio (throughput tables)",
          rule=Bound(value("throughput_ratio_at_0.9", "x", ci="throughput_ratio_at_0.9_ci95"),
                     limit=1.0)),
    # Text: MiniLM fine-tuned here, merged off the shelf at the smallest text keep ratio with
    # the reference's text schedule; the gap's interval is a bootstrap over the evaluated
    # sentences crossed with the fine-tuning seeds.
    *(Claim(f"text_beats_tome_{name}",
            f"On {label}, a fine-tuned BERT encoder merged by PiToMe keeps more accuracy than "
            f"by ToMe at matched FLOPs",
            paper="PiToMe above ToMe off the shelf (BERT, DistilBERT on SST-2, IMDb, Rotten "
                  "Tomatoes)",
            rule=Bound(difference(f"text_{name}_acc_pitome", f"text_{name}_acc_tome_matched",
                                  ci=f"text_{name}_acc_pitome_minus_tome_matched_ci95"),
                       limit=0.0))
      for name, label in (("sst2", "SST-2"), ("rotten_tomatoes", "Rotten Tomatoes"))),
    Claim("text_flops_saved", "PiToMe on the fine-tuned BERT encoder saves 40-60% of its FLOPs "
          "(SST-2 sentences)", paper="40-60% of the base model's FLOPs",
          rule=Threshold(value("text_sst2_flops_reduction", exact=True), paper=0.5,
                         tolerance=0.1, null=0.0)),
)

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
        Option("keep_ratios", _ratios, "PiToMe keep ratios instead of 0.975,0.95,0.925,0.9 "
               "(the smallest is the summary's)", metavar="K1,K2,..."),
        Option("tome_r", _ints, "constant ToMe r values instead of the size's", metavar="R1,R2,.."),
        Option("text_seeds", int, "fine-tuning seeds of the text comparison (full size: 3)",
               min=1, max=10),
        Option("parts", parse_parts, "which comparisons (and benchmarks) run: vision (the CIFAR-10 "
               "ViT), text (the fine-tuned MiniLM; its bench: long inputs) or both (default)",
               metavar="vision,text"),
    ),
    claims=_CLAIMS,
    tools=(Tool("profile", "does token merging pay off for your timm ViT (or MiniLM) at your "
                "batch size: FLOPs and measured speed of the full model, ToMe and PiToMe",
                "paperlab.pitome.cli:profile"),
           Tool("ablate", "why PiToMe trails or ties matched ToMe: on the fine-tuned MiniLM "
                "its text rule's schedule, kernel, margin, proportional attention and metric "
                "ablated, energy per layer, which tokens merge; with --modality vision the same "
                "on the distilled CIFAR-10 ViT (energy of protected and merged tokens per block, "
                "overlap of merged patches on disagreeing images, where merged patches lie)",
                "paperlab.pitome.cli:ablate")),
)

# The energy-score rule and its text rule live in the shared substrate (paperlab.merging.energy);
# PiToMe's public API keeps the names.
_EXPORTS = {
    **dict.fromkeys(
        ("PiToMeRule", "bert_rule", "energy_score", "layer_margins", "merge_count",
         "pitome_plan"),
        "paperlab.merging.energy"),
    "patch": "paperlab.pitome.merge",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["SYSTEM", *_EXPORTS]
