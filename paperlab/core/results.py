"""The one results schema, its atomic writer and Markdown tables (REPORT.md: see report.py).

A system's ``run(ctx)`` / ``bench(ctx)`` returns a :class:`Result` (its rows, its key
figures, the data it used); the runner stamps the header (system, paper, claim, quick,
seed, environment, seconds) and writes ``<out>/<system>.json`` and ``.md``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from paperlab.core import data as _data

SCHEMA_KEYS = (
    "system",
    "paper",
    "claim",
    "quick",
    "seed",
    "data",
    "results",
    "summary",
    "environment",
    "seconds",
)


@dataclass
class RunContext:
    """What the CLI hands a system's ``run``/``bench``.

    Attributes:
        system: the system's name (results and plot file stem).
        quick: the small size that finishes in minutes.
        seed: base seed; experiments over several seeds use ``seed, seed+1, ...``.
        out_dir: folder for ``<system>.json``, ``.md`` and ``<system>*.png``.
        data_root: explicit ``--data-root`` or ``None`` (then the usual search order).
        options: parsed values of the system's typed options (``System.options``), ``None``
            when unset.
        command: the command line that made this run, kept in its record (``""``: called
            from Python).
    """

    system: str
    quick: bool = False
    seed: int = 0
    out_dir: Path = Path("results")
    data_root: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    command: str = ""

    def plot_path(self, name: str) -> Path:
        """``<out_dir>/<system>_<name>.png`` (the folder is created)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / f"{self.system}_{name}.png"

    def require(self, relpath: str, how_to_get: str) -> Path:
        """Resolve a data file or folder under the data root (see :mod:`paperlab.core.data`)."""
        return _data.require(relpath, how_to_get, root=self.data_root)


@dataclass
class Result:
    """What a reproduction or benchmark measured.

    Attributes:
        results: one row per method (``{"method": ..., <metric>: ...}``), JSON-serialisable.
        summary: the key figures named in the system's issue.
        data: what data was used (names, paths, sizes), free-form but JSON-serialisable.
        notes: short remarks printed under the table (e.g. where we differ from the paper).
    """

    results: list[dict[str, Any]]
    summary: dict[str, Any]
    data: Any = None
    notes: list[str] = field(default_factory=list)


def _commit() -> str | None:
    """The checkout's commit (``"abc1234+dirty"`` with uncommitted changes), if in git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True).stdout
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return head.strip() + ("+dirty" if dirty.strip() else "")


def environment() -> dict[str, Any]:
    """Python, torch (when imported), CPU, thread count, commit and date of this run."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else os.cpu_count()
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "torch": getattr(torch, "__version__", None),
        "cpu": cpu,
        "threads": threads,
        "commit": _commit(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _jsonable(value: Any) -> Any:
    """Convert NumPy scalars/arrays and paths; non-finite floats become None (valid JSON)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalar/array, torch tensor
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def record(system: Any, ctx: RunContext, result: Result, seconds: float) -> dict[str, Any]:
    """The full JSON record for ``result`` in the one schema (keys :data:`SCHEMA_KEYS`)."""
    rec = {
        "system": system.name,
        "paper": system.paper,
        "claim": system.claim,
        "quick": ctx.quick,
        "seed": ctx.seed,
        "data": result.data,
        "results": result.results,
        "summary": result.summary,
        "environment": environment(),
        "seconds": round(seconds, 3),
    }
    if ctx.command:
        rec["command"] = ctx.command
    if result.notes:
        rec["notes"] = list(result.notes)
    return _jsonable(rec)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temp file in the same folder, then rename.

    A reader sees the old file or the new one, never half of one. The file gets the
    permissions a plain ``open`` would give it (0666 less the umask), not the temp file's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fmt(value: Any) -> str:
    """A table cell: 4 significant digits for floats, '-' for missing, ``[lo, hi]`` for an
    interval (see :mod:`paperlab.core.stats`)."""
    if value is None:
        return "-"
    if isinstance(value, Mapping) and {"lo", "hi"} <= set(value):
        return f"[{fmt(value['lo'])}, {fmt(value['hi'])}]"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Union of row keys in first-seen order."""
    cols: list[str] = []
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    return cols


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of dicts as a GitHub Markdown table."""
    if not rows:
        return "_(no rows)_\n"
    cols = columns(rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in cols) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(rec: Mapping[str, Any]) -> str:
    """A results record as a short Markdown page."""
    size = "quick" if rec["quick"] else "full"
    out = [
        f"# {rec['system']}: {rec['paper']}",
        "",
        f"**Claim:** {rec['claim']}",
        "",
        f"Size: {size}, seed {rec['seed']}, {rec['seconds']:.1f} s on {rec['environment']['cpu']}"
        f" ({rec['environment']['threads']} threads).",
        "",
        "## Results",
        "",
        markdown_table(rec["results"]),
        "## Summary",
        "",
        markdown_table([{"key": k, "value": v} for k, v in rec["summary"].items()]),
    ]
    if rec.get("notes"):
        out += ["## Notes", ""] + [f"- {n}" for n in rec["notes"]] + [""]
    return "\n".join(out)


def write(rec: Mapping[str, Any], out_dir: str | os.PathLike[str], stem: str) -> Path:
    """Write ``<out_dir>/<stem>.json`` and ``.md`` atomically; return the JSON path."""
    out_dir = Path(out_dir)
    path = atomic_write_text(out_dir / f"{stem}.json", json.dumps(rec, indent=2) + "\n")
    atomic_write_text(out_dir / f"{stem}.md", markdown(rec))
    return path
