"""PiToMe (Tran et al., NeurIPS 2024): token merging that protects informative tokens.

The energy-score rule itself (energy, margins, protected tokens, the A/B split,
:class:`PiToMeRule`, and :func:`bert_rule`, the reference's rule for text) lives in the shared
substrate, :mod:`paperlab.merging.energy`, so that other systems can merge by it; this module
applies it as PiToMe does: one keep ratio ``r = floor(T - T * keep_ratio)`` for every block, the
margin ``m_l = margin - margin * l / L``, and the reference code's schedule
(``schedule="reference"``, default: an energy-ordered ToMe-style match with nothing protected
in the first ``ceil(L/2)`` blocks, the pure rule after) or the pure rule in every block
(``schedule="pure"``).

    from paperlab import pitome
    pitome.patch(model, keep_ratio=0.9)      # a timm VisionTransformer or a BERT model, in place
"""

from __future__ import annotations

from torch import nn

from paperlab.core import checks
from paperlab.merging import bert
from paperlab.merging.energy import PiToMeRule, bert_rule, layer_margins, layer_protect
from paperlab.merging.vit import apply_rule, vit_depth


def patch(
    model: nn.Module,
    keep_ratio: float,
    *,
    margin: float | None = None,
    schedule: str = "reference",
    prop_attn: bool = False,
    trace_source: bool = False,
    fused: bool | None = None,
) -> nn.Module:
    """Apply PiToMe to a timm ``VisionTransformer`` or a Hugging Face BERT model in place
    (weights untouched); returns it.

    On BERT (``BertModel``, ``BertForSequenceClassification``, ...) ``[CLS]`` is the class
    token, each sentence merges by its own length and padding is never merged or scored (see
    :mod:`paperlab.merging.bert`); ``trace_source`` and ``fused`` apply to ViTs only.

    Patching a patched model again (PiToMe or ToMe) replaces its rule; a model patched by
    ``diffrate.apply`` is refused (use ``diffrate.apply(model, rates, merge_rule="pitome")`` for
    DiffRate's counts with PiToMe's rule).

    Args:
        model: a timm ViT with a class token, or a BERT model.
        keep_ratio: fraction of patch tokens each merging block keeps, in ``[0.5, 1]`` (1: no
            merging; below 0.5 the ``2r`` mergeable tokens would outnumber the patch tokens).
            A Python, NumPy or 0-d tensor number.
        margin: ``m_0``, in ``[-1, 1]`` (the range of the cosine similarity it is compared
            with; ``[-1, 1)`` for BERT's text schedules, whose Gaussian kernel has width
            ``1 - m_l``). ViT: block ``l`` of ``L`` uses ``m_0 - m_0 l / L`` (default 0.75).
            BERT: ``m_0 - 0.25 l / L`` (default 0.9) for the text schedules, as ViT for
            ``"pure"``.
        schedule: ViT: ``"reference"`` (ToMe-style energy-ordered match in the first
            ``ceil(L/2)`` blocks, the pure rule after) or ``"pure"`` (the pure rule in every
            block). BERT: ``"reference"`` (the reference's text rule in the first three layers
            only), ``"every-layer"`` (the same rule in every layer) or ``"pure"`` (the paper's
            ELU rule in every layer).
        prop_attn: proportional attention (off in the reference).
        trace_source: record which patches each token holds.
        fused: force fused (True) or explicit (False) attention; None keeps timm's choice.

    Raises:
        TypeError: ``keep_ratio`` or ``margin`` not a number (a string, a bool, ...); a model
            that is neither a timm ViT nor a BERT model.
        ValueError: ``keep_ratio`` outside ``(0, 1]`` or too small, ``margin`` NaN or out of
            range, unknown ``schedule``, a model patched by DiffRate.
    """
    keep_ratio = checks.real(keep_ratio, "keep_ratio", low=0, high=1, low_open=True)
    text = bert.is_bert(model)
    if margin is not None:
        margin = checks.real(margin, "margin", low=-1, high=1,
                             high_open=text and schedule != "pure")
    if text:
        rule = bert_rule(bert.bert_depth(model), keep_ratio, margin, schedule)
        return bert.apply_rule(model, rule, prop_attn=prop_attn)
    depth = vit_depth(model)
    protect = layer_protect(depth, schedule)
    rule = PiToMeRule(keep_ratio, layer_margins(depth, 0.75 if margin is None else margin),
                      protect)
    return apply_rule(model, rule, prop_attn=prop_attn, trace_source=trace_source, fused=fused)
