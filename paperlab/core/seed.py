"""Seeding and deterministic settings for python, NumPy and (when installed) torch."""

from __future__ import annotations

import importlib.util
import os
import random

import numpy as np


def seed_everything(seed: int, deterministic: bool = True) -> np.random.Generator:
    """Seed ``random``, NumPy and torch; return a fresh ``np.random.Generator(seed)``.

    With ``deterministic`` torch uses deterministic algorithms where they exist
    (``warn_only``: an op without one warns instead of failing).
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.manual_seed(seed)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            if hasattr(torch.backends, "cudnn"):
                torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)
