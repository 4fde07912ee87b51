"""ALP: data augmentation with lexicalized PCFGs for few-shot text classification (Kim et al.).

Public API (imported lazily; nothing heavy at import time): the treebank grammar
(:func:`load_grammar`, :class:`PCFG`, :class:`CKYParser`, :class:`Tagger`, head rules and
lexicalisation), the class-wise :class:`LexicalizedPCFG`, the augmenters :class:`ALPAugmenter`
(the authors' phrase joining by default, tree recombination or PCFG sampling) and
:class:`EDAAugmenter` (returning an :class:`Augmentation`: texts, labels and the copies among
them), and the train/validation split strategies.
"""

from paperlab.core.claims import Bound, Claim, value
from paperlab.core.lazy import lazy_exports
from paperlab.core.registry import Option, System, Tool, comma_list

_EXPORTS = {
    "PCFG": "paperlab.alp.grammar",
    "LexicalizedPCFG": "paperlab.alp.grammar",
    "LexLabel": "paperlab.alp.grammar",
    "head_child": "paperlab.alp.grammar",
    "lexicalize": "paperlab.alp.grammar",
    "normalize_tree": "paperlab.alp.grammar",
    "CKYParser": "paperlab.alp.parser",
    "Parse": "paperlab.alp.parser",
    "tokenize": "paperlab.alp.parser",
    "Tagger": "paperlab.alp.tagger",
    "Grammar": "paperlab.alp.resources",
    "MissingResourceError": "paperlab.alp.resources",
    "load_grammar": "paperlab.alp.resources",
    "nltk_data_dir": "paperlab.alp.resources",
    "wordnet": "paperlab.alp.resources",
    "ALPAugmenter": "paperlab.alp.augment",
    "GENERATIONS": "paperlab.alp.augment",
    "Augmentation": "paperlab.alp.augment",
    "Augmented": "paperlab.alp.augment",
    "EDAAugmenter": "paperlab.alp.augment",
    "WordNetSynonyms": "paperlab.alp.augment",
    "Split": "paperlab.alp.splits",
    "SPLITS": "paperlab.alp.splits",
    "augmentation_split": "paperlab.alp.splits",
    "sample_per_class": "paperlab.alp.splits",
    "standard_split": "paperlab.alp.splits",
}

__all__ = ["SYSTEM", *_EXPORTS]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


def _datasets(text: str) -> tuple[str, ...]:
    """``"sst2,trec"`` -> ``("sst2", "trec")``, each one of the staged benchmarks, so a wrong
    name is a usage error when the command line is parsed."""
    from paperlab.alp.datasets import DATASETS

    names = comma_list(text)
    unknown = [name for name in names if name not in DATASETS]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ValueError(f"unknown data set{plural} {', '.join(unknown)}: choose among "
                         f"{','.join(DATASETS)}")
    return names


# The paper states these as orderings, so each claim is judged by its sign only: on the
# bootstrap interval (in points) over the paired per-(data set, k, seed) differences of the
# fine-tuned classifier, within noise when it holds 0.
def _gain(key: str) -> Bound:
    return Bound(value(key, " pts", ci=f"{key}_ci95"), limit=0.0)


_CLAIMS = (
    Claim("alp_beats_none", "ALP augmentation raises few-shot accuracy over no augmentation",
          paper="ALP > no augmentation (abstract)", rule=_gain("mean_gain_alp_vs_none_pts")),
    Claim("alp_beats_eda", "ALP augmentation beats EDA at the same number of augmentations",
          paper="ALP > EDA (abstract)", rule=_gain("mean_gain_alp_vs_eda_pts")),
    Claim("augmentation_split", "Augmentation-based train/validation splits beat the standard "
          "split at the same labelled budget", paper="augmentation-based split > standard",
          rule=_gain("split_strategy_gain_pts")),
)

SYSTEM = System(
    name="alp",
    paper="ALP: Data Augmentation using Lexicalized PCFGs for Few-Shot Text Classification "
          "(Kim, Woo, Oh, Cha & Han, AAAI 2022, arXiv 2112.11916)",
    claim="Augmenting few-shot training sets with examples generated from class-wise "
          "lexicalized PCFGs beats no augmentation and EDA, and augmentation-based "
          "train/validation splits beat the standard split at the same labelled budget",
    run="paperlab.alp.experiment:run",
    bench="paperlab.alp.experiment:bench",
    options=(
        Option("seeds", int, "sampled few-shot subsets per (data set, k)", min=1),
        Option("datasets", _datasets, "data sets among sst2,trec,snips,emotion",
               metavar="A,B,..."),
        Option("max_test", int, "test examples per data set (a seeded subsample)", min=1),
    ),
    claims=_CLAIMS,
    tools=(
        Tool("augment", "write a labelled CSV plus N ALP (or EDA) augmentations per row",
             "paperlab.alp.cli:augment"),
        Tool("fit-grammar", "fit ALP's class-wise grammar on a labelled CSV and save it as JSON",
             "paperlab.alp.cli:fit_grammar"),
    ),
)
