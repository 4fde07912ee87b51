"""REPORT.md, REPORT.html and the README's claims table, all from the same claim data.

Every page here is built from run records (the ``<system>.json`` files of
:mod:`paperlab.core.results`) judged by each system's declared claims
(:mod:`paperlab.core.claims`), so the README, the report and the JSON cannot disagree.

Command line (rewrites the reports from a results folder, and optionally the README's table:
quick records between ``<!-- paperlab:claims:begin -->`` and ``<!-- paperlab:claims:end -->``,
full-size records, such as the kept ``results/full/``, between ``<!-- paperlab:full:begin -->``
and ``<!-- paperlab:full:end -->``)::

    paperlab report [--out results/] [--readme README.md]
    python -m paperlab.core.report --results results/ [--readme README.md]   # the same
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from paperlab.core import registry
from paperlab.core.claims import Judgement, Verdict, judge
from paperlab.core.results import atomic_write_text, fmt
from paperlab.core.stats import LEVEL

log = logging.getLogger(__name__)

BEGIN = "<!-- paperlab:claims:begin -->"
END = "<!-- paperlab:claims:end -->"
# The README's full-size table: written from the kept full-size records (results/full/).
FULL_BEGIN = "<!-- paperlab:full:begin -->"
FULL_END = "<!-- paperlab:full:end -->"
# In a folder of full-size records: {system: why it has no full-size record}.
NOT_RUN_FILE = "NOT_RUN.json"

VERDICT_MEANING = {
    Verdict.REPRODUCED: "our figure matches the paper's within the stated tolerance",
    Verdict.DIRECTION: "same sign or ordering as the paper, different size (a quick run "
                       "never claims more, unless its size is the paper's)",
    Verdict.WITHIN_NOISE: "our figure's 95% interval (two-sided) holds the value of no effect, "
                          "so the run shows neither the paper's effect nor its absence",
    Verdict.NOT_REPRODUCED: "the paper's effect is absent or reversed in our run",
    Verdict.NOT_MEASURED: "no figure for it in this run (key missing, run failed, or not at "
                          "this size)",
}

NOISE_TEXT = (
    f"Intervals are {LEVEL:.0%}, two-sided: over seeds a Student-t interval of the mean, for "
    "two classifiers on the same test examples an exact paired interval from the discordant "
    "pairs (McNemar's), elsewhere a bootstrap over examples, graphs or timing repeats; each "
    "figure names its own. A figure whose run has no interval (one seed, no paired test) is "
    "judged on its point value and marked \"no interval\"; counted figures (FLOPs, a "
    "deterministic simulation) need none.")

# Slack (s) when deciding which plots a run wrote (see :func:`plots_of`).
_PLOT_SLACK_S = 60.0


@dataclass(frozen=True)
class Outcome:
    """One system's run as the report sees it.

    Attributes:
        system: the system's name.
        paper: its paper, one line (``"-"`` when unknown).
        quick, seed, seconds: the run's size, base seed and wall time.
        judgements: one per declared claim.
        error: the failure in one line, or ``""`` when the run finished.
        plots: the PNG files the run wrote.
        command: the command line that made the run (``""`` when not recorded).
        made: when and at which commit it ran (``""`` when not recorded).
    """

    system: str
    paper: str
    quick: bool
    seed: int | None
    seconds: float | None
    judgements: tuple[Judgement, ...]
    error: str = ""
    plots: tuple[Path, ...] = ()
    command: str = ""
    made: str = ""

    @property
    def size(self) -> str:
        return "quick" if self.quick else "full"


def _declared(name: str) -> registry.System | None:
    try:
        return registry.get(name)
    except Exception:  # the failure being reported may be this very import
        return None


def outcome(rec: Mapping[str, Any], quick: bool, out_dir: Path | None = None,
            json_path: Path | None = None) -> Outcome:
    """Judge one run: ``rec`` is a results record, or ``{"system", "ok": False, "error", ...}``.

    A failed run's claims are all not measured, with the failure as the reason.
    """
    name = str(rec["system"])
    system = _declared(name)
    claims = tuple(system.claims) if system is not None else ()
    quick = bool(rec.get("quick", quick))
    ok = rec.get("ok", True)
    if ok:
        judgements = judge(claims, rec.get("summary"), quick)
    else:
        judgements = [
            Judgement(j.claim, Verdict.NOT_MEASURED, "-", f"run failed: {rec.get('error')}",
                      j.size)
            for j in judge(claims, None, quick)
        ]
    plots = plots_of(name, out_dir, json_path, rec.get("seconds")) if out_dir else ()
    env = rec.get("environment") if isinstance(rec.get("environment"), Mapping) else {}
    made = ", ".join(str(env[k]) for k in ("date", "commit") if env.get(k))
    return Outcome(
        system=name,
        paper=str(rec.get("paper") or (system.paper if system is not None else "-")),
        quick=quick,
        seed=rec.get("seed"),
        seconds=rec.get("seconds"),
        judgements=tuple(judgements),
        error="" if ok else str(rec.get("error") or "failed"),
        plots=plots,
        command=str(rec.get("command") or ""),
        made=made,
    )


def plots_of(name: str, out_dir: Path, json_path: Path | None = None,
             seconds: float | None = None) -> tuple[Path, ...]:
    """``<out_dir>/<name>_*.png`` that this run wrote.

    With the run's JSON and wall time, a plot older than the run's start (minus a minute of
    slack) is left out: it came from another command (e.g. ``bench``) into the same folder.
    """
    found = sorted(out_dir.glob(f"{name}_*.png"))
    if json_path is None or seconds is None or not json_path.exists():
        return tuple(found)
    start = json_path.stat().st_mtime - float(seconds) - _PLOT_SLACK_S
    return tuple(p for p in found if p.stat().st_mtime >= start)


def load_outcomes(results_dir: str | Path) -> list[Outcome]:
    """Every ``<system>.json`` run record in ``results_dir``, judged, in the README's order.

    A system's results may come in parts, ``<system>.json`` and ``<system>.<part>.json`` (e.g.
    ``pitome.vision.json``: one run per part of a system whose full size does not fit one
    sitting); each claim is then judged from the part that measured it (see
    :func:`merge_parts`). Bench records (``*.bench.json``) and other JSON files (a system's own
    data, such as ``hierarchy_sweep.json``) are skipped; an unreadable one with a log warning.
    """
    results_dir = Path(results_dir)
    found: dict[str, list[Outcome]] = {}
    for path in sorted(results_dir.glob("*.json")):
        if path.name.endswith(".bench.json"):
            continue
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("skipping %s: %s", path, exc)
            continue
        if not (isinstance(rec, dict) and isinstance(rec.get("system"), str)
                and isinstance(rec.get("summary"), dict)
                and path.stem.split(".", 1)[0] == rec["system"]):
            log.debug("skipping %s: not a run record", path)  # e.g. a system's own data
            continue
        found.setdefault(rec["system"], []).append(
            outcome(rec, bool(rec.get("quick")), results_dir, path))
    order = {n: i for i, n in enumerate(registry.names())}
    merged = [merge_parts(parts) for parts in found.values()]
    return sorted(merged, key=lambda o: (order.get(o.system, len(order)), o.system))


def merge_parts(parts: Sequence[Outcome]) -> Outcome:
    """One outcome from the runs of one system's parts: each claim judged by the first part
    (in file-name order) that measured it, the wall times summed, the commands, dates, errors
    and plots of all parts together; the seed kept where every part used the same one."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    judgements = tuple(
        next((j for j in column if j.verdict is not Verdict.NOT_MEASURED), column[0])
        for column in zip(*(p.judgements for p in parts), strict=True))
    seeds = {p.seed for p in parts}
    seconds = [p.seconds for p in parts if p.seconds is not None]

    def joined(values: Sequence[str]) -> str:
        return "; ".join(dict.fromkeys(v for v in values if v))

    return replace(
        first, quick=any(p.quick for p in parts),
        seed=first.seed if len(seeds) == 1 else None,
        seconds=sum(seconds) if seconds else None, judgements=judgements,
        error=joined([p.error for p in parts]),
        plots=tuple(sorted({plot for p in parts for plot in p.plots})),
        command=joined([p.command for p in parts]), made=joined([p.made for p in parts]))


