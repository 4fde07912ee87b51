"""Seeding, deterministic settings and thread counts for python, NumPy and torch."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

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


def derive_seed(seed: int, *keys: str) -> int:
    """A seed in ``[0, 2**31)`` for the part of an experiment named by ``keys``, stable across
    processes and Python versions (not ``hash()``, which is salted per process).

    Seeding each method of an experiment with its own derived seed keeps its result independent
    of which methods ran before it in the same process.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    digest = hashlib.blake2b("\x1f".join((str(seed), *keys)).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") >> 1


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number.

    Small models gain nothing from threads, and on a shared CPU the extra threads only spin;
    restoring keeps the setting from leaking into whatever runs next.
    """
    import torch

    before = torch.get_num_threads()
    set_torch_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def set_torch_threads(n: int) -> None:
    """Set torch's intra-op thread count to ``n`` (>= 1). The one place outside this module
    that may change it is a timing harness's untimed setup (``timing.compare(setup=...)``);
    everywhere else use :func:`torch_threads`, which restores the count."""
    import torch

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"thread count must be an integer >= 1, got {n!r}")
    torch.set_num_threads(n)
