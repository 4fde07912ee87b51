"""``paperlab alp augment`` and ``paperlab alp fit-grammar`` on CSV files the tests write:
outputs, the saved grammar, reports of unparsed sentences and copies, bad input."""

from __future__ import annotations

import csv
import io
import json
import pickle
from collections import Counter
from pathlib import Path

import pytest

from paperlab import cli
from paperlab.alp import resources
from paperlab.alp.augment import ALPAugmenter
from paperlab.alp.parser import tokenize

ROWS = [
    ("1", "The acting is superb and the story moves me.", "pos"),
    ("2", "I loved the actors in this film.", "pos"),
    ("3", "A great story with a warm heart.", "pos"),
    ("4", "The music is beautiful.", "pos"),
    ("5", "The plot is weak and the dialogue is dull.", "neg"),
    ("6", "I hated the ending.", "neg"),
    ("7", "The movie was boring and far too long.", "neg"),
    ("8", "the the the the", "neg"),  # no parse under the treebank grammar
]
COLUMNS = ["--text-column", "text", "--label-column", "label"]


def write_csv(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...] = ("id", "text",
              "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def read_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture(scope="module")
def fitting(nltk_dir) -> list[str]:
    """The treebank grammar from 800 trees (the JSON cache the other tests share) and the
    data root the NLTK data was found in."""
    return ["--treebank-trees", "800", "--data-root", str(nltk_dir.parents[1])]


@pytest.fixture
def reviews(tmp_path) -> Path:
    return write_csv(tmp_path / "reviews.csv", ROWS)


def test_augment_writes_the_rows_then_marked_augmentations(tmp_path, reviews, fitting, capsys):
    out = tmp_path / "sub" / "augmented.csv"
    assert cli.main(["alp", "augment", str(reviews), *COLUMNS, "--n", "2", "--out", str(out),
                     "--json", *fitting]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = read_rows(out.read_text())
    assert rows[0] == ["id", "text", "label", "augmented"]
    assert rows[1:9] == [[*row, "0"] for row in ROWS]
    made = rows[9:]
    assert len(made) == 16 and all(r[0] == "" and r[3] == "1" for r in made)
    assert Counter(r[2] for r in made) == {"pos": 8, "neg": 8}
    originals = {" ".join(tokenize(text)) for _, text, _ in ROWS}
    copies = sum(r[1] in originals for r in made)
    assert summary["copies"] == copies == 0 and summary["repeats"] == 0
    assert len({r[1] for r in made}) == 16
    assert summary["unparsed_lines"] == [9]  # the header is line 1
    assert summary["unparsed"] == 1  # the augmenter's own count agrees
    assert (summary["rows"], summary["augmentations"], summary["out"]) == (8, 16, str(out))
    assert not list(out.parent.glob("*.part"))


def test_a_saved_grammar_gives_the_same_augmentations_without_parsing(
        tmp_path, reviews, fitting, capsys, monkeypatch):
    fresh = tmp_path / "fresh.csv"
    assert cli.main(["alp", "augment", str(reviews), *COLUMNS, "--n", "3", "--seed", "5",
                     "--out", str(fresh), *fitting]) == 0
    grammar = tmp_path / "reviews.grammar.json"
    assert cli.main(["alp", "fit-grammar", str(reviews), *COLUMNS, "--out", str(grammar),
                     *fitting]) == 0
    out = capsys.readouterr().out
    assert "line 9 of" in out and f"wrote {grammar}" in out
    saved = json.loads(grammar.read_text())
    assert saved["format"] == "paperlab-alp-grammar" and saved["source"]["rows"] == 8

    def no_treebank(*args, **kwargs):
        raise AssertionError("--grammar must not build or load the treebank grammar")

    monkeypatch.setattr(resources, "load_grammar", no_treebank)
    assert cli.main(["alp", "augment", str(reviews), *COLUMNS, "--n", "3", "--seed", "5",
                     "--grammar", str(grammar)]) == 0
    captured = capsys.readouterr()
    assert read_rows(captured.out) == read_rows(fresh.read_text())  # CSV on stdout
    assert f"{grammar}: ALP grammar fitted on {reviews}" in captured.err  # summary on stderr
    assert "1 of 8 sentences did not parse (line 9 of" in captured.err


def test_pcfg_generation_from_the_command_line_and_from_its_saved_grammar(
        tmp_path, reviews, fitting, capsys):
    fresh = tmp_path / "pcfg.csv"
    assert cli.main(["alp", "augment", str(reviews), *COLUMNS, "--n", "1", "--generation",
                     "pcfg", "--min-chars", "120", "--out", str(fresh), *fitting]) == 0
    rows = read_rows(fresh.read_text())
    new = [r for r in rows[1:] if r[3] == "1"]
    assert len(new) == 8 and all(len(r[1]) >= 120 for r in new)
    grammar = tmp_path / "pcfg.grammar.json"
    assert cli.main(["alp", "fit-grammar", str(reviews), *COLUMNS, "--generation", "pcfg",
                     "--min-chars", "120", "--out", str(grammar), *fitting]) == 0
    assert json.loads(grammar.read_text())["augmenter"]["settings"]["generation"] == "pcfg"
    capsys.readouterr()
    assert cli.main(["alp", "augment", str(reviews), *COLUMNS, "--n", "1", "--grammar",
                     str(grammar)]) == 0
    assert read_rows(capsys.readouterr().out) == rows
    for extra, message in ((["--grammar", str(grammar), "--generation", "recombine"],
                            "fixed when the grammar was fitted"),
                           (["--method", "eda", "--min-chars", "10"], "--method alp only")):
        assert cli.main(["alp", "augment", str(reviews), *COLUMNS, *extra]) == 2
        assert message in capsys.readouterr().err


def test_eda_to_stdout(reviews, fitting, capsys):
    root = fitting[fitting.index("--data-root") + 1]
    assert cli.main(["alp", "augment", str(reviews), *COLUMNS, "--method", "eda", "--n", "1",
                     "--alpha", "0.2", "--data-root", root]) == 0
    captured = capsys.readouterr()
    rows = read_rows(captured.out)
    assert len(rows) == 1 + 8 + 8 and Counter(r[3] for r in rows[1:]) == {"0": 8, "1": 8}
    assert "did not parse" not in captured.err
    assert "wrote 8 rows + 8 augmentations (1 per row) to stdout" in captured.err


def test_copies_of_training_sentences_are_reported(tmp_path, fitting, capsys):
    """One one-word sentence: ALP has nothing to recombine, so it falls back on copies."""
    path = write_csv(tmp_path / "one.csv", [("hello", "greeting")], header=("text", "label"))
    out = tmp_path / "out.csv"
    assert cli.main(["alp", "augment", str(path), *COLUMNS, "--n", "2", "--out", str(out),
                     "--generation", "recombine", *fitting]) == 0
    assert "2 of 2 augmentations copy a training sentence" in capsys.readouterr().out
    assert [r[0] for r in read_rows(out.read_text())[2:]] == ["hello", "hello"]


@pytest.mark.parametrize("content, extra, message", [
    ("", [], "empty file"),
    ("id,text,label\n", [], "no rows after the header line"),
    ("id,sentence,label\n1,a film,pos\n", [],
     "no column 'text' (--text-column); the file has columns: 'id', 'sentence', 'label'"),
    ("id,text,label\n1,a film,pos\n2,a film\n", [], "line 3: 2 fields, but the header has 3"),
    ("id,text,label\n1,  ,pos\n", [], "line 2, column 2 ('text'): empty text"),
    ("id,text,label\n1,a film,\n", [], "line 2, column 3 ('label'): empty label"),
    (b"id,text,label\n1,\xff\xfe film,pos\n", [], "not a UTF-8 text file"),
    ("id,text,label\n1,a film,pos\n", ["--n", "0"], "--n must be >= 1, got 0"),
    ("id,text,label\n1,a film,pos\n", ["--p-slot", "2"], "--p-slot must be in [0, 1]"),
    ("id,text,label\n1,a film,pos\n", ["--alpha", "0.2"], "--alpha applies to --method eda"),
    ("id,text,label\n1,a film,pos\n", ["--method", "eda", "--grammar", "g.json"],
     "--method eda uses none"),
    ("id,text,label\n1,a film,pos\n", ["--grammar", "g.json", "--threshold", "-3"],
     "--threshold: fixed when the grammar was fitted"),
    ("id,text,label\n1,a film,pos\n", ["--mark-column", "id"], "already has a column 'id'"),
])
def test_bad_input_exits_2_naming_the_problem(tmp_path, content, extra, message, capsys):
    path = tmp_path / "in.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert cli.main(["alp", "augment", str(path), *COLUMNS, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_and_unreadable_files(tmp_path, reviews, capsys):
    assert cli.main(["alp", "augment", str(tmp_path / "none.csv"), *COLUMNS]) == 3
    assert "no CSV file at" in capsys.readouterr().err
    assert cli.main(["alp", "fit-grammar", str(tmp_path), *COLUMNS]) == 2
    assert "is a folder, not a CSV file" in capsys.readouterr().err
    assert cli.main(["alp", "augment", str(reviews), *COLUMNS, "--grammar",
                     str(tmp_path / "none.json")]) == 3
    assert "no grammar file at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["alp", "augment", str(reviews), *COLUMNS, "--method", "bert"])
    assert exit_.value.code == 2
    assert "invalid choice: 'bert'" in capsys.readouterr().err


def test_a_class_alp_cannot_learn_from_names_the_file(tmp_path, fitting, capsys):
    path = write_csv(tmp_path / "odd.csv", [("1", "a good film", "pos"),
                                            ("2", "zqxv wvkq", "noise")])
    assert cli.main(["alp", "augment", str(path), *COLUMNS, *fitting]) == 2
    assert f"{path}: class 'noise' has only unknown words" in capsys.readouterr().err


def _grammar_file(tmp_path: Path, reviews: Path, fitting: list[str]) -> dict:
    path = tmp_path / "g.json"
    assert cli.main(["alp", "fit-grammar", str(reviews), *COLUMNS, "--out", str(path),
                     *fitting]) == 0
    return json.loads(path.read_text())


def test_files_that_are_not_grammars_are_refused_naming_them(tmp_path, reviews, fitting,
                                                             capsys):
    good = _grammar_file(tmp_path, reviews, fitting)
    bad_tree = json.loads(json.dumps(good))
    bad_tree["augmenter"]["classes"][0]["trees"][0] = ["S", "a", ["NP", "b"]]
    no_trees = json.loads(json.dumps(good))
    no_trees["augmenter"]["classes"][1]["trees"] = []
    cases = {
        "pickled.json": (pickle.dumps({"format": "paperlab-alp-grammar"}), "not JSON"),
        "other.json": (json.dumps({"weights": [1, 2]}), 'no "format"'),
        "newer.json": (json.dumps({**good, "version": 2}), "version 2"),
        "tree.json": (json.dumps(bad_tree), "a word must be its node's only child"),
        "empty.json": (json.dumps(no_trees), "needs sentences, trees"),
        "nokey.json": (json.dumps({**good, "augmenter": {"classes": []}}), "no 'settings'"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
        assert cli.main(["alp", "augment", str(reviews), *COLUMNS, "--grammar",
                         str(path)]) == 2, name
        err = capsys.readouterr().err
        assert f"{path}: " in err and message in err, (name, err)


def test_labels_the_grammar_does_not_know(tmp_path, reviews, fitting, capsys):
    _grammar_file(tmp_path, reviews, fitting)
    other = write_csv(tmp_path / "spam.csv", [("1", "buy now", "spam"), ("2", "hi", "pos")])
    assert cli.main(["alp", "augment", str(other), *COLUMNS, "--grammar",
                     str(tmp_path / "g.json")]) == 2
    assert "labels 'spam' are not classes of the grammar (it has 'neg', 'pos')" in \
        capsys.readouterr().err


def test_to_json_from_json_round_trip(toy_grammar):
    texts = ["the film is good", "the movie was very dull", "a great story moves me",
             "i loved the actors", "the plots are weak", "it bored the audience"]
    labels = ["pos", "neg", "pos", "pos", "neg", "neg"]
    alp = ALPAugmenter(toy_grammar, None, threshold=-50.0).fit(texts, labels)
    back = ALPAugmenter.from_json(json.loads(json.dumps(alp.to_json())))
    assert back.augment(4, seed=1) == alp.augment(4, seed=1)
    assert list(back.generate(4, seed=1)) == list(alp.generate(4, seed=1))
    assert [g.text for g in alp.generate(4, seed=1)] == alp.augment(4, seed=1)[0]
    assert ALPAugmenter.from_json(alp.to_json(), p_slot=1.0).p_slot == 1.0
    with pytest.raises(RuntimeError, match="loaded with from_json"):
        back.fit(texts, labels)
    with pytest.raises(TypeError, match="cannot be saved"):
        ALPAugmenter(toy_grammar, None, threshold=-50.0).fit(texts, [(1,)] * 6).to_json()
    with pytest.raises(RuntimeError, match="not fitted"):
        ALPAugmenter(toy_grammar).to_json()


def test_help_shows_examples(capsys):
    for verb in ("augment", "fit-grammar"):
        with pytest.raises(SystemExit):
            cli.main(["alp", verb, "--help"])
        assert f"example:\n  paperlab alp {verb} " in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["alp", "--help"])
    assert "augment" in capsys.readouterr().out


def test_run_options_reach_the_configuration_and_bad_ones_are_refused(tmp_path, monkeypatch,
                                                                       capsys):
    """``paperlab run alp``'s own options and the job map's ``--workers`` arrive in the run's
    context; out-of-range and malformed values stop before any training."""
    from paperlab.alp import experiment
    from paperlab.core.config import resolve_config
    from paperlab.core.jobs import run_options

    seen = {}

    def fake_run(ctx, config=None):
        seen["cfg"] = resolve_config(ctx, experiment.Config, config)
        seen["jobs"] = run_options(ctx.options)
        raise SystemExit(0)  # nothing to train

    monkeypatch.setattr(experiment, "run", fake_run)
    with pytest.raises(SystemExit):
        cli.main(["run", "alp", "--seeds", "12", "--datasets", "sst2,trec", "--max-test", "50",
                  "--workers", "2", "--out", str(tmp_path)])
    cfg = seen["cfg"]
    assert (cfg.seeds, cfg.datasets, cfg.max_test) == (12, ("sst2", "trec"), 50)
    assert cfg.self_training is not None and seen["jobs"]["workers"] == 2
    for bad, message in ((["--seeds", "0"], "--seeds: must be >= 1"),
                         (["--datasets", "sst2,,trec"], "empty items"),
                         (["--workers", "0"], "--workers: must be >= 1")):
        with pytest.raises(SystemExit) as exc:
            cli.main(["run", "alp", *bad, "--out", str(tmp_path)])
        assert exc.value.code == cli.EXIT_USAGE and message in capsys.readouterr().err


def test_an_unknown_data_set_is_a_one_line_usage_error(tmp_path, capsys):
    """``--datasets`` is checked when the command line is parsed: exit 2, one line naming the
    wrong name and the data sets there are, before the run starts."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "alp", "--datasets", "sst2,imdb", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert exc.value.code == cli.EXIT_USAGE == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "--datasets" in err and "unknown data set imdb: choose among sst2,trec,snips,emotion" \
        in err
    assert not list(tmp_path.iterdir())
