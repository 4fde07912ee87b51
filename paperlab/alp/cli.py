"""``paperlab alp augment`` and ``paperlab alp fit-grammar``: ALP (or EDA) on your own sentences.

``augment`` reads a CSV (or TSV) file with a header line, a text column and a label column
(other columns are kept), fits ALP's class-wise lexicalized grammar (every sentence parsed with
the treebank PCFG) or EDA, and writes the original rows followed by N new sentences per row of
each class, a column marking which rows are augmentations, streamed to a file or stdout. It
reports the sentences the parser could not parse (by line) and the augmentations that copy a
training sentence. ``fit-grammar`` saves the fitted grammar as JSON (never a pickle), so that
``augment --grammar`` makes the same sentences without parsing again.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

METHODS = ("alp", "eda")
#: what a grammar file says it is, and the version of its layout
GRAMMAR_FORMAT, GRAMMAR_VERSION = "paperlab-alp-grammar", 1
#: options that apply to one method only (a command line that gives one to the other fails)
ONLY_FOR = {"threshold": "alp", "treebank_trees": "alp", "p_slot": "alp",
            "n_recombine": "alp", "generation": "alp", "min_chars": "alp", "alpha": "eda"}
#: options fixed when a grammar is fitted (so refused with --grammar)
FITTING = ("threshold", "treebank_trees", "generation", "min_chars")
SHOWN_LINES = 10

AUGMENT_EXAMPLE = """example:
  paperlab alp augment reviews.csv --text-column text --label-column label --n 4 \\
      --out reviews_augmented.csv
    reviews.csv: a header line, then one labelled sentence per row (other columns are kept);
    writes its rows, then 4 new sentences per row of each class (lower-cased tokens), with
    augmented = 0 / 1; without --out the CSV goes to stdout and the summary to stderr.
  paperlab alp fit-grammar reviews.csv --text-column text --label-column label \\
      --out reviews.grammar.json
  paperlab alp augment reviews.csv --text-column text --label-column label --n 4 \\
      --grammar reviews.grammar.json --out reviews_augmented.csv     # no parsing again
"""
FIT_EXAMPLE = """example:
  paperlab alp fit-grammar reviews.csv --text-column text --label-column label \\
      --out reviews.grammar.json
    parses every sentence with the treebank grammar and saves, per class, the kept trees
    and word pools as JSON; 'paperlab alp augment ... --grammar reviews.grammar.json' reuses
    them.
"""


@dataclass(frozen=True)
class Corpus:
    """A labelled CSV file: its header, its rows (with their line numbers), and which columns
    hold the text and the label."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]
    text: int
    label: int

    @property
    def texts(self) -> list[str]:
        return [row[self.text] for row in self.rows]

    @property
    def labels(self) -> list[str]:
        return [row[self.label] for row in self.rows]

    def describe(self) -> str:
        counts = Counter(self.labels)
        shown = ", ".join(f"{c} {counts[c]}" for c in sorted(counts))
        return f"{self.path}: {len(self.rows)} rows, {len(counts)} classes ({shown})"


def _column(header: list[str], name: str, flag: str, path: Path) -> int:
    if name not in header:
        raise ValueError(f"{path}: no column {name!r} ({flag}); the file has columns: "
                         + ", ".join(repr(h) for h in header))
    return header.index(name)


