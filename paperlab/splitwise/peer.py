"""Run a checkout of the reference simulator (github.com/Mutinifni/splitwise-sim) beside ours.

Nothing of the reference is vendored: the user points ``checkout`` at their own clone and
``python`` at an interpreter that has its requirements (hydra-core, pandas, scipy, networkx).
This module only builds the command line for a :class:`~paperlab.splitwise.cluster.Design`,
runs it in a temporary folder and reads back its per-request CSV.
"""

from __future__ import annotations

import csv
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paperlab.splitwise.cluster import Design
from paperlab.splitwise.trace import Trace


@dataclass
class PeerRun:
    """The reference's per-request outputs (sorted by request id) and its wall time."""

    request_id: np.ndarray
    ttft_s: np.ndarray
    e2e_s: np.ndarray
    token_start_gap_s: np.ndarray
    wall_s: float


def reference_overrides(design: Design) -> list[str]:
    """Hydra overrides that make the reference simulate ``design`` (BLOOM-176B, TP8)."""
    sku = {"dgx-a100": 0, "dgx-h100": 1}
    if not design.split:
        counts = [0, 0]
        counts[sku[design.prompt_sku.name]] = design.n_prompt
        return ["cluster=half_half", f"cluster.servers.0.count={counts[0]}",
                f"cluster.servers.1.count={counts[1]}", "start_state=baseline",
                "applications.0.scheduler=token_jsq"]
    p, t = design.prompt_sku.name, design.token_sku.name
    common = ["applications.0.scheduler=mixed_pool"]
    if p == t:  # homogeneous: the first n_prompt servers prompt, the rest token
        counts = [0, 0]
        counts[sku[p]] = design.n_prompt + design.n_token
        return common + ["cluster=half_half", f"cluster.servers.0.count={counts[0]}",
                         f"cluster.servers.1.count={counts[1]}", "start_state=splitwise",
                         f"start_state.prompt.num_instances={design.n_prompt}",
                         f"start_state.token.num_instances={design.n_token}"]
    if (p, t) == ("dgx-h100", "dgx-a100"):
        return common + ["cluster=half_half", f"cluster.servers.0.count={design.n_token}",
                         f"cluster.servers.1.count={design.n_prompt}", "start_state=splitwise",
                         "start_state.split_type=heterogeneous"]
    if (p, t) == ("dgx-h100", "dgx-h100-pcap"):
        return common + ["cluster=hhcap_half_half", f"cluster.servers.0.count={design.n_token}",
                         f"cluster.servers.1.count={design.n_prompt}",
                         "start_state=splitwise_hhcap", "start_state.split_type=heterogeneous"]
    raise ValueError(f"the reference has no configuration for {design.label}")


def run_reference(checkout: str | Path, design: Design, trace: Trace, python: str = "python",
                  timeout_s: float = 1800) -> PeerRun:
    """Simulate ``trace`` on ``design`` with the reference at ``checkout``; time the process."""
    checkout = Path(checkout).resolve()
    if not (checkout / "run.py").is_file() or not (checkout / "configs").is_dir():
        raise FileNotFoundError(f"{checkout} is not a splitwise-sim checkout (no run.py/configs)")
    with tempfile.TemporaryDirectory(prefix="splitwise_ref_") as tmp:
        tmp = Path(tmp)
        trace.to_csv(tmp / "trace.csv")
        out = tmp / "out"
        cmd = [python, "run.py", *reference_overrides(design), "performance_model=db",
               f"trace.dir={tmp}", "trace.filename=trace", "seed=0", f"hydra.run.dir={out}"]
        env = dict(os.environ, PYTHONHASHSEED="0")
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=checkout, capture_output=True, text=True,
                              timeout=timeout_s, env=env)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"reference failed ({' '.join(cmd)}):\n{proc.stderr[-2000:]}")
        with open(out / "detailed" / "0.csv", newline="") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: int(float(r["request_ids"])))
    col = lambda k: np.array([float(r[k]) for r in rows])  # noqa: E731
    return PeerRun(request_id=col("request_ids").astype(np.int64), ttft_s=col("ttft_times"),
                   e2e_s=col("response_times"), token_start_gap_s=col("nth_token_overheads"),
                   wall_s=wall)
