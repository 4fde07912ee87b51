"""One way to pick an experiment's configuration.

Every ``experiment.py`` has one frozen ``Config`` dataclass with classmethods ``quick()`` and
``full()``, and its ``run(ctx, config=None)`` / ``bench(ctx, config=None)`` start with::

    cfg = resolve_config(ctx, Config, config)

so a test passes a tiny ``Config`` and the CLI's ``--quick`` and typed options do the rest.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol, TypeVar

from paperlab.core.results import RunContext

log = logging.getLogger(__name__)


class SizedConfig(Protocol):
    """What an experiment's ``Config`` offers: the two sizes every system runs at."""

    @classmethod
    def quick(cls) -> Any: ...

    @classmethod
    def full(cls) -> Any: ...


C = TypeVar("C", bound=SizedConfig)


def resolve_config(ctx: RunContext, config_cls: type[C], config: C | None = None) -> C:
    """The configuration a run uses.

    ``config`` when given (a test's or a caller's override, used as is); otherwise
    ``config_cls.quick()`` or ``.full()`` by ``ctx.quick``, narrowed by the command-line options
    that were set: through ``cfg.with_options(options)`` when the Config defines it (options
    that touch several fields), else each option whose name is a field replaces that field.
    """
    if config is not None:
        if not isinstance(config, config_cls):
            raise TypeError(
                f"config must be a {config_cls.__name__}, got {type(config).__name__}"
            )
        log.info("%s: the caller's config %s", ctx.system, config)
        return config
    cfg = config_cls.quick() if ctx.quick else config_cls.full()
    options = {k: v for k, v in ctx.options.items() if v is not None}
    if options:
        with_options = getattr(cfg, "with_options", None)
        if with_options is not None:
            cfg = with_options(options)
        else:
            fields = {f.name for f in dataclasses.fields(cfg)}  # type: ignore[arg-type]
            cfg = dataclasses.replace(cfg, **{k: v for k, v in options.items() if k in fields})
    log.info("%s: %s size, options %s: %s", ctx.system, "quick" if ctx.quick else "full",
             options or "none", cfg)
    return cfg
