"""Fixtures shared by the text tests and the text systems' tests: a few SST-2-like sentences,
MiniLM's tokenizer (offline) and a run context over the staged SST-2."""

from __future__ import annotations

import pytest

from paperlab.core.data import DataNotFoundError
from paperlab.core.results import RunContext
from paperlab.text.data import read_sst2
from paperlab.text.minilm import load_tokenizer

SENTENCES = [
    "a gorgeous , witty , seductive movie .",
    "the film is strictly routine .",
    "it 's a charming and often affecting journey that never quite lives up to the promise of "
    "its first half , yet leaves you with a smile .",
    "bad .",
]


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer()


@pytest.fixture
def sst2_run_context(tmp_path, monkeypatch):
    """``make(system)`` -> a quick-size ``RunContext`` writing under ``tmp_path``, with a cache of
    its own (no fine-tuned classifier from elsewhere is reused); skips when SST-2 is not staged
    under the data root."""
    try:
        read_sst2("dev")
    except DataNotFoundError:
        pytest.skip("SST-2 not staged under the data root")
    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path / "cache"))
    return lambda system: RunContext(system=system, quick=True, out_dir=tmp_path / "out")
