"""DiffRate's patch of a Hugging Face BERT encoder (``BertModel``, ``BertFor*``), built from the
substrate's BERT machinery (:mod:`paperlab.merging.bert`): the encoder's class is swapped
(weights untouched), a padded batch runs as groups of sentences of equal real length without
padding, and every layer does self-attention (``+ log(size)``; masked keys during the search),
output projection, residual and LayerNorm, then DiffRate's reduction, then the feed-forward.

``[CLS]`` is the one prefix token: never pruned or merged, always first (the pooler and a
sequence classifier's head read it there); the others are ranked by its attention. A schedule
is applied to each sentence at its own length (:meth:`~paperlab.diffrate.rates.Rates.for_length`:
the counts are fractions of the sentence's real tokens), so a sentence gets the same output in
any padded batch as alone, and no pad token is ever ranked, pruned, merged or merged into.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from paperlab.diffrate.steps import State, reduce_block, search_step, search_tokens
from paperlab.merging.bert import PREFIX, bert_flops, grouped_forward, patch_encoder, self_attention


class _DiffRateBertEncoder:
    """Mixed into the model's ``BertEncoder`` class: runs the layers with DiffRate."""

    patch_name = "DiffRate (diffrate.apply)"
    _diffrate: State
    layer: nn.ModuleList
    config: Any

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                encoder_hidden_states: torch.Tensor | None = None, **kwargs: Any) -> Any:
        state = self._diffrate
        state.reset()
        run = self._apply_group if state.proxies is None else self._search_group
        output, state.size, state.tokens = grouped_forward(
            hidden_states, attention_mask, encoder_hidden_states, run)
        state.mask = state.size[..., 0] > 0
        return output

    def _apply_group(self, x: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        """The schedule at this group's length applied to ``x`` ``(G, L, C)``."""
        state = self._diffrate
        assert state.rates is not None
        rates = state.rates.for_length(x.shape[1])
        size = torch.ones_like(x[..., :1])
        tokens = []
        for index, layer in enumerate(self.layer):
            n = x.shape[1]
            h, metric, probs = self_attention(layer, x, size if state.prop_attn else None)
            if rates.merge[index] < n:
                h, size = reduce_block(state, index, h, size, metric,
                                       probs[:, :, 0, PREFIX:].mean(dim=1), rates)
            tokens.append((n, h.shape[1]))
            x = layer.feed_forward_chunk(h)
        return x, size, tokens

    def _search_group(self, x: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[Any, Any]]]:
        """The masked search forward of ``x`` ``(G, L, C)`` (no token dropped), with the
        proxies scaled to ``L``; records the group's differentiable FLOPs."""
        state = self._diffrate
        assert state.proxies is not None
        g, length, _ = x.shape
        patches = length - PREFIX
        size = torch.ones_like(x[..., :1])
        mask = torch.ones_like(x[..., 0])
        n = x.new_tensor(float(length))
        tokens: list[tuple[Any, Any]] = [(n, n)]
        for index, layer in enumerate(self.layer):
            keys = mask if index > 0 else None
            h, _, probs = self_attention(layer, x, size if state.prop_attn else None, keys)
            if index > 0:
                prune, merge = state.proxies[index - 1]
                h, size, mask = search_step(h, size, mask, probs[:, :, 0, PREFIX:].mean(dim=1),
                                            prune.mask(length, patches),
                                            merge.mask(length, patches), PREFIX)
                tokens.append(search_tokens(tokens[-1][1], prune, merge, patches))
            x = layer.feed_forward_chunk(h)
        full = bert_flops(self.config, [(length, length)] * len(self.layer), state.num_labels)
        state.flops.append((g, bert_flops(self.config, tokens, state.num_labels), full))
        return x, size, tokens


def patch(model: nn.Module, state: State) -> nn.Module:
    """Swap the class of ``model``'s ``BertEncoder`` in place so it runs with ``state``.

    Raises:
        TypeError: no Hugging Face BERT encoder. ValueError: a decoder configuration, or a
            model patched for token merging (``tome.patch``, ``pitome.patch``).
    """
    encoder = patch_encoder(model, _DiffRateBertEncoder)
    encoder._diffrate = state
    model._diffrate = state
    return model


def num_labels(model: nn.Module) -> int:
    """Outputs of the model's linear classifier (0 for an encoder without one)."""
    head = getattr(model, "classifier", None)
    return int(head.out_features) if isinstance(head, nn.Linear) else 0
