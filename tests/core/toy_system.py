"""A tiny test-only system: the CLI runs it like a real one."""

from __future__ import annotations

import numpy as np

from paperlab.core import plots
from paperlab.core.registry import Option, System, register
from paperlab.core.results import Result, RunContext


def run(ctx: RunContext) -> Result:
    """Mean of seeded draws per 'method', one plot; needs ``toy/values.txt`` when asked."""
    rng = np.random.default_rng(ctx.seed)
    rows = [{"method": m, "mean": float(rng.normal(loc, 1, 100).mean())} for m, loc in
            (("baseline", 0.0), ("ours", 1.0))]
    fig, ax = plots.figure()
    ax.bar([r["method"] for r in rows], [r["mean"] for r in rows])
    plots.save(fig, ctx.plot_path("means"))
    return Result(results=rows, summary={"gain": rows[1]["mean"] - rows[0]["mean"]},
                  data={"source": "synthetic"})


def run_needing_data(ctx: RunContext) -> Result:
    path = ctx.require("toy/values.txt", "Create toy/values.txt under the data root.")
    values = [float(x) for x in path.read_text().split()]
    return Result(results=[{"method": "sum", "value": sum(values)}], summary={}, data=str(path))


def explode(ctx: RunContext) -> Result:
    raise RuntimeError("toy failure")


TOY = register(System(name="toy", paper="Toy paper", claim="ours beats baseline",
                      run=f"{__name__}:run", bench=f"{__name__}:run"))
register(System(name="toy_data", paper="Toy data paper", claim="reads a file",
                run=f"{__name__}:run_needing_data"))
register(System(name="toy_broken", paper="Broken paper", claim="fails", run=f"{__name__}:explode"))


def echo_options(ctx: RunContext) -> Result:
    return Result(results=[{"method": "echo", **ctx.options}], summary={})


register(System(name="toy_options", paper="Options paper", claim="takes its own flags",
                run=f"{__name__}:echo_options",
                options=(Option("peer_path", str, "where the peer is"),)))

