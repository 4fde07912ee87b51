"""Token merging on a Hugging Face BERT encoder (``BertModel``, ``BertFor*``), any merge rule.

The same machinery as the timm ViT patch: :func:`apply_rule` swaps the class of the model's
``BertEncoder`` (weights untouched) so that every layer does

    self-attention (keys averaged over heads -> metric; + log(size) on the logits if prop_attn)
    -> output projection, residual, LayerNorm -> rule.plan(metric, layer) -> size-weighted
    merge -> feed-forward, residual, LayerNorm

with ``[CLS]`` as the one prefix token, never merged and always first, so BERT's pooler and a
sequence classifier's head read it where they expect it.

Padding. A padded batch is run as groups of sentences of equal real length, each group without
any padding, and the outputs are padded again at the end: no pad token is ever merged, matched
or counted in a score, and each sentence gets the output it gets alone (up to float rounding
of the batched matrix products). After the encoder, :func:`~paperlab.merging.plan.merge_state`
gives ``size`` ``(B, K, 1)`` (original tokens per output token, 0 at padding) and ``mask``
``(B, K)``, the attention mask shrunk with the tokens. The attention is computed here in plain
PyTorch from the layer's own weights, so the patch works whatever ``attn_implementation`` the
model was loaded with (eager, SDPA or flash).

A token reduction that is not a :class:`~paperlab.merging.plan.MergeRule` (DiffRate's pruning
by the ``[CLS]`` attention, its masked search) builds its own encoder patch from the same
pieces: :func:`patch_encoder` (checks and the class swap), :func:`grouped_forward` (the
padding-exact grouping by length) and :func:`self_attention` (one layer's attention with size
bias and key weights, returning the probabilities).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from paperlab.merging.plan import MergeRule, MergeState, check_unpatched, merge_wavg, mixin_class

PREFIX = 1  # [CLS]


def _bert_classes() -> tuple[type, type, type]:
    from transformers.models.bert.modeling_bert import BertEncoder, BertLayer, BertModel

    return BertModel, BertEncoder, BertLayer


def is_bert(model: nn.Module) -> bool:
    """Whether ``model`` is a BERT encoder, a ``BertModel`` or a model holding one as ``.bert``."""
    try:
        bert_encoder(model)
    except TypeError:
        return False
    return True


def bert_encoder(model: nn.Module) -> nn.Module:
    """The ``BertEncoder`` of ``model`` (itself, ``model.encoder`` or ``model.bert.encoder``).

    Raises:
        TypeError: ``model`` holds no Hugging Face ``BertEncoder``.
    """
    try:
        bert_model, encoder_cls, _ = _bert_classes()
    except ImportError:  # transformers is not installed, so it is not a BERT model
        raise TypeError(f"expected a Hugging Face BERT model, got {type(model).__name__}") \
            from None
    inner = getattr(model, "bert", model)
    if isinstance(model, encoder_cls):
        return model
    if isinstance(inner, bert_model):
        return inner.encoder
    raise TypeError(f"expected a Hugging Face BERT model (BertModel, BertFor..., BertEncoder), "
                    f"got {type(model).__name__}")


def bert_depth(model: nn.Module) -> int:
    """Number of layers of a BERT encoder; ``TypeError`` for any other model."""
    return len(bert_encoder(model).layer)


def valid_tokens(attention_mask: torch.Tensor | None, batch: int, n: int) -> torch.Tensor:
    """``(B, N)`` bool, True at real tokens, from any form of attention mask BERT passes its
    encoder: ``None``, a ``(B, N)`` 0/1 mask, or a ``(B, 1, Q, N)`` additive float or boolean
    mask (read from the first query row, a real token)."""
    if attention_mask is None:
        return torch.ones(batch, n, dtype=torch.bool)
    m = attention_mask
    if m.ndim == 4:
        m = m[:, 0, 0, :]
        valid = m if m.dtype == torch.bool else m == 0
    elif m.ndim == 2:
        valid = m != 0
    else:
        raise ValueError(f"expected an attention mask of shape (B, N) or (B, 1, Q, N), got "
                         f"{tuple(attention_mask.shape)}")
    if tuple(valid.shape) != (batch, n):
        raise ValueError(f"attention mask {tuple(valid.shape)} does not fit tokens {(batch, n)}")
    return valid


def self_attention(layer: nn.Module, x: torch.Tensor, size: torch.Tensor | None = None,
                   key_weights: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One ``BertLayer``'s self-attention block in plain PyTorch from the layer's own weights
    (so any ``attn_implementation`` works), on unpadded tokens.

    Args:
        layer: a transformers ``BertLayer`` (its dropout follows its training mode).
        x: ``(G, N, C)`` hidden states, no padding.
        size: ``(G, N, 1)`` token sizes: ``log(size)`` is added to the logits (proportional
            attention); None adds nothing.
        key_weights: ``(G, N)`` weights of the keys (0 excludes a key; differentiable), applied
            to the attention probabilities, which are renormalised; None for all ones.

    Returns:
        ``h`` ``(G, N, C)`` after the output projection, residual and LayerNorm (the input of
        the feed-forward); the keys averaged over heads ``(G, N, C / heads)`` (the merge
        rules' metric); the attention probabilities ``(G, heads, N, N)`` (row 0 is the
        ``[CLS]`` query).
    """
    att = layer.attention.self
    g, n, _ = x.shape
    shape = (g, n, att.num_attention_heads, att.attention_head_size)
    q, k, v = (proj(x).view(shape).transpose(1, 2) for proj in (att.query, att.key, att.value))
    logits = torch.matmul(q, k.transpose(2, 3)) * att.attention_head_size ** -0.5
    if size is not None:
        logits = logits + size.log()[:, None, None, :, 0]
    probs = logits.softmax(dim=-1)
    if key_weights is not None:
        probs = probs * key_weights[:, None, None, :]
        probs = probs / probs.sum(dim=-1, keepdim=True)
    dropped = nn.functional.dropout(probs, p=att.dropout.p, training=att.training)
    context = torch.matmul(dropped, v).transpose(1, 2).reshape(g, n, -1)
    return layer.attention.output(context, x), k.mean(dim=1), probs