def read_corpus(path: Path, text_column: str, label_column: str) -> Corpus:
    """The labelled rows of a CSV file (tab-separated when it ends in ``.tsv``), UTF-8 (a BOM
    is allowed), a header line naming the columns; blank lines are skipped.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a folder, a file that cannot be read or is not UTF-8, an empty file, no
            rows, a missing column (naming the file's columns), a row whose field count differs
            from the header's, an empty text or label (naming the line and column).
    """
    from paperlab.alp.parser import tokenize

    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a CSV file")
    if not path.is_file():
        raise FileNotFoundError(f"no CSV file at {path}")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            records = [(reader.line_num, row) for row in reader if row]
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a UTF-8 text file (byte {err.start}: {err.reason})") \
            from None
    except csv.Error as err:
        raise ValueError(f"{path}, line {reader.line_num}: {err}") from None
    except OSError as err:
        raise ValueError(f"{path}: cannot be read ({err.strerror})") from None
    if not records:
        raise ValueError(f"{path}: empty file (expected a header line naming the columns, "
                         "then one row per sentence)")
    header = [h.strip() for h in records[0][1]]
    text = _column(header, text_column, "--text-column", path)
    label = _column(header, label_column, "--label-column", path)
    if text == label:
        raise ValueError(f"{path}: --text-column and --label-column are both {text_column!r}")
    if len(records) == 1:
        raise ValueError(f"{path}: no rows after the header line")
    for line, row in records[1:]:
        if len(row) != len(header):
            raise ValueError(f"{path}, line {line}: {len(row)} fields, but the header has "
                             f"{len(header)}")
        if not tokenize(row[text]):
            raise ValueError(f"{path}, line {line}, column {text + 1} ({text_column!r}): "
                             "empty text")
        if not row[label].strip():
            raise ValueError(f"{path}, line {line}, column {label + 1} ({label_column!r}): "
                             "empty label")
    return Corpus(path, header, [r for _, r in records[1:]], [n for n, _ in records[1:]],
                  text, label)


def _nltk_dir(data_root: Path | None) -> Path:
    from paperlab.alp.resources import nltk_data_dir

    return nltk_data_dir(data_root)


def _fitted(augmenter: Any, corpus: Corpus) -> Any:
    """``augmenter`` fitted on ``corpus``; a class it cannot learn from (only unknown words, no
    sentence that parses) is a ``ValueError`` naming the file."""
    try:
        return augmenter.fit(corpus.texts, corpus.labels)
    except ValueError as err:
        raise ValueError(f"{corpus.path}: {err}") from None


def fit_eda(corpus: Corpus, data_root: Path | None = None, **settings: Any) -> Any:
    """EDA fitted on ``corpus`` (``settings``: :class:`~paperlab.alp.EDAAugmenter`'s
    ``alpha``)."""
    from paperlab.alp.augment import EDAAugmenter
    from paperlab.alp.resources import wordnet

    return _fitted(EDAAugmenter(wordnet(str(_nltk_dir(data_root))), **settings), corpus)


def fit_alp(corpus: Corpus, data_root: Path | None = None, treebank_trees: int | None = None,
            **settings: Any) -> tuple[Any, list[int]]:
    """ALP fitted on ``corpus`` (``settings``: :class:`~paperlab.alp.ALPAugmenter`'s
    ``threshold``, ``n_recombine``, ``p_slot``) and the lines of the sentences that did not
    parse. Parsing shows a progress bar."""
    from paperlab.alp.augment import ALPAugmenter
    from paperlab.alp.resources import load_grammar, wordnet
    from paperlab.core.progress import track

    nltk_dir = _nltk_dir(data_root)
    grammar = load_grammar(nltk_dir, n_trees=treebank_trees)
    texts = corpus.texts
    # Parses are memoised, so fit() below reuses these instead of parsing again.
    unparsed = [line for line, text in track(zip(corpus.lines, texts, strict=True),
                                             f"parsing {len(texts)} sentences", len(texts))
                if grammar.parser.parse(text) is None]
    return _fitted(ALPAugmenter(grammar, wordnet(str(nltk_dir)), **settings), corpus), unparsed


def save_grammar(path: Path, alp: Any, corpus: Corpus, unparsed: list[int],
                 treebank_trees: int | None) -> Path:
    """Write the fitted ALP grammar and where it came from to ``path`` as JSON (atomically)."""
    from paperlab.core.results import atomic_write_text

    return atomic_write_text(path, json.dumps({
        "format": GRAMMAR_FORMAT, "version": GRAMMAR_VERSION,
        "source": {"file": str(corpus.path), "text_column": corpus.header[corpus.text],
                   "label_column": corpus.header[corpus.label], "rows": len(corpus.rows),
                   "unparsed_lines": unparsed, "treebank_trees": treebank_trees},
        "augmenter": alp.to_json()}))


