"""Why PiToMe trails matched ToMe on the fine-tuned MiniLM: ablations of its text rule.

At one keep ratio (the text claim's, 0.65) each data set's fine-tuned classifiers (the same
cached checkpoints as :mod:`paperlab.pitome.text`) are merged off the shelf by variants of
PiToMe's reference text rule, one factor changed at a time, and by ToMe given the same
per-layer merge counts:

* schedule: the rule in the first three layers (the reference), in every layer, the paper's
  rule (ELU energy, alternating split) in every layer; the every-layer ones also at the keep
  ratio whose FLOPs match the reference's;
* kernel: the paper's ELU energy instead of the Gaussian; the alternating A/B split;
* margin: other ``m_0`` for the Gaussian (width ``1 - m_l``) and the ELU energy;
* proportional attention on for PiToMe, off for ToMe;
* metric: the hidden states after attention instead of the keys, for both methods;
* control: random scores instead of the energy (same counts, split and layers).

Every row gets its accuracy and two paired differences on the same sentences: against the
reference PiToMe and against the ToMe that merges the same number of tokens in every layer
(exact McNemar-type interval with one seed, a bootstrap over sentences crossed with seeds with
several). Then, on the first seed: the energy scores per layer as the unmerged model's keys give
them (how much of the Gaussian energy comes from other tokens at all, ties, cosine
similarities), and which tokens reference PiToMe and matched ToMe merge first or leave alone,
by category (``[SEP]``, punctuation, words the training split marks as polar, function words,
word pieces, other words) and by position, on all sentences and on those where the two
disagree.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from paperlab.core import plots
from paperlab.core.progress import track
from paperlab.core.results import RunContext
from paperlab.core.seed import torch_threads
from paperlab.core.stats import crossed_bootstrap_interval, paired_difference_interval
from paperlab.merging import bert, tome
from paperlab.merging.energy import PiToMeRule, energy_score, layer_margins, text_layers
from paperlab.merging.plan import MergePlan, match, merge_source, merge_state, normalized
from paperlab.pitome.merge import bert_rule
from paperlab.pitome.text import (
    EVAL_SPLIT,
    LAYERS,
    TextConfig,
    TextSetting,
    load_splits,
    schedule_flops,
    score_settings,
    token_lengths,
)
from paperlab.text.train import finetune

log = logging.getLogger(__name__)

REFERENCE = "PiToMe (reference text rule)"
MATCHED = "ToMe matched"
CATEGORIES = ("[SEP]", "punctuation", "polar word", "function word", "word piece", "other word")
POSITIONS = ("first third", "middle third", "last third")
# Closed-class English words (articles, pronouns, prepositions, conjunctions, auxiliaries).
FUNCTION_WORDS = frozenset("""
a an the this that these those it its it's he she they them their his her him we us our you
your i me my of in on at by for with from to into onto about over under as than then so if or
and but nor not no yet is are was were be been being am has have had do does did will would
shall should can could may might must there here what which who whom whose when where why how
all any each both some such too very just also only up out off own same other more most
""".split())


@dataclass(frozen=True)
class AblationConfig:
    """The ablation's size.

    Attributes:
        text: data sets, fine-tuning seeds, recipe, subsets, evaluation batch and threads
            (:class:`~paperlab.pitome.text.TextConfig`; its keep ratios and ToMe r are unused).
        keep_ratio: the keep ratio of every ablation (the text claim's, 0.65).
        gaussian_margins: ``m_0`` values of the Gaussian kernel tried besides the reference's
            0.9 (margins ``m_0 - 0.25 l / L``; each below 1).
        elu_margins: ``m_0`` values of the ELU kernel tried besides the paper's 0.75 (margins
            ``m_0 - m_0 l / L``).
        flops_grid: keep ratios searched for the every-layer schedule whose FLOPs are closest
            to the reference schedule's.
    """

    text: TextConfig = field(default_factory=lambda: TextConfig(seeds=1))
    keep_ratio: float = 0.65
    gaussian_margins: tuple[float, ...] = (0.0, 0.5, 0.75, 0.95)
    elu_margins: tuple[float, ...] = (0.0,)
    flops_grid: tuple[float, ...] = tuple(round(0.50 + 0.01 * i, 2) for i in range(50))

    def __post_init__(self) -> None:
        if not 0.5 <= self.keep_ratio < 1:
            raise ValueError(f"keep_ratio must be in [0.5, 1), got {self.keep_ratio}")
        if not all(m < 1 for m in self.gaussian_margins):
            raise ValueError(f"Gaussian margins must be below 1, got {self.gaussian_margins}")
        if not self.flops_grid or not all(0.5 <= k <= 1 for k in self.flops_grid):
            raise ValueError(f"flops_grid must hold keep ratios in [0.5, 1], got "
                             f"{self.flops_grid}")

    @classmethod
    def quick(cls) -> AblationConfig:
        """One seed, 2 epochs on 1,500 training sentences, 400 evaluated (a smoke test)."""
        return cls(text=TextConfig.quick(), gaussian_margins=(0.5,), elu_margins=())


# ---------------------------------------------------------------------------------------------
# rules the ablation needs besides PiToMe's and ToMe's


@dataclass
class HiddenStateRule:
    """Wraps a merge rule so that it matches tokens by their hidden states after attention
    (the output of each layer's ``attention.output``, ``(B, N, C)``) instead of the keys
    averaged over heads. Installed by :func:`use_hidden_states`, which feeds ``hidden``."""

    inner: Any
    hidden: torch.Tensor | None = None

    def plan(self, metric: torch.Tensor, layer: int, prefix: int) -> MergePlan | None:
        """The inner rule's plan on the captured hidden states of this layer."""
        hidden, self.hidden = self.hidden, None
        if hidden is None or hidden.shape[:2] != metric.shape[:2]:
            raise RuntimeError("no hidden states captured for this layer's tokens: the BERT "
                               "patch must call attention.output before asking for a plan")
        return self.inner.plan(hidden, layer, prefix)

    def schedule(self, num_tokens: int, depth: int, prefix: int) -> list[tuple[int, int]]:
        """The inner rule's token counts."""
        return self.inner.schedule(num_tokens, depth, prefix)


def use_hidden_states(model: nn.Module) -> nn.Module:
    """Make a BERT model patched for merging (by any rule) match tokens by the hidden states
    after attention instead of the keys; in place, returns it."""
    state = merge_state(model)
    rule = HiddenStateRule(state.rule)

    def capture(module: nn.Module, args: Any, output: torch.Tensor) -> None:
        rule.hidden = output

    for layer in bert.bert_encoder(model).layer:
        layer.attention.output.register_forward_hook(capture)
    state.rule = rule
    return model


@dataclass
class RandomScoreRule:
    """The reference text rule with random scores in place of the energy: in each merging
    layer the same count ``r``, a random ``2r`` of the tokens mergeable, A = the first half
    of them, each A token merged into its most similar B token. ``seed`` seeds the draws."""

    reference: PiToMeRule
    seed: int = 0
    generator: torch.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def plan(self, metric: torch.Tensor, layer: int, prefix: int) -> MergePlan | None:
        """A random choice of the mergeable tokens (``metric`` ``(B, N, C)``)."""
        r = self.reference.merges(layer, metric.shape[1], prefix)
        if not r:
            return None
        b, n, _ = metric.shape
        order = torch.rand(b, n - prefix, generator=self.generator).argsort(dim=-1) + prefix
        front = torch.cat([torch.arange(prefix).expand(b, -1), order[:, 2 * r:]], dim=1)
        return match(normalized(metric), order[:, :r], order[:, r:2 * r], r, front)

    def schedule(self, num_tokens: int, depth: int, prefix: int) -> list[tuple[int, int]]:
        """The reference rule's token counts."""
        return self.reference.schedule(num_tokens, depth, prefix)


@dataclass
class TracingRule:
    """Wraps a merge rule (None: merge nothing) and keeps, for the last forward of one batch
    (of equal-length sentences, or of images), the metric each layer saw (``metrics``), the
    inner rule's plan of each layer (``plans``), which input tokens each token holds
    (``source`` ``(B, K, N0)`` 0/1 after the last layer, ``sources`` one per layer as the
    layer's tokens came in) and, after each layer, the size of the group each input token is
    in (``group_sizes``, one ``(B, N0)`` per layer)."""

    inner: Any | None = None
    metrics: list[torch.Tensor] = field(default_factory=list)
    plans: list[MergePlan | None] = field(default_factory=list)
    source: torch.Tensor | None = None
    sources: list[torch.Tensor] = field(default_factory=list)
    group_sizes: list[torch.Tensor] = field(default_factory=list)

    def plan(self, metric: torch.Tensor, layer: int, prefix: int) -> MergePlan | None:
        """Record ``metric``, ask the inner rule, follow its merges."""
        b, n, _ = metric.shape
        if layer == 0:
            self.metrics, self.plans, self.sources, self.group_sizes = [], [], [], []
            self.source = torch.eye(n)[None].expand(b, n, n)
        self.metrics.append(metric)
        self.sources.append(self.source)
        plan = self.inner.plan(metric, layer, prefix) if self.inner is not None else None
        self.plans.append(plan)
        if plan is not None:
            self.source = merge_source(plan, metric, self.source)
        sizes = self.source.sum(dim=2)  # (B, K)
        self.group_sizes.append(sizes.gather(1, self.source.argmax(dim=1)))
        return plan

    def schedule(self, num_tokens: int, depth: int, prefix: int) -> list[tuple[int, int]]:
        """The inner rule's token counts (all tokens kept without one)."""
        if self.inner is None:
            return [(num_tokens, num_tokens)] * depth
        return self.inner.schedule(num_tokens, depth, prefix)


# ---------------------------------------------------------------------------------------------
# the variants


@dataclass(frozen=True)
class Variant:
    """One evaluated model of the ablation.

    Attributes:
        factor: what it varies (``reference``, ``schedule``, ``kernel``, ``margin``,
            ``prop. attention``, ``metric``, ``control``).
        name: the row's name.
        apply: patches a copy of the fine-tuned classifier in place and returns it.
        versus: the row it is compared with besides the reference PiToMe (for a PiToMe variant,
            ToMe with the same per-layer merge counts), or None.
    """

    factor: str
    name: str
    apply: Callable[[nn.Module], nn.Module]
    versus: str | None = None


def _patcher(rule: Any, prop_attn: bool = False, hidden: bool = False
             ) -> Callable[[nn.Module], nn.Module]:
    def apply(model: nn.Module) -> nn.Module:
        bert.apply_rule(model, rule, prop_attn=prop_attn)
        return use_hidden_states(model) if hidden else model
    return apply


def _matched(rule: PiToMeRule, prop_attn: bool = True, hidden: bool = False
             ) -> Callable[[nn.Module], nn.Module]:
    return _patcher(tome.MatchedToMeRule(rule), prop_attn, hidden)


def first_layers_rule(keep: float, kernel: str, margin: float, drop: float, split: str
                      ) -> PiToMeRule:
    """PiToMe's energy rule merging in the first three layers only (the reference's text
    schedule), with the given kernel, margins ``margin - drop l / L`` and A/B split."""
    return PiToMeRule(keep, layer_margins(LAYERS, margin, drop=drop), (True,) * LAYERS,
                      kernel=kernel, split=split, merging=text_layers(LAYERS))


def flops_matched_keep(config: Any, keep: float, lengths: list[int], grid: tuple[float, ...]
                       ) -> float:
    """The keep ratio of ``grid`` whose every-layer schedule's mean FLOPs over sentences of
    ``lengths`` tokens are closest to the reference schedule's at ``keep``."""
    target = schedule_flops(config, bert_rule(LAYERS, keep), lengths)
    return min(grid, key=lambda k: abs(
        schedule_flops(config, bert_rule(LAYERS, k, schedule="every-layer"), lengths) - target))


def variants(cfg: AblationConfig, matched_keep: float) -> list[Variant]:
    """Every evaluated model at ``cfg.keep_ratio`` (``matched_keep``: the every-layer keep
    ratio with the reference's FLOPs)."""
    k = cfg.keep_ratio
    ref = bert_rule(LAYERS, k)
    out = [Variant("reference", "full model", lambda m: m),
           Variant("reference", REFERENCE, _patcher(ref), MATCHED),
           Variant("reference", MATCHED, _matched(ref))]
    for keep, tag in ((k, f"keep {k}"), (matched_keep, f"keep {matched_keep}, same FLOPs")):
        every = bert_rule(LAYERS, keep, schedule="every-layer")
        partner = f"ToMe matched, every layer ({tag})"
        out += [Variant("schedule", f"PiToMe rule in every layer ({tag})", _patcher(every),
                        partner),
                Variant("schedule", f"paper's rule (ELU, alternate) in every layer ({tag})",
                        _patcher(bert_rule(LAYERS, keep, schedule="pure")), partner),
                Variant("schedule", partner, _matched(every))]
    out += [
        Variant("kernel", "ELU energy, paper margins 0.75 - 0.75 l/L",
                _patcher(first_layers_rule(k, "elu", 0.75, 0.75, "halves")), MATCHED),
        Variant("kernel", "ELU energy + alternate split (paper's rule, first 3 layers)",
                _patcher(first_layers_rule(k, "elu", 0.75, 0.75, "alternate")), MATCHED),
        Variant("kernel", "Gaussian energy + alternate split",
                _patcher(first_layers_rule(k, "gaussian", 0.9, 0.25, "alternate")), MATCHED),
    ]
    out += [Variant("margin", f"Gaussian m_0 = {m}",
                    _patcher(first_layers_rule(k, "gaussian", m, 0.25, "halves")), MATCHED)
            for m in cfg.gaussian_margins]
    out += [Variant("margin", f"ELU m_0 = {m}",
                    _patcher(first_layers_rule(k, "elu", m, m, "halves")), MATCHED)
            for m in cfg.elu_margins]
    out += [
        Variant("prop. attention", "PiToMe + proportional attention",
                _patcher(ref, prop_attn=True), MATCHED),
        Variant("prop. attention", "ToMe matched, no proportional attention",
                _matched(ref, prop_attn=False), MATCHED),
        Variant("metric", "PiToMe on hidden states", _patcher(ref, hidden=True),
                "ToMe matched on hidden states"),
        Variant("metric", "ToMe matched on hidden states", _matched(ref, hidden=True), MATCHED),
        Variant("control", "random scores (reference split and layers)",
                _patcher(RandomScoreRule(ref)), MATCHED),
    ]
    return out


# ---------------------------------------------------------------------------------------------
# run


def paired_interval(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """95 % interval of ``mean(a) - mean(b)`` for correctness arrays ``(sentences, seeds)`` of
    two models on the same sentences: exact paired (McNemar) with one seed, a bootstrap over
    sentences crossed with seeds with several."""
    if a.shape[1] == 1:
        return paired_difference_interval(a[:, 0], b[:, 0])
    return crossed_bootstrap_interval(lambda x, y: float(x.mean() - y.mean()), a, b, seed=seed)


def run_ablation(ctx: RunContext, cfg: AblationConfig
                 ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The ablation on every data set: rows (one per variant and data set), summary keys and
    a description (fine-tuned models, energy statistics, token categories); writes the plots
    ``<out>/<system>_text_ablation.png`` and ``_text_energy.png``."""
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"keep_ratio": cfg.keep_ratio, "seeds": cfg.text.seeds}
    described: dict[str, Any] = {"finetune": dataclasses.asdict(cfg.text.finetune),
                                 "datasets": {}}
    with torch_threads(cfg.text.threads):
        for name in cfg.text.datasets:
            rows += _one_dataset(ctx, cfg, name, summary, described)
    _plot_rows(ctx, rows, cfg)
    _plot_energy(ctx, described, cfg)
    return rows, summary, described


def _one_dataset(ctx: RunContext, cfg: AblationConfig, name: str, summary: dict[str, Any],
                 described: dict[str, Any]) -> list[dict[str, Any]]:
    text = cfg.text
    train, evaluate = load_splits(name, ctx.data_root, text, ctx.seed)
    lengths = token_lengths(evaluate.texts, text.finetune.max_length)
    correct: dict[str, list[np.ndarray]] = {}
    flops: dict[str, float] = {}
    fitted_info: list[dict[str, Any]] = []
    first = None
    for s in track(range(text.seeds), f"ablations on {name}", total=text.seeds):
        recipe = dataclasses.replace(text.finetune, seed=ctx.seed + s)
        fitted = finetune(train, recipe)
        fitted_info.append({"seed": recipe.seed, "cached": fitted.cached,
                            "train_seconds": fitted.train_seconds})
        if first is None:
            first = fitted
            keep_star = flops_matched_keep(fitted.model.config, cfg.keep_ratio, lengths,
                                           cfg.flops_grid)
            todo = variants(cfg, keep_star)
        settings = [TextSetting(v.name, "-", v.apply) for v in todo]
        scored, model_flops = score_settings(fitted, settings, evaluate, lengths,
                                             recipe.max_length, text.eval_batch)
        for (method, _), hits in scored.items():
            correct.setdefault(method, []).append(hits)
            flops[method] = model_flops[(method, "-")]
    hits = {method: np.stack(h, axis=1) for method, h in correct.items()}
    full = flops["full model"]
    rows = []
    for v in todo:
        acc = hits[v.name].mean(axis=0)
        row = {"task": f"text/{name}", "factor": v.factor, "method": v.name,
               "mflops": flops[v.name] / 1e6, "flops_saved": 1 - flops[v.name] / full,
               "acc": float(acc.mean()),
               "acc_std_over_seeds": float(acc.std(ddof=1)) if text.seeds > 1 else None,
               "minus_reference": float(hits[v.name].mean() - hits[REFERENCE].mean()),
               "minus_reference_ci95": paired_interval(hits[v.name], hits[REFERENCE],
                                                       ctx.seed),
               "versus": v.versus}
        if v.versus is not None:
            row["minus_versus"] = float(hits[v.name].mean() - hits[v.versus].mean())
            row["minus_versus_ci95"] = paired_interval(hits[v.name], hits[v.versus], ctx.seed)
        rows.append(row)
    gap = next(r for r in rows if r["method"] == REFERENCE)
    summary.update({f"{name}_acc_full": float(hits["full model"].mean()),
                    f"{name}_pitome_minus_tome": gap["minus_versus"],
                    f"{name}_pitome_minus_tome_ci95": gap["minus_versus_ci95"],
                    f"{name}_flops_matched_every_layer_keep": keep_star})
    assert first is not None
    disagree = hits[REFERENCE][:, 0] != hits[MATCHED][:, 0]
    described["datasets"][name] = {
        "train": train.name, "train_sentences": len(train), "eval": evaluate.name,
        "eval_sentences": len(evaluate), "mean_tokens": float(np.mean(lengths)),
        "finetuned": fitted_info, "disagreements": int(disagree.sum()),
        "energy": energy_by_layer(first.model, first.tokenizer, evaluate.texts,
                                  text.finetune.max_length),
        **token_merges(first, cfg.keep_ratio, train.texts, train.labels, evaluate.texts,
                       disagree, text.finetune.max_length)}
    log.info("ablations on %s: PiToMe - matched ToMe %+.4f", name, gap["minus_versus"])
    return rows


# ---------------------------------------------------------------------------------------------
# MiniLM specifics: the energy per layer and which tokens merge


def _traced(model: nn.Module, rule: Any | None, prop_attn: bool = False
            ) -> tuple[nn.Module, TracingRule]:
    """A copy of ``model`` merging by ``rule`` (None: not at all), and its tracer."""
    tracer = TracingRule(rule)
    return bert.apply_rule(copy.deepcopy(model), tracer, prop_attn=prop_attn), tracer


def energy_by_layer(model: nn.Module, tokenizer: Any, texts: tuple[str, ...] | list[str],
                    max_length: int) -> list[dict[str, Any]]:
    """Per layer, what the energy scores of the unmerged model's keys (mean over heads, all
    tokens but ``[CLS]``) look like over ``texts``:

    * ``cos_q05/q50/q95``: quantiles of the cosine similarity between two different tokens;
    * ``gaussian_margin``, ``gaussian_from_others_median``: the reference's Gaussian energy at
      its margin, and the median share of a token's energy that comes from the other tokens
      (the rest is its similarity with itself, the same for every token);
      ``gaussian_self_only``: the share of tokens whose energy is over 99.9 % self-similarity;
      ``gaussian_tied``: the share of tokens whose energy equals another token's of the same
      sentence exactly (their order is then arbitrary);
    * ``elu_margin``, ``elu_cv_median``: the paper's ELU energy at its margin and the median
      over sentences of its spread (standard deviation over mean absolute value);
    * ``gaussian_rank_vs_position``: mean over sentences of the Spearman correlation between
      a token's Gaussian energy and its position (> 0: later tokens have more energy, so are
      merged first).
    """
    from scipy.stats import spearmanr

    probe, tracer = _traced(model, None)
    gauss_m = layer_margins(LAYERS, 0.9, drop=0.25)
    elu_m = layer_margins(LAYERS, 0.75)
    acc: dict[int, dict[str, list[float]]] = {i: {} for i in range(LAYERS)}
    with torch.no_grad():
        for sentence in texts:
            ids = tokenizer([sentence], truncation=True, max_length=max_length,
                            return_tensors="pt")
            if ids["input_ids"].shape[1] < 4:
                continue
            probe(**ids)
            for layer, metric in enumerate(tracer.metrics):
                x = normalized(metric[:, 1:])
                sim = (x @ x.transpose(1, 2))[0]
                n = sim.shape[0]
                sigma = 1 - gauss_m[layer]
                self_part = torch.exp(-0.5 * ((1 - sim.diagonal()) / sigma) ** 2) / (
                    sigma * math.sqrt(2 * math.pi)) / n
                gauss = energy_score(x, gauss_m[layer], "gaussian")[0]
                elu = energy_score(x, elu_m[layer], "elu")[0]
                others = (1 - self_part / gauss).clamp(min=0)
                a = acc[layer]
                a.setdefault("cos", []).extend(sim[~torch.eye(n, dtype=torch.bool)].tolist())
                a.setdefault("others", []).extend(others.tolist())
                a.setdefault("tied", []).extend(
                    (gauss[:, None] == gauss[None, :]).sum(dim=1).gt(1).float().tolist())
                a.setdefault("elu_cv", []).append(float(elu.std() / elu.abs().mean()))
                if gauss.max() > gauss.min():  # all tied: no order to correlate
                    rho = spearmanr(gauss.numpy(), np.arange(n)).statistic
                    a.setdefault("rho", []).append(float(rho))
    out = []
    for layer in range(LAYERS):
        a = acc[layer]
        cos = np.quantile(a["cos"], [0.05, 0.5, 0.95])
        others = np.asarray(a["others"])
        out.append({"layer": layer, "cos_q05": float(cos[0]), "cos_q50": float(cos[1]),
                    "cos_q95": float(cos[2]), "gaussian_margin": gauss_m[layer],
                    "gaussian_from_others_median": float(np.median(others)),
                    "gaussian_self_only": float(np.mean(others < 1e-3)),
                    "gaussian_tied": float(np.mean(a["tied"])),
                    "gaussian_rank_vs_position": float(np.mean(a["rho"])) if a.get("rho")
                    else None,
                    "elu_margin": elu_m[layer],
                    "elu_cv_median": float(np.median(a["elu_cv"])),
                    "from_others_quantiles": np.quantile(others, [0.1, 0.25, 0.5, 0.75, 0.9]
                                                         ).tolist(),
                    "cos_quartiles": np.quantile(a["cos"], [0.1, 0.25, 0.5, 0.75, 0.9]
                                                 ).tolist()})
    return out


def polar_words(tokenizer: Any, texts: tuple[str, ...], labels: np.ndarray,
                min_count: int = 10, log_odds: float = 1.0) -> frozenset[str]:
    """Whole-word tokens whose add-one smoothed log-odds between the two classes of the
    training sentences is at least ``log_odds`` in size (``min_count`` occurrences or more):
    the words the data itself marks as sentiment-bearing."""
    counts = [Counter(), Counter()]
    for ids, label in zip(tokenizer(list(texts))["input_ids"], labels, strict=True):
        counts[int(label) > 0].update(tokenizer.convert_ids_to_tokens(ids)[1:-1])
    total = [sum(c.values()) for c in counts]
    polar = set()
    for word in set(counts[0]) | set(counts[1]):
        n0, n1 = counts[0][word], counts[1][word]
        if n0 + n1 < min_count or word.startswith("##") or not word.isalpha():
            continue
        if abs(math.log((n1 + 1) / total[1]) - math.log((n0 + 1) / total[0])) >= log_odds:
            polar.add(word)
    return frozenset(polar)


def token_category(token: str, polar: frozenset[str]) -> str:
    """The category of a WordPiece token (not ``[CLS]``): one of :data:`CATEGORIES`."""
    if token == "[SEP]":
        return "[SEP]"
    if all(ch in string.punctuation for ch in token):
        return "punctuation"
    if token.startswith("##"):
        return "word piece"
    if token in polar:
        return "polar word"
    if token in FUNCTION_WORDS:
        return "function word"
    return "other word"


def token_merges(fitted: Any, keep: float, train_texts: tuple[str, ...],
                 train_labels: np.ndarray, texts: tuple[str, ...], disagree: np.ndarray,
                 max_length: int) -> dict[str, Any]:
    """Which tokens reference PiToMe and matched ToMe (prop. attention) at ``keep`` merge,
    sentence by sentence: per token category and per position third, the tokens counted, the
    share each method merges already in the first layer (``<method>_layer0``) and the share it
    leaves alone, in a group of its own, to the end (``<method>_alone``); over all sentences
    and over the ``disagree`` ones (where the two classify differently). ``groups``: per
    method, the mean over sentences of the largest final group (tokens, and as a share of the
    sentence's tokens without ``[CLS]``) and of the number of groups of two or more."""
    tokenizer = fitted.tokenizer
    polar = polar_words(tokenizer, train_texts, train_labels)
    ref = bert_rule(LAYERS, keep)
    tracers = {"PiToMe": _traced(fitted.model, ref),
               "ToMe": _traced(fitted.model, tome.MatchedToMeRule(ref), prop_attn=True)}
    count: dict[tuple[str, str, bool], Counter] = {}
    groups: dict[str, list[tuple[float, int, float]]] = {}
    with torch.no_grad():
        for i, sentence in enumerate(texts):
            ids = tokenizer([sentence], truncation=True, max_length=max_length,
                            return_tensors="pt")
            tokens = tokenizer.convert_ids_to_tokens(ids["input_ids"][0])
            n = len(tokens)
            flags = {}
            for method, (model, tracer) in tracers.items():
                model(**ids)
                flags[f"{method}_layer0"] = (tracer.group_sizes[0][0] > 1).tolist()
                flags[f"{method}_alone"] = (tracer.group_sizes[-1][0] == 1).tolist()
                sizes = tracer.source[0, 1:].sum(dim=1)  # final groups, [CLS] left out
                groups.setdefault(method, []).append(
                    (float(sizes.max()), int((sizes > 1).sum()), float(sizes.max()) / (n - 1)))
            for pos in range(1, n):
                tags = (("category", token_category(tokens[pos], polar)),
                        ("position", POSITIONS[min(2, 3 * (pos - 1) // max(1, n - 1))]))
                for kind, tag in tags:
                    for subset in (False, True) if disagree[i] else (False,):
                        c = count.setdefault((kind, tag, subset), Counter())
                        c["tokens"] += 1
                        for key, per_token in flags.items():
                            c[key] += int(per_token[pos])
    out: dict[str, Any] = {"polar_words": len(polar), "polar_examples": sorted(polar)[:40],
                           "groups": [{"method": method,
                                       "largest_group_mean": float(np.mean([g[0] for g in v])),
                                       "largest_group_share_mean": float(
                                           np.mean([g[2] for g in v])),
                                       "merged_groups_mean": float(np.mean([g[1] for g in v]))}
                                      for method, v in groups.items()]}
    for kind, tags in (("category", CATEGORIES), ("position", POSITIONS)):
        table = []
        for tag in tags:
            row: dict[str, Any] = {kind: tag}
            for subset, label in ((False, "all"), (True, "disagree")):
                c = count.get((kind, tag, subset), Counter())
                row[f"tokens_{label}"] = c["tokens"]
                for method in tracers:
                    for what in ("layer0", "alone"):
                        row[f"{method}_{what}_{label}"] = (
                            c[f"{method}_{what}"] / c["tokens"] if c["tokens"] else None)
            table.append(row)
        out[f"merged_by_{kind}"] = table
    return out


# ---------------------------------------------------------------------------------------------
# plots


def _plot_rows(ctx: RunContext, rows: list[dict[str, Any]], cfg: AblationConfig) -> None:
    """Per data set, each variant's accuracy minus the reference PiToMe's, with its interval."""
    fig, axes = plots.figure(1, len(cfg.text.datasets), size=4.2,
                             title=f"PiToMe text ablations at keep {cfg.keep_ratio} "
                                   f"(MiniLM, {cfg.text.seeds} seed(s))")
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, cfg.text.datasets, strict=True):
        mine = [r for r in rows if r["task"] == f"text/{name}" and r["method"] != REFERENCE]
        y = np.arange(len(mine))[::-1]
        x = np.array([100 * r["minus_reference"] for r in mine])
        lo = np.array([100 * r["minus_reference_ci95"]["lo"] for r in mine])
        hi = np.array([100 * r["minus_reference_ci95"]["hi"] for r in mine])
        colours = ["C1" if r["method"].startswith("ToMe") else "C0" for r in mine]
        for yi, xi, low, high, c in zip(y, x, lo, hi, colours, strict=True):
            ax.errorbar(xi, yi, xerr=[[max(0.0, xi - low)], [max(0.0, high - xi)]], fmt="o",
                        color=c, ms=3)
        ax.axvline(0, color="grey", ls=":")
        ax.set_yticks(y)
        ax.set_yticklabels([r["method"] for r in mine], fontsize=5)
        ax.set_title(f"{name} ({EVAL_SPLIT[name]})")
        ax.set_xlabel("accuracy minus reference PiToMe (points, 95% paired)")
    plots.save(fig, ctx.plot_path("text_ablation"))


def _plot_energy(ctx: RunContext, described: dict[str, Any], cfg: AblationConfig) -> None:
    """Per layer: the cosine similarity of two tokens' keys, and the share of the Gaussian
    energy that comes from the other tokens (boxes: 10/25/50/75/90 % quantiles)."""
    fig, axes = plots.figure(1, 2, size=3.6, title="MiniLM keys per layer (first data set)")
    energy = described["datasets"][cfg.text.datasets[0]]["energy"]
    for ax, key, label in ((axes[0], "cos_quartiles", "cosine of two tokens' keys"),
                           (axes[1], "from_others_quantiles",
                            "share of Gaussian energy from other tokens")):
        stats = [{"med": e[key][2], "q1": e[key][1], "q3": e[key][3], "whislo": e[key][0],
                  "whishi": e[key][4], "label": str(e["layer"])} for e in energy]
        ax.bxp(stats, showfliers=False)
        ax.set_xlabel("layer")
        ax.set_ylabel(label)
    plots.save(fig, ctx.plot_path("text_energy"))
