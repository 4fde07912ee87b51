"""DiffRate: Differentiable Compression Rate for Efficient Vision Transformers (Chen et al.,
ICCV 2023), on the shared vision, text and merging substrates, with ToMe and a uniform
schedule as baselines.

Public API::

    from paperlab import diffrate
    rates = diffrate.search(model, train_images, target_gflops=0.01)   # per-block kept counts
    rates.save("rates.json"); rates = diffrate.Rates.load("rates.json")
    diffrate.apply(model, rates)        # a timm ViT (DeiT distilled too), patched in place
    diffrate.apply(model, rates, merge_rule="pitome")   # the same counts, PiToMe's merge rule
    rates = diffrate.search(bert, sentences, target_gflops=0.12, tokenizer=tok)   # BERT
    diffrate.apply(bert, rates)         # counts as fractions of each sentence's tokens

The public names are imported on first use, so importing this package imports no torch.
"""

from paperlab.core.claims import Bound, Claim, Threshold, difference, value
from paperlab.core.lazy import lazy_exports
from paperlab.core.parts import parse_parts
from paperlab.core.registry import Option, System

# Accuracies are fractions. The accuracy claims are judged on the exact paired interval of the
# difference over the same test images, the speed ratio on the spread of the interleaved timing
# repeats; the FLOPs reduction is counted (no noise).
_CLAIMS = (
    Claim("small_drop_mid",
          "Learned rates applied off the shelf (no fine-tuning) cost under one point of top-1 "
          "at the middle FLOPs target",
          paper="DeiT-S 79.8 -> 79.54 at 2.9 of 4.6 GFLOPs (-0.26 pts)",
          rule=Bound(difference("acc_diffrate_mid", "acc_full",
                                ci="acc_diffrate_mid_minus_full_ci95"), limit=-0.01)),
    Claim("beats_uniform",
          "Learned per-layer rates are at least as accurate as a uniform schedule at the same "
          "FLOPs", paper="learned rates beat handcrafted ones (Tables 1-2)",
          rule=Bound(difference("acc_diffrate_mid", "acc_uniform_same_flops",
                                ci="acc_diffrate_mid_minus_uniform_ci95"),
                     limit=0.0, inclusive=True)),
    Claim("flops_reduction_mid", "The middle target removes about 37% of the FLOPs",
          paper="2.9 of 4.6 GFLOPs (37%)",
          rule=Threshold(value("flops_reduction_mid", exact=True), paper=0.37, tolerance=0.05,
                         null=0.0)),
    Claim("throughput_mid", "The reduced model is faster than the full one",
          paper="1.5x throughput (ViT-H MAE at 40% fewer FLOPs)",
          rule=Bound(value("throughput_ratio_mid", "x", ci="throughput_ratio_mid_ci95"),
                     limit=1.0)),
    # Text (ours: no paper reports DiffRate on text). MiniLM fine-tuned on SST-2 here, rates
    # searched at the FLOPs of PiToMe keep 0.65 (reference text schedule), evaluated on the dev
    # sentences; the gaps' intervals are a bootstrap over sentences crossed with the
    # fine-tuning seeds.
    Claim("text_beats_tome",
          "On SST-2, a fine-tuned BERT encoder reduced by learned DiffRate rates is at least as "
          "accurate as ToMe at the same FLOPs",
          paper="no paper reports DiffRate on text (ours); on ImageNet DiffRate is above ToMe "
                "at equal FLOPs",
          rule=Bound(difference("text_acc_diffrate", "text_acc_tome",
                                ci="text_acc_diffrate_minus_tome_ci95"),
                     limit=0.0, inclusive=True)),
    Claim("text_beats_uniform",
          "On SST-2, learned per-layer rates are at least as accurate as a uniform schedule at "
          "the same FLOPs",
          paper="no paper reports DiffRate on text (ours); learned rates beat handcrafted ones "
                "on ImageNet",
          rule=Bound(difference("text_acc_diffrate", "text_acc_uniform",
                                ci="text_acc_diffrate_minus_uniform_ci95"),
                     limit=0.0, inclusive=True)),
    Claim("text_flops_on_target",
          "The search lands on its FLOPs target on text: the learned rates save what PiToMe at "
          "keep 0.65 saves on SST-2 dev",
          paper="no paper (ours): the target, PiToMe keep 0.65 with the reference's text "
                "schedule, saves 54% of MiniLM's FLOPs on SST-2 dev",
          rule=Threshold(value("text_flops_reduction", exact=True), paper=0.54, tolerance=0.03,
                         null=0.0)),
)

SYSTEM = System(
    name="diffrate",
    paper="DiffRate: Differentiable Compression Rate for Efficient Vision Transformers "
          "(Chen et al., ICCV 2023)",
    claim="Per-layer pruning and merging rates learned by gradient descent to a FLOPs target "
          "keep a ViT's accuracy off the shelf at ~37% fewer FLOPs, better than a uniform "
          "schedule",
    run="paperlab.diffrate.experiment:run",
    bench="paperlab.diffrate.experiment:bench",
    claims=_CLAIMS,
    options=(
        Option("retrain", int, "1: retrain the ViT even if a cached checkpoint exists",
               choices=(0, 1)),
        Option("epochs", int, "training epochs of the ViT (a different checkpoint)", min=1),
        Option("eval_images", int, "test images evaluated (of 10,000)", min=100, max=10000),
        Option("search_epochs", int, "epochs of the ViT's rate search", min=1),
        Option("parts", parse_parts, "which comparisons run: vision (the CIFAR-10 ViT), text (a "
               "fine-tuned MiniLM on SST-2) or both (default)", metavar="vision,text"),
        Option("text_seeds", int, "fine-tuning seeds of the text comparison (one search each; "
               "full size: 1)", min=1, max=10),
    ),
)

_EXPORTS = {
    **dict.fromkeys(
        ("SearchConfig", "apply", "flops_range", "rates_flops", "rule_tokens", "search",
         "uniform_rates"),
        "paperlab.diffrate.model"),
    "MERGE_RULES": "paperlab.diffrate.steps",
    **dict.fromkeys(("RateProxy", "Rates", "flops_loss"), "paperlab.diffrate.rates"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["SYSTEM", *_EXPORTS]