def load_grammar_file(path: Path, **settings: Any) -> tuple[Any, dict[str, Any]]:
    """The ALP augmenter saved by ``fit-grammar`` at ``path`` (``settings``: ``n_recombine``
    and ``p_slot`` to replace) and the file's ``source`` record.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file that is not such a grammar (not JSON, another format or version, a
            malformed augmenter), naming it.
    """
    from paperlab.alp.augment import ALPAugmenter

    if not path.is_file():
        raise FileNotFoundError(f"no grammar file at {path}")
    what = f"{path}: not a grammar file saved by 'paperlab alp fit-grammar'"
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{what} (not JSON: {err})") from None
    if not isinstance(obj, dict) or obj.get("format") != GRAMMAR_FORMAT:
        raise ValueError(f"{what} (no \"format\": \"{GRAMMAR_FORMAT}\")")
    if obj.get("version") != GRAMMAR_VERSION:
        raise ValueError(f"{path}: grammar file version {obj.get('version')!r}; this paperlab "
                         f"reads version {GRAMMAR_VERSION} (fit it again with fit-grammar)")
    source = obj.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("unparsed_lines"), list):
        raise ValueError(f"{what} (no \"source\" record with its unparsed lines)")
    try:
        return ALPAugmenter.from_json(obj.get("augmenter"), **settings), source
    except (ValueError, RecursionError) as err:
        raise ValueError(f"{what} ({err})") from None


def _unparsed_line(unparsed: list[int], fitted: int, where: str) -> str:
    lines = ", ".join(map(str, unparsed[:SHOWN_LINES]))
    more = f", ... ({len(unparsed)} in all)" if len(unparsed) > SHOWN_LINES else ""
    return (f"{len(unparsed)} of {fitted} sentences did not parse (line{'s' * (len(unparsed) > 1)}"
            f" {lines}{more} of {where}): not used as ALP frames")


@contextmanager
def _csv_writer(out: Path | None) -> Iterator[Any]:
    """A CSV writer on ``out`` (written to ``OUT.part`` and renamed when complete, so a failed
    run leaves no half file) or on stdout."""
    if out is None:
        yield csv.writer(sys.stdout, lineterminator="\n")
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    try:
        with open(part, "w", encoding="utf-8", newline="") as f:
            yield csv.writer(f, lineterminator="\n")
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)


def augment_corpus(corpus: Corpus, augmenter: Any, n: int, seed: int, out: Path | None,
                   mark_column: str, what: str) -> dict[str, Any]:
    """Write ``corpus``'s rows, then ``n`` augmentations per row of each class made by the
    fitted ``augmenter``, to ``out`` (stdout when ``None``) as they are made; returns the
    counts (augmentations, copies, repeats)."""
    from paperlab.core.progress import track

    counts: dict[Hashable, int] = {c: n * k for c, k in Counter(corpus.labels).items()}
    unknown = sorted(set(counts) - set(augmenter.classes_))
    if unknown:
        raise ValueError(f"{corpus.path}: labels {', '.join(map(repr, unknown))} are not "
                         f"classes of the grammar (it has "
                         f"{', '.join(map(repr, augmenter.classes_))})")
    total = sum(counts.values())
    made = augmenter.generate(counts, seed=seed)
    copies = repeats = 0
    with _csv_writer(out) as writer:
        writer.writerow([*corpus.header, mark_column])
        writer.writerows([*row, "0"] for row in corpus.rows)
        for new in track(made, f"{what}: {total} augmentations", total):
            row = [""] * len(corpus.header)
            row[corpus.text], row[corpus.label] = new.text, new.label
            writer.writerow([*row, "1"])
            copies += new.is_copy
            repeats += new.is_repeat
    return {"augmentations": total, "copies": copies,
            "copy_fraction": round(copies / total, 4), "repeats": repeats}


def _input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, metavar="IN.csv",
                        help="labelled sentences: CSV (or .tsv) with a header line")
    parser.add_argument("--text-column", required=True, metavar="C",
                        help="the column holding the sentences")
    parser.add_argument("--label-column", required=True, metavar="L",
                        help="the column holding the labels")


