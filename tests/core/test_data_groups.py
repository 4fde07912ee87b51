"""Every file a system's loaders read is in that system's group of the data manifest, so
``paperlab data fetch SYSTEM`` gets it and ``paperlab data verify SYSTEM`` checks it.

Each system's loading code runs on the staged data root (``../shared/data``) while an audit
hook (:func:`sys.addaudithook`) records every file opened, and every folder copied
(:func:`paperlab.core.data.writable_copy`, for PyG) so that files read from the copy count as
the staged files; nothing lists the files by hand. A walker stops a system's own function
(splitquant's tasks, splitwise's bench) at the first step after its data are read by
raising :class:`_Loaded` there.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from paperlab.core import data, manifest, registry
from paperlab.core.results import RunContext

STAGED = (data.REPO_ROOT.parent / "shared" / "data").resolve()
_events: list[tuple[str, tuple]] | None = None  # what the audit hook records, while recording


def _hook(event: str, args: tuple) -> None:
    if _events is not None and event in ("open", "shutil.copytree", "os.rename"):
        _events.append((event, args))


@functools.cache
def _install_hook() -> None:
    sys.addaudithook(_hook)  # once per process; a no-op outside :func:`_recording`


def _real(path: object) -> str | None:
    if not isinstance(path, (str, bytes, os.PathLike)):
        return None  # a file descriptor
    return os.path.realpath(os.fsdecode(path))


@contextmanager
def _recording() -> Iterator[set[str]]:
    """The files under the staged root opened in the block, relative to it (files read from a
    copy of a staged folder count as the staged file; files the copy gained do not count)."""
    global _events
    _install_hook()
    events: list[tuple[str, tuple]] = []
    opened: set[str] = set()
    _events = events
    try:
        yield opened
    finally:
        _events = None
    copies: dict[str, str] = {}  # copy (folder) -> staged folder
    for event, args in events:
        if event == "shutil.copytree":
            copies[_real(args[1])] = _real(args[0])
        elif event == "os.rename" and _real(args[0]) in copies:
            copies[_real(args[1])] = copies[_real(args[0])]
    for event, args in events:
        path = _real(args[0]) if event == "open" else None
        if path is None:
            continue
        for copy, src in copies.items():
            if path.startswith(copy + os.sep):
                path = src + path[len(copy):]
        rel = Path(path)
        if rel.is_relative_to(STAGED) and rel.is_file():
            opened.add(rel.relative_to(STAGED).as_posix())


class _Loaded(Exception):
    """Raised where a system's function has read its data and would start computing."""


def _stop(*_: object, **__: object) -> None:
    raise _Loaded


