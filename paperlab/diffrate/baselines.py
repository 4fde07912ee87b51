"""The baselines' schedules: ToMe given another method's token counts, and the token counts of
PiToMe's reference text schedule (the text comparison's FLOPs target)."""

from __future__ import annotations

from paperlab.merging.energy import PiToMeRule, layer_margins, text_layers


def tome_counts(tokens: list[tuple[int, int]], prefix: int = 1) -> list[int]:
    """Per-block ToMe ``r`` for a token schedule ``[(tokens in, tokens out), ...]``, each
    capped at half the non-prefix tokens (what bipartite matching can merge) with the
    shortfall carried to the next blocks (so ToMe can end with more tokens, and FLOPs)."""
    out, n, owed = [], tokens[0][0], 0
    for n_in, n_out in tokens:
        owed += n_in - n_out
        r = min(owed, (n - prefix) // 2)
        out.append(r)
        owed, n = owed - r, n - r
    return out


def pitome_text_schedule(depth: int, keep_ratio: float) -> PiToMeRule:
    """The merge counts of PiToMe's reference text schedule at ``keep_ratio``: ``floor(T - T *
    keep_ratio)`` tokens merged in each of the first three layers, none after (the rule of
    :mod:`paperlab.merging.energy` with the reference's text options, as ``pitome.bert_rule``
    builds it; only its counts are used here: the FLOPs target and ToMe's matched counts)."""
    return PiToMeRule(keep_ratio, layer_margins(depth, 0.9, drop=0.25), (True,) * depth,
                      kernel="gaussian", split="halves", merging=text_layers(depth))