def _fitting_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", type=float, default=None, metavar="NATS",
                        help="ALP: keep trees of at least this log-probability per word "
                        "(nats; default -4; recombine only)")
    parser.add_argument("--generation", choices=("pcfg", "sample", "recombine"), default=None,
                        help="ALP: pcfg (default, the authors' code): join phrases of the "
                        "class's examples and their part-of-speech templates refilled with "
                        "the class's words; sample: join phrases sampled from a class-wise "
                        "lexicalized PCFG; recombine: recombine parse trees into one sentence")
    parser.add_argument("--min-chars", type=int, default=None, metavar="N",
                        help="ALP with --generation pcfg or sample: shortest augmentation in "
                        "characters (default 256)")
    parser.add_argument("--treebank-trees", type=int, default=None, metavar="N",
                        help="ALP: induce the treebank grammar from the first N of its 3,914 "
                        "trees (default all; fewer: a quicker first build, a smaller grammar)")
    parser.add_argument("--data-root", type=Path, default=None, metavar="PATH",
                        help="data root holding text/nltk_data (default: the usual search)")


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    """The options among ``names`` that the command line set."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _checked(args: argparse.Namespace) -> None:
    """Bounds of the numeric options, named by their flags."""
    from paperlab.core import checks

    bounds = {"n": {"low": 1}, "seed": {"low": 0}, "treebank_trees": {"low": 1},
              "n_recombine": {"low": 0}, "min_chars": {"low": 1}}
    for name, bound in bounds.items():
        if getattr(args, name, None) is not None:
            checks.integer(getattr(args, name), "--" + name.replace("_", "-"), **bound)
    reals = {"threshold": {}, "p_slot": {"low": 0, "high": 1},
             "alpha": {"low": 0, "high": 1, "low_open": True}}
    for name, bound in reals.items():
        if getattr(args, name, None) is not None:
            checks.real(getattr(args, name), "--" + name.replace("_", "-"), **bound)


def _print_summary(summary: dict[str, Any], lines: list[str], as_json: bool,
                   stream: TextIO) -> None:
    print(json.dumps(summary, indent=2) if as_json else "\n".join(lines), file=stream)


def augment(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``paperlab alp augment``: adds the arguments, returns the handler."""
    parser.epilog = AUGMENT_EXAMPLE
    _input_arguments(parser)
    parser.add_argument("--n", type=int, default=4,
                        help="new sentences per row, made per class (default 4, as in the "
                        "paper's runs)")
    parser.add_argument("--method", choices=METHODS, default="alp",
                        help="alp (the paper's, default) or eda (Wei & Zou's baseline)")
    parser.add_argument("--out", type=Path, default=None, metavar="OUT.csv",
                        help="output CSV (default: stdout, with the summary on stderr)")
    parser.add_argument("--grammar", type=Path, default=None, metavar="PATH",
                        help="ALP: a grammar saved by 'paperlab alp fit-grammar' (no parsing)")
    parser.add_argument("--seed", type=int, default=0, help="seed, >= 0 (default 0)")
    parser.add_argument("--p-slot", type=float, default=None, metavar="P",
                        help="ALP: probability of refilling each head-word slot (default 0.3)")
    parser.add_argument("--n-recombine", type=int, default=None, metavar="K",
                        help="ALP: phrases swapped per new sentence (default 1)")
    parser.add_argument("--alpha", type=float, default=None, metavar="A",
                        help="EDA: share of words changed, in (0, 1] (default 0.1)")
    _fitting_arguments(parser)
    parser.add_argument("--mark-column", default="augmented", metavar="NAME",
                        help="the added column: 0 for an original row, 1 for an augmentation "
                        "(default 'augmented')")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(args: argparse.Namespace) -> int:
        _checked(args)
        for name, method in ONLY_FOR.items():
            if getattr(args, name) is not None and args.method != method:
                raise ValueError(f"--{name.replace('_', '-')} applies to --method {method} "
                                 "only")
        if args.grammar is not None:
            if args.method != "alp":
                raise ValueError("--grammar is a fitted ALP grammar; --method eda uses none")
            given = [f"--{n.replace('_', '-')}" for n in FITTING if getattr(args, n) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: fixed when the grammar was fitted "
                                 f"(see {args.grammar}); fit it again to change")
        corpus = read_corpus(args.input, args.text_column, args.label_column)
        if args.mark_column in corpus.header:
            raise ValueError(f"{corpus.path} already has a column {args.mark_column!r}; name "
                             "another with --mark-column")
        lines = [corpus.describe()]
        summary: dict[str, Any] = {"input": str(corpus.path), "method": args.method,
                                   "grammar": None, "rows": len(corpus.rows),
                                   "classes": dict(Counter(corpus.labels)), "per_row": args.n}
        settings = _given(args, ("threshold", "p_slot", "n_recombine", "alpha", "generation",
                                 "min_chars"))
        if args.grammar is not None:
            augmenter, source = load_grammar_file(args.grammar, **settings)
            unparsed, where = source["unparsed_lines"], str(source.get("file"))
            summary["grammar"] = str(args.grammar)
            lines.append(f"{args.grammar}: ALP grammar fitted on {where}")
        elif args.method == "alp":
            augmenter, unparsed = fit_alp(corpus, args.data_root, args.treebank_trees,
                                          **settings)
            where = str(corpus.path)
        else:
            augmenter = fit_eda(corpus, args.data_root, **settings)
            unparsed, where = [], str(corpus.path)
        fitted = sum(map(len, augmenter.sentences_.values()))
        summary.update(unparsed=augmenter.unparsed_, unparsed_lines=unparsed, fitted=fitted)
        if unparsed:
            lines.append(_unparsed_line(unparsed, fitted, where))
        summary.update(augment_corpus(corpus, augmenter, args.n, args.seed, args.out,
                                      args.mark_column, args.method.upper()))
        summary["out"] = None if args.out is None else str(args.out)
        lines.append(f"wrote {len(corpus.rows)} rows + {summary['augmentations']} "
                     f"augmentations ({args.n} per row) to {args.out or 'stdout'}")
        lines.append(f"{summary['copies']} of {summary['augmentations']} augmentations copy a "
                     f"training sentence, {summary['repeats']} repeat another"
                     + (" (no new sentence found in the tries allowed)"
                        if summary["copies"] or summary["repeats"] else ""))
        _print_summary(summary, lines, args.json, sys.stdout if args.out else sys.stderr)
        return 0

    return handle