def _walk_mowst(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from paperlab.mowst import datasets

    for name in datasets.LOADERS:
        datasets.load(name, ctx.require)


def _walk_hierarchy(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from paperlab.hierarchy import experiment

    root = ctx.require("graphs/hsbm", experiment.HOW_TO_GET)  # what run() requires
    for load in experiment.REAL_NETWORKS.values():
        load(root)


def _walk_splitwise(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from paperlab.splitwise import experiment

    db, _, _ = experiment._load(ctx)
    experiment.reference_compat_error(ctx.require(experiment.DATA, experiment.HOW), db)
    monkeypatch.setattr(experiment.timing, "peak_memory", _stop)  # bench's trace, then timing
    with pytest.raises(_Loaded):
        experiment.bench(ctx, experiment.Config.quick())


def _walk_zloss(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from paperlab.zloss import experiment

    experiment.load_corpus(ctx)


def _walk_splitquant(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from paperlab.splitquant import experiment

    cfg = experiment.Config.quick()
    monkeypatch.setattr(experiment, "load_minilm", _stop)  # text data read, then the model
    monkeypatch.setattr(experiment, "train_cnn", _stop)  # CIFAR-10 read, then training
    for task in (experiment.text_tasks, experiment.cnn_task):
        with pytest.raises(_Loaded):
            task(ctx, cfg)


def _walk_cifar10(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """pitome, diffrate and entropic_student read CIFAR-10 through paperlab.vision.data."""
    from paperlab.vision.data import load_cifar10

    for split in ("train", "test"):
        load_cifar10(split, ctx.data_root, per_class=1)


def _walk_pitome(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from paperlab.pitome import text
    from paperlab.text import data as text_data

    _walk_cifar10(ctx, monkeypatch)
    for name in text.TextConfig().datasets:
        for split in ("train", text.EVAL_SPLIT[name]):
            text_data.read(name, split, ctx.data_root)


def _walk_alp(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from paperlab.alp import datasets, resources

    nltk_dir = resources.nltk_data_dir(ctx.data_root)
    resources.treebank_trees(nltk_dir, ["wsj_0001.mrg"])
    resources.wordnet.__wrapped__(str(nltk_dir))  # past its cache, so the zip is opened
    for name in datasets.DATASETS:
        datasets.load_dataset(name, ctx.data_root)


Walker = Callable[[RunContext, pytest.MonkeyPatch], None]
WALKERS: dict[str, Walker] = {
    "mowst": _walk_mowst,
    "hierarchy": _walk_hierarchy,
    "splitwise": _walk_splitwise,
    "zloss": _walk_zloss,
    "splitquant": _walk_splitquant,
    "pitome": _walk_pitome,
    "diffrate": _walk_cifar10,
    "entropic_student": _walk_cifar10,
    "alp": _walk_alp,
}
NO_DATA = ("softmax", "fourier_head")  # generate their inputs; see the source check below
READS_DATA = re.compile(r"\brequire\(|data_root|paperlab\.(vision|text)\.data|writable_copy")


def test_every_system_is_walked_or_reads_no_data():
    implemented = {n for n in registry.PACKAGES if registry.is_implemented(n)}
    assert implemented == set(WALKERS) | set(NO_DATA)
    for name in NO_DATA:  # a system that starts reading data needs a walker
        sources = (data.REPO_ROOT / "paperlab" / name).rglob("*.py")
        hits = [f"{p.name}: {m.group()}" for p in sources
                for m in READS_DATA.finditer(p.read_text())]
        assert hits == [], f"{name} reads data now; add a walker: {hits}"


def test_every_system_with_data_can_be_fetched_by_name():
    from paperlab.core import fetch

    for name in WALKERS:
        assert fetch.select([name]), name


@pytest.mark.skipif(not STAGED.is_dir(), reason="staged data folder ../shared/data is absent")
@pytest.mark.parametrize("system", sorted(WALKERS))
def test_every_file_a_system_reads_is_in_its_group(system, tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))  # fresh copies, no caches
    ctx = RunContext(system=system, quick=True, seed=0, out_dir=tmp_path / "out",
                     data_root=STAGED)
    with _recording() as opened:
        WALKERS[system](ctx, monkeypatch)
    assert opened, f"{system}'s loaders opened no staged file: the walker is broken"
    group = [e.path for e in manifest.ENTRIES if system in e.systems]
    outside = sorted(f for f in opened
                     if not any(f == p or f.startswith(p + "/") for p in group))
    assert outside == [], f"{system} reads files that 'paperlab data fetch {system}' misses"


def test_reproduce_without_data_says_so_in_one_line_per_system(tmp_path, monkeypatch, capsys):
    """Every system with data stops on an empty data root with one line naming what to fetch
    (no traceback), the others still run, and the exit code is 3, as for ``paperlab run``."""
    from paperlab import cli

    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    names = sorted(WALKERS)
    code = cli.main(["reproduce", "--quick", "--quiet", "--out", str(tmp_path / "out"),
                     "--data-root", str(empty), *names])
    err = capsys.readouterr().err
    assert code == cli.EXIT_NO_DATA
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == len(names) + 1, err
    for name, line in zip(names, lines[:-1], strict=True):
        assert line.startswith(f"paperlab: {name}: missing data '"), line
        assert str(empty) in line and "paperlab data fetch" in line, line
        assert "PROVENANCE" not in line and "shared/data" not in line, line
    assert lines[-1] == (f"paperlab: missing data for {', '.join(names)}: run 'paperlab data "
                         f"fetch {' '.join(names)}' (see {data.GETTING_THE_DATA})")
    report_md = (tmp_path / "out" / "REPORT.md").read_text()
    assert "run failed: missing data; run 'paperlab data fetch alp'" in report_md


def test_reproduce_goes_on_past_missing_data_and_failures(tmp_path, monkeypatch, capsys):
    """Missing data is one line, a failure a traceback; a failure decides the exit code."""
    from paperlab import cli

    def execute(name, which, ctx):
        if name == "alp":
            raise data.DataNotFoundError("missing data 'text/x': looked in /nowhere.")
        raise RuntimeError(f"{name} broke")

    monkeypatch.setattr(cli, "execute", execute)
    out = tmp_path / "out"
    assert cli.main(["reproduce", "--quick", "--out", str(out), "alp", "softmax"]) == \
        cli.EXIT_FAILED
    captured = capsys.readouterr()
    assert "paperlab: alp: missing data 'text/x'" in captured.err
    assert captured.err.count("Traceback") == 1 and "softmax broke" in captured.err
    assert "0 ran, 1 failed, 1 lacked data (alp)" in captured.out
    monkeypatch.setattr(cli, "execute", lambda name, which, ctx: execute("alp", which, ctx))
    assert cli.main(["reproduce", "--quick", "--out", str(out), "alp", "softmax"]) == \
        cli.EXIT_NO_DATA
    assert "0 ran, 0 failed, 2 lacked data (alp, softmax)" in capsys.readouterr().out
