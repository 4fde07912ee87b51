"""Modality-neutral token merging: one set of merge rules, one patch per model family.

* :mod:`~paperlab.merging.plan`: :class:`MergePlan`, :func:`match` (bipartite soft matching),
  :func:`merge_wavg` (size-weighted merge), the :class:`MergeRule` protocol, :func:`merge_state`.
* :mod:`~paperlab.merging.tome`: ToMe, the baseline (``tome.patch(model, r)``, a timm ViT or a
  Hugging Face BERT model).
* :mod:`~paperlab.merging.energy`: PiToMe's energy-score rule (:func:`energy_plan`,
  :class:`PiToMeRule`), for PiToMe and for any other schedule of merge counts (DiffRate's).
* :mod:`~paperlab.merging.vit`: the patch for timm ``VisionTransformer`` (:func:`apply_rule`,
  :func:`token_schedule`, :func:`group_map`).
* :mod:`~paperlab.merging.bert`: the patch for Hugging Face BERT encoders (padding-exact),
  :func:`bert_flops`.

Public names are imported on first use: importing this package imports no torch. It imports
:mod:`paperlab.core` only, never a system.
"""

from paperlab.core.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(
        ("MergePlan", "MergeRule", "MergeState", "match", "merge_source", "merge_state",
         "merge_wavg", "mixin_class", "normalized", "per_layer"),
        "paperlab.merging.plan"),
    **dict.fromkeys(("apply_rule", "check_images", "group_map", "token_schedule", "vit_depth"),
                    "paperlab.merging.vit"),
    **dict.fromkeys(("bert_depth", "bert_encoder", "bert_flops", "is_bert"),
                    "paperlab.merging.bert"),
    **dict.fromkeys(
        ("PiToMeRule", "bert_rule", "energy_plan", "energy_score", "layer_margins",
         "layer_protect", "merge_count", "pitome_plan", "text_layers"),
        "paperlab.merging.energy"),
    **dict.fromkeys(("ToMeRule", "bipartite_soft_matching"), "paperlab.merging.tome"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
