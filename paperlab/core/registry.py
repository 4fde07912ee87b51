"""The registry: which packages are systems, and the declaration a system joins with.

A system's ``__init__.py`` declares, without importing anything heavy::

    from paperlab.core.registry import Option, System

    SYSTEM = System(
        name="mowst",
        paper="Mixture of Weak & Strong Experts on Graphs (Zeng et al., ICLR 2024)",
        claim="A confidence-gated MLP+GNN mixture beats both experts ...",
        run="paperlab.mowst.experiment:run",
        bench="paperlab.mowst.experiment:bench",
        options=(Option("seeds", int, "number of seeds (splits)", min=1),),
    )

``run`` and ``bench`` are ``"module:function"`` strings so that listing systems, or showing
``paperlab run SYSTEM --help``, imports nothing heavy; each function takes a
:class:`~paperlab.core.results.RunContext` (and an optional ``config`` override) and returns a
:class:`~paperlab.core.results.Result`. Each system owns its paper title and claim; this module
keeps only the names of the packages it may import.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paperlab.core.claims import Claim

# The eleven systems, in the order of the README: the packages ``paperlab.<name>`` the registry
# may import. A system is "implemented" once its package exists and declares ``SYSTEM``.
PACKAGES: tuple[str, ...] = (
    "mowst",
    "splitwise",
    "entropic_student",
    "splitquant",
    "diffrate",
    "hierarchy",
    "fourier_head",
    "softmax",
    "pitome",
    "zloss",
    "alp",
)


class UnknownSystemError(LookupError):
    """Raised for a system name that is neither a known package nor registered."""


class NotImplementedSystemError(LookupError):
    """Raised for a known system whose package does not exist yet."""


def comma_list(text: str) -> tuple[str, ...]:
    """Parse ``"a,b,c"`` into ``("a", "b", "c")``; empty items are an error."""
    items = tuple(part.strip() for part in text.split(","))
    if not all(items):
        raise ValueError(f"expected a comma-separated list without empty items, got {text!r}")
    return items


_TYPE_WORDS: dict[Any, str] = {int: "an integer", float: "a number", str: "text", Path: "a path"}


@dataclass(frozen=True)
class Option:
    """A command-line option of a system's ``run``/``bench``: ``--name VALUE``.

    Attributes:
        name: Python name (``max_epochs``); the flag is ``--max-epochs``. When it equals a field
            of the experiment's ``Config`` the value replaces that field (see
            :func:`paperlab.core.config.resolve_config`).
        type: converter from the command-line text: ``int``, ``float``, ``str``, ``Path`` or any
            callable that raises ``ValueError`` on bad text (e.g. :func:`comma_list`).
        help: one line for ``--help``.
        min, max: inclusive bounds for numbers (``None``: unbounded).
        choices: the allowed values, if only some are.
        metavar: placeholder shown in ``--help`` (default: the upper-cased name).
    """

    name: str
    type: Callable[[str], Any] = str
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str) -> Any:
        """Convert and validate ``text``; raise ``ValueError`` with a one-line reason."""
        try:
            value = self.type(text)
        except (TypeError, ValueError) as exc:
            if self.type in _TYPE_WORDS:
                raise ValueError(f"{self.flag} expects {_TYPE_WORDS[self.type]}, got {text!r}"
                                 ) from None
            # a system's own converter says what it expects in its message
            raise ValueError(f"{self.flag} {exc} (got {text!r})") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{self.flag} expects a finite number, got {text!r}")
        if self.min is not None and value < self.min:
            raise ValueError(f"{self.flag} must be >= {self.min:g}, got {text}")
        if self.max is not None and value > self.max:
            raise ValueError(f"{self.flag} must be <= {self.max:g}, got {text}")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise ValueError(f"{self.flag} must be one of {allowed}, got {text!r}")
        return value


@dataclass(frozen=True)
class Tool:
    """A command for a user's own inputs: ``paperlab SYSTEM NAME ...`` (e.g. ``paperlab
    hierarchy fit edges.csv``).

    Attributes:
        name: the verb, as typed (``fit``, ``simulate``).
        help: one line for ``paperlab SYSTEM --help``.
        entry: ``"module:function"``. ``function(parser)`` adds the verb's arguments to its
            ``argparse`` parser (with an example in the parser's epilog) and returns the
            handler, ``handler(args) -> exit code``. Imported only when the command line names
            this system, so ``paperlab --help`` imports no system's tools. A handler raises
            ``FileNotFoundError`` for a missing input (exit 3) and ``ValueError`` or
            ``TypeError`` for a malformed one (exit 2), with a message naming the file and,
            where it applies, the line and column.
    """

    name: str
    help: str
    entry: str

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").isalnum() or ":" not in self.entry:
            raise ValueError(f"a tool needs a plain verb and a 'module:function' entry: {self!r}")

    def load(self) -> Callable[..., Any]:
        """Import and return the entry function."""
        module, _, function = self.entry.partition(":")
        return getattr(importlib.import_module(module), function)


@dataclass(frozen=True)
class System:
    """One paper's system as the CLI sees it.

    Attributes:
        name: package name under ``paperlab`` (also the results file stem).
        paper: paper title and venue, one line.
        claim: the paper's headline claim, one line.
        run: ``"module:function"`` of the reproduction, ``f(ctx, config=None) -> Result``.
        bench: ``"module:function"`` of the peer benchmark, or ``None``.
        options: the system's own typed command-line options; their parsed values reach
            ``run``/``bench`` as ``ctx.options[name]`` (``None`` when unset).
        claims: the paper's headline claims, each with the summary keys that measure it and
            the rule that turns our figure into a verdict (see :mod:`paperlab.core.claims`).
        tools: commands for a user's own inputs, ``paperlab SYSTEM VERB`` (see :class:`Tool`).
    """

    name: str
    paper: str
    claim: str
    run: str
    bench: str | None = None
    options: Sequence[Option] = ()
    claims: Sequence[Claim] = ()
    tools: Sequence[Tool] = ()

    @property
    def command(self) -> str:
        """The system's name as a command word (``entropic-student``)."""
        return self.name.replace("_", "-")

    def __post_init__(self) -> None:
        for tool in self.tools:
            if not isinstance(tool, Tool):
                raise TypeError(f"{self.name}: tools must be Tool(...), got {tool!r}")
        verbs = [tool.name for tool in self.tools]
        if len(set(verbs)) != len(verbs):
            raise ValueError(f"{self.name}: tool names repeat: {verbs}")
        for option in self.options:
            if not isinstance(option, Option):
                raise TypeError(f"{self.name}: options must be Option(...), got {option!r}")
        for claim in self.claims:
            if not isinstance(claim, Claim):
                raise TypeError(f"{self.name}: claims must be Claim(...), got {claim!r}")
        ids = [claim.id for claim in self.claims]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.name}: claim ids repeat: {ids}")

    def load(self, which: str = "run") -> Callable[..., Any]:
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
    spec = importlib.util.find_spec(f"paperlab.{name}")
    return spec is not None and spec.origin is not None  # not an empty folder (namespace)


def names() -> list[str]:
    """The project's systems followed by any extra registered ones."""
    return list(PACKAGES) + [n for n in _REGISTERED if n not in PACKAGES]


def get(name: str) -> System:
    """Find a system by name (imports only its light ``__init__``).

    Raises:
        UnknownSystemError: the name is not a system at all.
        NotImplementedSystemError: the name is a planned system not built yet.
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in PACKAGES:
        known = ", ".join(names())
        raise UnknownSystemError(f"unknown system '{name}'; known systems: {known}")
    if not is_implemented(name):
        raise NotImplementedSystemError(f"system '{name}' is not implemented yet")
    system = getattr(importlib.import_module(f"paperlab.{name}"), "SYSTEM", None)
    if not isinstance(system, System):
        raise NotImplementedSystemError(f"paperlab.{name} does not declare SYSTEM")
    return system