def fit_grammar(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``paperlab alp fit-grammar``: adds the arguments, returns the handler."""
    parser.epilog = FIT_EXAMPLE
    _input_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, metavar="GRAMMAR",
                        help="the grammar file to write, JSON (default: IN's name + "
                        ".grammar.json)")
    _fitting_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(args: argparse.Namespace) -> int:
        _checked(args)
        corpus = read_corpus(args.input, args.text_column, args.label_column)
        alp, unparsed = fit_alp(corpus, args.data_root, args.treebank_trees,
                                **_given(args, ("threshold", "generation", "min_chars")))
        out = args.out or args.input.with_name(args.input.stem + ".grammar.json")
        path = save_grammar(out, alp, corpus, unparsed, args.treebank_trees)
        kept = {c: len(trees) for c, trees in alp.trees_.items()}
        summary = {"input": str(corpus.path), "rows": len(corpus.rows),
                   "classes": dict(Counter(corpus.labels)), "unparsed": len(unparsed),
                   "unparsed_lines": unparsed, "threshold": alp.threshold,
                   "trees_kept": kept, "out": str(path)}
        lines = [corpus.describe()]
        if unparsed:
            lines.append(_unparsed_line(unparsed, len(corpus.rows), str(corpus.path)))
        lines.append(f"kept {sum(kept.values())} trees at >= {alp.threshold:g} nats/word ("
                     + ", ".join(f"{c} {k}" for c, k in sorted(kept.items())) + ")")
        lines.append(f"wrote {path}")
        _print_summary(summary, lines, args.json, sys.stdout)
        return 0

    return handle