GroupRun = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, list[tuple[Any, Any]]]]


def grouped_forward(hidden_states: torch.Tensor, attention_mask: torch.Tensor | None,
                    encoder_hidden_states: torch.Tensor | None, run: GroupRun
                    ) -> tuple[Any, torch.Tensor, list[tuple[Any, Any]]]:
    """A ``BertEncoder`` forward over a padded batch run as groups of equal real length.

    Each group's real tokens (in order; right or left padding alike) go through ``run`` without
    any padding, and the outputs are padded again on the right: no pad token is ever attended
    to, ranked, merged or scored, and each sentence gets the output it gets alone (up to float
    rounding of the batched products).

    Args:
        hidden_states: ``(B, N, C)`` the embeddings, padded.
        attention_mask: any mask BERT passes its encoder (see :func:`valid_tokens`).
        encoder_hidden_states: must be None (cross-attention is refused).
        run: ``run(x)`` with ``x`` ``(G, L, C)``, ``G`` sentences of ``L`` real tokens, returns
            the reduced tokens ``(G, K, C)``, their sizes ``(G, K, 1)`` and the ``(tokens in,
            tokens out)`` of each layer.

    Returns:
        the encoder's output (``last_hidden_state`` ``(B, K_max, C)``, zeros at padding), the
        sizes ``(B, K_max, 1)`` (0 at padding) and the longest sentence's tokens per layer.

    Raises:
        ValueError: cross-attention, a sequence without a real token, or a malformed mask.
    """
    from transformers.modeling_outputs import BaseModelOutputWithPastAndCrossAttentions

    if encoder_hidden_states is not None:
        raise ValueError("token reduction does not support cross-attention (a BERT decoder)")
    b, n, c = hidden_states.shape
    valid = valid_tokens(attention_mask, b, n).to(hidden_states.device)
    lengths = valid.sum(dim=1)
    if int(lengths.min()) < 1:
        raise ValueError("every sequence needs at least one real token ([CLS])")
    groups = []
    for length in lengths.unique().tolist():
        rows = (lengths == length).nonzero().flatten()
        out, size, tokens = run(hidden_states[rows][valid[rows]].reshape(len(rows), length, c))
        groups.append((rows, out, size, tokens))
    width = max(out.shape[1] for _, out, _, _ in groups)
    hidden = hidden_states.new_zeros(b, width, c)
    sizes = hidden_states.new_zeros(b, width, 1)
    for rows, out, size, _ in groups:
        hidden[rows, : out.shape[1]] = out
        sizes[rows, : out.shape[1]] = size
    longest = max((g[3] for g in groups), key=lambda t: t[0][0])
    return BaseModelOutputWithPastAndCrossAttentions(last_hidden_state=hidden), sizes, longest


def patch_encoder(model: nn.Module, mixin: type) -> nn.Module:
    """Swap the class of ``model``'s ``BertEncoder`` for ``mixin`` layered over it (weights
    untouched; :func:`~paperlab.merging.plan.mixin_class`) and return the encoder.

    Raises:
        TypeError: no Hugging Face ``BertEncoder`` in ``model``, or a layer is not a
            ``BertLayer``.
        ValueError: a decoder (causal or cross-attention) configuration, or an encoder already
            patched by another token reduction (the two do not stack).
    """
    _, _, layer_cls = _bert_classes()
    encoder = bert_encoder(model)
    config = getattr(encoder, "config", None)
    if config is not None and (config.is_decoder or config.add_cross_attention):
        raise ValueError("token reduction needs a bidirectional BERT encoder, not a decoder")
    if not all(isinstance(layer, layer_cls) for layer in encoder.layer):
        raise TypeError("every layer must be a transformers BertLayer")
    check_unpatched(encoder, mixin)
    if not isinstance(encoder, mixin):
        encoder.__class__ = mixin_class(mixin, type(encoder))
    return encoder