# ---------------------------------------------------------------------------------------------
# Rows shared by every rendering


def _verdict_text(j: Judgement) -> str:
    return f"{j.verdict.value} ({j.reason})" if j.reason else j.verdict.value


def _ours(o: Outcome, j: Judgement) -> str:
    """Our figure with the size and seed it came from (``"-"`` when not measured)."""
    return j.ours if j.verdict is Verdict.NOT_MEASURED else f"{j.ours} ({o.size}, seed {o.seed})"


def claim_rows(outcomes: Sequence[Outcome]) -> list[dict[str, str]]:
    """One row per claim: system, claim, paper, ours (with size and seed), verdict."""
    return [{"system": o.system, "claim": j.claim.text, "paper": j.claim.paper,
             "ours": _ours(o, j), "verdict": _verdict_text(j)}
            for o in outcomes for j in o.judgements]


def tally(outcomes: Sequence[Outcome]) -> dict[Verdict, int]:
    """How many claims got each verdict."""
    counts = dict.fromkeys(Verdict, 0)
    for o in outcomes:
        for j in o.judgements:
            counts[j.verdict] += 1
    return counts


def tally_text(outcomes: Sequence[Outcome]) -> str:
    """``"12 claims: 3 reproduced, ..."``."""
    counts = tally(outcomes)
    total = sum(counts.values())
    return f"{total} claims: " + ", ".join(f"{n} {v.value}" for v, n in counts.items())


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(rows: Sequence[Mapping[str, Any]], cols: Sequence[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_md_cell(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def claims_table(outcomes: Sequence[Outcome]) -> str:
    """The verdict table in Markdown (the README's and REPORT.md's first table)."""
    rows = claim_rows(outcomes)
    if not rows:
        return "_(no claims judged)_\n"
    return _md_table(rows, ("system", "claim", "paper", "ours", "verdict"))


def _times_rows(outcomes: Sequence[Outcome]) -> list[dict[str, str]]:
    return [{"system": o.system, "size": o.size, "seed": fmt(o.seed), "seconds": fmt(o.seconds),
             "status": f"FAILED: {o.error}" if o.error else "finished"} for o in outcomes]


def _total_seconds(outcomes: Sequence[Outcome]) -> float:
    return sum(o.seconds or 0.0 for o in outcomes)


def _title(outcomes: Sequence[Outcome]) -> str:
    sizes = sorted({o.size for o in outcomes}) or ["no"]
    return f"paperlab reproduction report ({' and '.join(sizes)} size)"


# ---------------------------------------------------------------------------------------------
# REPORT.md


def markdown_report(outcomes: Sequence[Outcome], out_dir: Path | None = None) -> str:
    """REPORT.md: the verdict table, then per system its rules and plots, then run times.

    Plot links are relative to ``out_dir`` (the report's own folder).
    """
    out = [f"# {_title(outcomes)}", "", tally_text(outcomes) + ".", "",
           "Verdicts: " + "; ".join(f"**{v.value}**: {m}" for v, m in VERDICT_MEANING.items())
           + ".", "", NOISE_TEXT, "", "## Claims", "", claims_table(outcomes)]
    for o in outcomes:
        out += [f"## {o.system}", "", f"*{o.paper}*", ""]
        if o.error:
            out += [f"**The run failed:** {o.error}", ""]
        for j in o.judgements:
            how = f" ({j.claim.how})" if j.claim.how else ""
            out.append(f"- **{j.claim.text}**: {_verdict_text(j)}; paper {j.claim.paper}, "
                       f"ours {j.ours}; keys `{'`, `'.join(j.claim.keys)}`{how}.")
        if not o.judgements:
            out.append("- (no claims declared)")
        out += ["", f"Other summary keys: [{o.system}.md]({o.system}.md).", ""]
        for p in o.plots:
            rel = p.relative_to(out_dir) if out_dir and p.is_relative_to(out_dir) else p
            out += [f"![{p.stem}]({rel.as_posix()})", ""]
    out += ["## Run times", "",
            _md_table(_times_rows(outcomes), ("system", "size", "seed", "seconds", "status")),
            f"Total: {_total_seconds(outcomes):.0f} s.", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# REPORT.html (self-contained: styles, and plots as base64 data)

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.4; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left;
         vertical-align: top; }
th { background: #f3f3f3; }
.v { font-weight: 600; white-space: nowrap; }
.reproduced { background: #d8f0d8; }
.direction { background: #fbefc9; }
.not-reproduced { background: #f6d2d2; }
.within-noise { background: #dde6f6; }
.not-measured { background: #e8e8e8; color: #555; }
figure { margin: 1rem 0; }
img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .how { color: #666; font-size: 0.85rem; }
"""

# Marks every image with whether it decoded (a test reads these in a headless browser).
_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = document.images;
  for (var i = 0; i < imgs.length; i++) {
    var ok = imgs[i].complete && imgs[i].naturalWidth > 0;
    imgs[i].setAttribute("data-decoded", ok ? "yes" : "no");
  }
  document.body.setAttribute("data-images-checked", String(imgs.length));
});
"""


def _css_class(v: Verdict) -> str:
    return v.value.replace(" ", "-")


def _img_tag(path: Path) -> str:
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as exc:
        log.warning("plot %s left out of REPORT.html: %s", path, exc)
        return ""
    name = html.escape(path.name)
    return (f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
            f"<figcaption>{name}</figcaption></figure>")


def html_report(outcomes: Sequence[Outcome]) -> str:
    """REPORT.html: REPORT.md's content in one offline file, plots embedded inline."""
    e = html.escape
    head = ("<tr><th>system</th><th>claim</th><th>paper</th><th>ours</th>"
            "<th>verdict</th></tr>")
    rows = []
    for o in outcomes:
        for j in o.judgements:
            rows.append(
                f'<tr class="claim {_css_class(j.verdict)}" data-system="{e(o.system)}" '
                f'data-claim="{e(j.claim.id)}" data-verdict="{e(j.verdict.value)}">'
                f"<td>{e(o.system)}</td><td>{e(j.claim.text)}</td><td>{e(j.claim.paper)}</td>"
                f'<td>{e(_ours(o, j))}</td><td><span class="v">{e(j.verdict.value)}</span>'
                + (f'<br><span class="how">{e(j.reason)}</span>' if j.reason else "")
                + "</td></tr>")
    meaning = "".join(f"<li><b>{e(v.value)}</b>: {e(m)}</li>" for v, m in VERDICT_MEANING.items())
    meaning += f"</ul><p>{e(NOISE_TEXT)}</p><ul>"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(_title(outcomes))}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(_title(outcomes))}</h1><p>{e(tally_text(outcomes))}.</p><ul>{meaning}</ul>",
        f"<h2>Claims</h2><table>{head}{''.join(rows)}</table>",
    ]
    for o in outcomes:
        parts.append(f'<h2 id="{e(o.system)}">{e(o.system)}</h2><p><i>{e(o.paper)}</i></p>')
        if o.error:
            parts.append(f"<p><b>The run failed:</b> {e(o.error)}</p>")
        items = "".join(
            f"<li><b>{e(j.claim.text)}</b>: {e(_verdict_text(j))}; paper {e(j.claim.paper)}, "
            f"ours {e(j.ours)}. <span class=\"how\">Keys {e(', '.join(j.claim.keys))}; "
            f"{e(j.claim.how)}</span></li>" for j in o.judgements)
        parts.append(f"<ul>{items or '<li>(no claims declared)</li>'}</ul>")
        parts += [_img_tag(p) for p in o.plots]
    times = "".join(
        f"<tr><td>{e(r['system'])}</td><td>{e(r['size'])}</td><td>{e(r['seed'])}</td>"
        f"<td>{e(r['seconds'])}</td><td>{e(r['status'])}</td></tr>"
        for r in _times_rows(outcomes))
    parts += [
        "<h2>Run times</h2><table><tr><th>system</th><th>size</th><th>seed</th>"
        f"<th>seconds</th><th>status</th></tr>{times}</table>",
        f"<p>Total: {_total_seconds(outcomes):.0f} s.</p>",
        f"<script>{_SCRIPT}</script></body></html>", "",
    ]
    return "\n".join(parts)


def write_reports(outcomes: Sequence[Outcome], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``REPORT.md`` and ``REPORT.html`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    md = atomic_write_text(out_dir / "REPORT.md", markdown_report(outcomes, out_dir))
    page = atomic_write_text(out_dir / "REPORT.html", html_report(outcomes))
    return md, page


# ---------------------------------------------------------------------------------------------
# The README's table


def replace_between_markers(text: str, table: str, begin: str = BEGIN, end: str = END) -> str:
    """``text`` with what lies between the ``begin`` and ``end`` marker lines set to ``table``.

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"expected one {begin} followed by one {end}")
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    return pattern.sub(lambda _: f"{begin}\n{table.rstrip()}\n{end}", text)


def not_run_reasons(results_dir: str | Path) -> dict[str, str]:
    """``{system: reason}`` from ``results_dir/NOT_RUN.json`` (empty when there is none).

    Raises:
        ValueError: the file is not a JSON object of strings.
    """
    path = Path(results_dir) / NOT_RUN_FILE
    if not path.exists():
        return {}
    try:
        got = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not (isinstance(got, dict) and all(isinstance(v, str) for v in got.values())):
        raise ValueError(f"{path}: expected {{system: reason}} with text reasons")
    return got


def full_table(outcomes: Sequence[Outcome], reasons: Mapping[str, str]) -> str:
    """The README's full-size table: every implemented system's claims from its kept record,
    then the systems with no full-size record (with the reason), then how each was made."""
    by_name = {o.system: o for o in outcomes}
    rows = []
    for name in dict.fromkeys([*registry.names(), *by_name]):  # the README's order
        if name in by_name:
            rows += claim_rows([by_name[name]])
        elif registry.is_implemented(name):
            why = reasons.get(name, "no full-size record kept")
            rows.append({"system": name, "claim": "(all)", "paper": "-", "ours": "-",
                         "verdict": f"not run at full size: {why}"})
    table = _md_table(rows, ("system", "claim", "paper", "ours", "verdict")) if rows else ""
    made = [{"system": o.system, "command": f"`{o.command}`" if o.command else "-",
             "seconds": fmt(o.seconds), "made": o.made or "-"} for o in outcomes]
    if made:
        table += "\n" + _md_table(made, ("system", "command", "seconds", "made"))
    return table or "_(no full-size records)_\n"


def rewrite_readme(path: str | Path, outcomes: Sequence[Outcome],
                   reasons: Mapping[str, str] | None = None) -> Path:
    """Rewrite a table of the README at ``path`` from ``outcomes``.

    Quick-size records go between :data:`BEGIN` and :data:`END`; full-size records (all of
    them full) between :data:`FULL_BEGIN` and :data:`FULL_END`, with a row for each system
    that has none (``reasons`` says why).

    Raises:
        ValueError: the markers are missing, or quick and full records are mixed.
    """
    sizes = {o.quick for o in outcomes}
    if len(sizes) > 1:
        raise ValueError("the records mix quick and full sizes; keep them in separate folders")
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if sizes == {False}:
        text = replace_between_markers(text, full_table(outcomes, reasons or {}),
                                       FULL_BEGIN, FULL_END)
    else:
        text = replace_between_markers(text, claims_table(outcomes))
    return atomic_write_text(path, text)


def regenerate(results_dir: str | Path, readme: str | Path | None = None) -> int:
    """Write REPORT.md/.html from the run records in ``results_dir`` (and ``readme``'s table).

    Returns a process exit code: 0, or 1 with a one-line reason on stderr (no run records,
    an unreadable README or its markers missing).
    """
    outcomes = load_outcomes(results_dir)
    if not outcomes:
        print(f"no run records (<system>.json) in {results_dir}", file=sys.stderr)
        return 1
    for path in write_reports(outcomes, results_dir):
        print(f"wrote {path}")
    if readme is not None:
        try:
            print(f"wrote {rewrite_readme(readme, outcomes, not_run_reasons(results_dir))}")
        except (OSError, ValueError) as exc:
            print(f"{readme}: {exc}", file=sys.stderr)
            return 1
    print(tally_text(outcomes))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m paperlab.core.report --results DIR [--readme README.md]``."""
    parser = argparse.ArgumentParser(
        prog="python -m paperlab.core.report",
        description="Write DIR/REPORT.md and DIR/REPORT.html from the run records in DIR, and "
        f"optionally the claims table of a README between {BEGIN} and {END}.")
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="folder of <system>.json run records (default results/)")
    parser.add_argument("--readme", type=Path, default=None,
                        help="README to rewrite between the markers")
    args = parser.parse_args(argv)
    return regenerate(args.results, args.readme)


if __name__ == "__main__":
    sys.exit(main())
