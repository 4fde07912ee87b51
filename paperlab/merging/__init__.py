"""Modality-neutral token merging: one set of merge rules, one patch per model family.

* :mod:`~paperlab.merging.plan`: :class:`MergePlan`, :func:`match` (bipartite soft matching),
  :func:`merge_wavg` (size-weighted merge), the :class:`MergeRule` protocol, :func:`merge_state`.
* :mod:`~paperlab.merging.tome`: ToMe, the baseline (``tome.patch(model, r)``, a timm ViT or a
  Hugging Face BERT model), ToMe at another rule's merge counts (``tome.patch_matched``) or
  following another method's token schedule (:func:`tome_counts`).
* :mod:`~paperlab.merging.energy`: PiToMe's energy-score rule (:func:`energy_plan` for any merge
  count, :class:`PiToMeRule`, the reference's text rule :func:`bert_rule`), for PiToMe and for
  any other schedule of merge counts (DiffRate's).
* :mod:`~paperlab.merging.prune`: DiffRate's reduction, pruning by the class token's attention
  then merging (:func:`prune_merge`; :func:`prune_energy_merge` merges by the energy rule).
* :mod:`~paperlab.merging.vit`: the patch for timm ``VisionTransformer`` (:func:`apply_rule`,
  :func:`token_schedule`, :func:`group_map`).
* :mod:`~paperlab.merging.bert`: the patch for Hugging Face BERT encoders (padding-exact), the
  pieces other BERT patches build on, :func:`bert_flops` and :func:`mean_bert_flops`.

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
    **dict.fromkeys(
        ("bert_depth", "bert_encoder", "bert_flops", "grouped_forward", "is_bert",
         "mean_bert_flops", "patch_encoder", "self_attention"),
        "paperlab.merging.bert"),
    **dict.fromkeys(
        ("PiToMeRule", "bert_rule", "energy_plan", "energy_score", "layer_margins",
         "layer_protect", "merge_count", "pitome_plan", "text_layers"),
        "paperlab.merging.energy"),
    **dict.fromkeys(("MatchedToMeRule", "ToMeRule", "bipartite_soft_matching", "tome_counts"),
                    "paperlab.merging.tome"),
    **dict.fromkeys(("energy_merges", "prune_energy_merge", "prune_merge", "rank"),
                    "paperlab.merging.prune"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
