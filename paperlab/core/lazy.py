"""Lazy public APIs, so that importing a system's package (for its ``SYSTEM`` declaration, its
options or ``paperlab list``) imports no torch and none of its heavy modules.

In ``paperlab/<system>/__init__.py``::

    __getattr__, __dir__ = lazy_exports(__name__, {"Mowst": "paperlab.mowst.mowst", ...})

``from paperlab.mowst import Mowst`` then imports ``paperlab.mowst.mowst`` on first use.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        exports: public name -> module that defines it (``"paperlab.x.module"``).

    Returns:
        ``(__getattr__, __dir__)``: the first imports the defining module on first access
        (``AttributeError`` for any other name); the second lists the lazy names together
        with what the package defines itself.
    """
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(set(table) | set(vars(sys.modules[package])))

    return __getattr__, __dir__
