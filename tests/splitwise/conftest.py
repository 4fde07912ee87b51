"""Shared fixtures: the staged Splitwise data (skips cleanly where it is not staged)."""

from __future__ import annotations

from pathlib import Path

import pytest

from paperlab.core.data import DataNotFoundError, require
from paperlab.splitwise import PerfDatabase, read_azure_csv


@pytest.fixture(scope="session")
def data_root() -> Path:
    try:
        return require("splitwise", "stage ../shared/data/splitwise (see its PROVENANCE.md)")
    except DataNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def db(data_root: Path) -> PerfDatabase:
    return PerfDatabase.from_csv(data_root / "splitwise_sim" / "perf_model.csv")


@pytest.fixture(scope="session")
def azure_code(data_root: Path):
    return read_azure_csv(data_root / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv")
