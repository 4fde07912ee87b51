"""The catalogue of systems and the registry a system joins with a few lines.

A system's ``__init__.py`` declares::

    from paperlab.core.registry import System

    SYSTEM = System(
        name="mowst",
        paper="Mixture of Weak & Strong Experts on Graphs (Zeng et al., ICLR 2024)",
        claim="A confidence-gated MLP+GNN mixture beats both experts ...",
        run="paperlab.mowst.experiment:run",
        bench="paperlab.mowst.experiment:bench",
    )

``run`` and ``bench`` are ``"module:function"`` strings so that listing systems imports
nothing heavy; each function takes a :class:`~paperlab.core.results.RunContext` and returns
a :class:`~paperlab.core.results.Result`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The eleven papers, in the order of the README. A system is "implemented" once its
# package ``paperlab.<name>`` exists and declares ``SYSTEM``.
CATALOGUE: dict[str, str] = {
    "mowst": "Mixture of Weak & Strong Experts on Graphs",
    "splitwise": "Splitwise: Efficient Generative LLM Inference Using Phase Splitting",
    "entropic_student": "Supervised Compression for Resource-Constrained Edge Computing Systems",
    "splitquant": "SplitQuant: Layer Splitting for Low-Bit Neural Network Quantization",
    "diffrate": "DiffRate: Differentiable Compression Rate for Efficient Vision Transformers",
    "hierarchy": "When Does Bottom-up Beat Top-down in Hierarchical Community Detection?",
    "fourier_head": "Fourier Head: Helping LLMs Learn Complex Probability Distributions",
    "softmax": "The Two-Pass Softmax Algorithm",
    "pitome": "Accelerating Transformers with Spectrum-Preserving Token Merging (PiToMe)",
    "zloss": "The Z-loss: a Shift and Scale Invariant Classification Loss",
    "alp": "ALP: Data Augmentation Using Lexicalized PCFGs for Few-Shot Text Classification",
}


class UnknownSystemError(LookupError):
    """Raised for a system name that is neither in the catalogue nor registered."""


class NotImplementedSystemError(LookupError):
    """Raised for a catalogued system whose package does not exist yet."""


@dataclass(frozen=True)
class System:
    """One paper's system as the CLI sees it.

    Attributes:
        name: package name under ``paperlab`` (also the results file stem).
        paper: paper title and venue, one line.
        claim: the paper's headline claim, one line (REPORT.md puts it beside our numbers).
        run: ``"module:function"`` of the reproduction, ``f(ctx) -> Result``.
        bench: ``"module:function"`` of the peer benchmark, or ``None``.
        options: extra ``--flag VALUE`` options of this system's ``run``/``bench`` as
            ``(flag, help)`` pairs, e.g. ``(("reference", "path to a peer checkout"),)``;
            the values reach the system as ``ctx.options["reference"]`` (``None`` if unset).
    """

    name: str
    paper: str
    claim: str
    run: str
    bench: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    def load(self, which: str = "run") -> Callable[[Any], Any]:
        """Import and return the ``run`` or ``bench`` function."""
        target = self.run if which == "run" else self.bench
        if target is None:
            raise NotImplementedSystemError(f"system '{self.name}' has no {which}")
        module, _, function = target.partition(":")
        return getattr(importlib.import_module(module), function)


_REGISTERED: dict[str, System] = {}


def register(system: System) -> System:
    """Register a system that does not live under ``paperlab`` (tests, plug-ins)."""
    _REGISTERED[system.name] = system
    return system


def is_implemented(name: str) -> bool:
    """Whether ``paperlab.<name>`` exists, without importing it."""
    if name in _REGISTERED:
        return True
    return importlib.util.find_spec(f"paperlab.{name}") is not None


def names() -> list[str]:
    """Catalogued names followed by any extra registered ones."""
    return list(CATALOGUE) + [n for n in _REGISTERED if n not in CATALOGUE]


def get(name: str) -> System:
    """Find a system by name.

    Raises:
        UnknownSystemError: the name is not a system at all.
        NotImplementedSystemError: the name is catalogued but not built yet.
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in CATALOGUE:
        known = ", ".join(names())
        raise UnknownSystemError(f"unknown system '{name}'; known systems: {known}")
    if not is_implemented(name):
        raise NotImplementedSystemError(f"system '{name}' is not implemented yet")
    system = getattr(importlib.import_module(f"paperlab.{name}"), "SYSTEM", None)
    if not isinstance(system, System):
        raise NotImplementedSystemError(f"paperlab.{name} does not declare SYSTEM")
    return system