class _MergeBertEncoder:
    """Mixed into the model's ``BertEncoder`` class: runs the layers with merging."""

    patch_name = "token merging (paperlab.merging: tome.patch, pitome.patch)"
    _merge_state: MergeState
    layer: nn.ModuleList

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                encoder_hidden_states: torch.Tensor | None = None, **kwargs: Any) -> Any:
        state = self._merge_state
        state.reset()
        output, state.size, state.tokens = grouped_forward(
            hidden_states, attention_mask, encoder_hidden_states, self._merged_layers)
        state.mask = state.size[..., 0] > 0
        return output

    def _merged_layers(self, x: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        """Run every layer on unpadded ``x`` ``(G, L, C)``; returns the output, the sizes
        ``(G, K, 1)`` and the ``(tokens in, tokens out)`` of each layer."""
        state = self._merge_state
        state.rule.schedule(x.shape[1], len(self.layer), PREFIX)  # too many merges: say so
        size: torch.Tensor | None = None
        tokens = []
        for index, layer in enumerate(self.layer):
            n = x.shape[1]
            h, metric, _ = self_attention(layer, x, size if state.prop_attn else None)
            plan = state.rule.plan(metric, index, PREFIX)
            if plan is not None:
                h, size = merge_wavg(plan, h, size)
            tokens.append((n, h.shape[1]))
            x = layer.feed_forward_chunk(h)
        if size is None:
            size = torch.ones_like(x[..., :1])
        return x, size, tokens


def apply_rule(model: nn.Module, rule: MergeRule, *, prop_attn: bool = True) -> nn.Module:
    """Patch the BERT encoder of ``model`` in place to merge tokens by ``rule``; returns it.

    Patching an already patched model only replaces the rule and the option. The rule is asked
    for a plan in every layer with the ``[CLS]`` token as the one prefix token; its
    ``schedule`` is checked on each sentence's length as it comes.

    Raises:
        TypeError: no Hugging Face ``BertEncoder`` in ``model``, or a layer is not a
            ``BertLayer``.
        ValueError: a decoder (causal or cross-attention) configuration, or a model patched by
            another token reduction (``diffrate.apply``).
    """
    encoder = patch_encoder(model, _MergeBertEncoder)
    state = MergeState(rule, prop_attn, False, PREFIX)
    encoder._merge_state = state
    model._merge_state = state  # merge_state(model) works on the outer model too
    return model


def bert_flops(config: Any, tokens: list[tuple[int, int]], num_labels: int = 0) -> float:
    """Multiply-adds of one sequence through a BERT encoder whose layers may merge tokens.

    Per layer with ``N`` tokens in and ``N'`` after the merge (width ``C``, intermediate ``I``):
    attention ``4 N C^2 + 2 N^2 C`` (query, key, value and output projections; QK^T and AV),
    feed-forward ``2 N' C I``; plus the pooler ``C^2`` and the classifier ``C * num_labels``.
    Embeddings (lookups), norms, softmax and the merge are not counted, as in the papers.

    Args:
        config: the model's ``BertConfig`` (``hidden_size``, ``intermediate_size``).
        tokens: ``(tokens in, tokens out)`` per layer, ``[CLS]`` and ``[SEP]`` included.
        num_labels: classifier outputs (0: no classifier).
    """
    c, inner = int(config.hidden_size), int(config.intermediate_size)
    total = 0.0
    for n_in, n_out in tokens:
        if n_out > n_in or n_out < 1:
            raise ValueError(f"a layer cannot go from {n_in} to {n_out} tokens")
        total += 4 * n_in * c * c + 2 * n_in * n_in * c + 2 * n_out * c * inner
    return total + c * c + c * num_labels


def mean_bert_flops(config: Any, schedule: Callable[[int], list[tuple[int, int]]],
                    lengths: Sequence[int], num_labels: int = 0) -> float:
    """Mean :func:`bert_flops` per sentence over sentences of ``lengths`` tokens (``[CLS]`` and
    ``[SEP]`` included), each run with ``schedule(length)`` (its ``(tokens in, tokens out)`` per
    layer; called once per distinct length).

    Raises:
        ValueError: no lengths.
    """
    if not lengths:
        raise ValueError("mean_bert_flops needs at least one sentence length")
    total = sum(count * bert_flops(config, schedule(n), num_labels)
                for n, count in Counter(lengths).items())
    return total / len(lengths)
