"""REPORT.md / REPORT.html / the README table, from claim data (and in a real browser)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from paperlab import cli
from paperlab.core import plots, report
from paperlab.core.claims import Claim, Threshold, value
from paperlab.core.registry import System, register
from paperlab.core.results import Result, RunContext

CLAIMS = (
    Claim("gain", "ours beats the baseline by 1", "+1.0",
          Threshold(value("gain"), paper=1.0, tolerance=0.3, null=0.0)),
    Claim("speed", "ours is 3x faster | really", "3x",
          Threshold(value("speedup", "x"), paper=3.0, tolerance=0.5, null=1.0)),
    Claim("scale", "holds at the paper's size", "yes",
          Threshold(value("big_gain"), paper=1.0, tolerance=0.3, null=0.0), quick=False),
)


def run(ctx: RunContext) -> Result:
    """A toy with claims: gain 1.0 (reproduced at full size), no ``speedup`` key, one plot."""
    fig, ax = plots.figure()
    ax.plot([0, 1], [0, 1])
    plots.save(fig, ctx.plot_path("line"))
    return Result(results=[{"method": "ours", "gain": 1.0}],
                  summary={"gain": 1.0, "big_gain": 1.1, "other_key": 7})


def fail(ctx: RunContext) -> Result:
    raise RuntimeError("boom")


register(System("toy_claims", "Toy claims paper", "ours wins", run=f"{__name__}:run",
                claims=CLAIMS))
register(System("toy_claims_broken", "Broken claims paper", "fails", run=f"{__name__}:fail",
                claims=CLAIMS[:1]))


def reproduce(out: Path, *extra: str) -> int:
    return cli.main(["reproduce", "toy_claims", "toy_claims_broken", "--out", str(out), *extra])


def verdicts(outcomes):
    return {(o.system, j.claim.id): j.verdict.value for o in outcomes for j in o.judgements}


def test_reproduce_writes_verdicts_and_prints_the_table(tmp_path, capsys):
    assert reproduce(tmp_path) == cli.EXIT_FAILED  # the broken one fails; the report is written
    out = capsys.readouterr().out
    row = ("| toy_claims | ours beats the baseline by 1 | +1.0 | 1 (full, seed 0) | reproduced "
           "(no interval: one run, no paired test) |")
    assert row in out
    md = (tmp_path / "REPORT.md").read_text()
    assert row in md and "95%, two-sided" in md
    assert "ours is 3x faster \\| really" in md  # a '|' in a claim does not break the table
    assert "not measured (no speedup in the summary)" in md
    assert "not measured (run failed: RuntimeError: boom)" in md
    assert "![toy_claims_line](toy_claims_line.png)" in md
    assert "other_key" not in md  # not a claim: it stays in toy_claims.md
    assert "FAILED: RuntimeError: boom" in md and "## Run times" in md
    assert (tmp_path / "REPORT.html").exists()


def test_quick_run_never_claims_more_than_direction(tmp_path):
    reproduce(tmp_path, "--quick")
    (o,) = report.load_outcomes(tmp_path)  # the broken system wrote no JSON
    assert verdicts([o]) == {("toy_claims", "gain"): "direction",
                             ("toy_claims", "speed"): "not measured",
                             ("toy_claims", "scale"): "not measured"}
    md = (tmp_path / "REPORT.md").read_text()
    assert "not measured (not measured at the quick size)" in md
    assert "(quick, seed 0)" in md


def test_html_is_self_contained_with_every_claim_and_image(tmp_path):
    reproduce(tmp_path)
    page = (tmp_path / "REPORT.html").read_text()
    assert page.count('class="claim ') == 4  # three claims + the broken system's one
    assert 'data-claim="speed"' in page and 'data-verdict="not measured"' in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(https?:|//|file:)', page)  # nothing fetched from outside
    assert "ours is 3x faster | really" in page and "<script>" in page


def test_load_outcomes_skips_bench_and_malformed_records(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger=report.__name__)
    reproduce(tmp_path)
    (tmp_path / "toy_claims.bench.json").write_text(json.dumps({"system": "toy_claims"}))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    outcomes = report.load_outcomes(tmp_path)
    assert [o.system for o in outcomes] == ["toy_claims"]  # the failed run wrote no JSON
    assert "broken.json" in caplog.text and "list.json" in caplog.text
    assert verdicts(outcomes)[("toy_claims", "gain")] == "reproduced"


def test_a_summary_without_the_key_is_not_measured(tmp_path):
    reproduce(tmp_path)
    path = tmp_path / "toy_claims.json"
    rec = json.loads(path.read_text())
    rec["summary"] = {"gain": None}
    path.write_text(json.dumps(rec))
    assert set(verdicts(report.load_outcomes(tmp_path)).values()) == {"not measured"}


def test_a_systems_parts_are_judged_claim_by_claim(tmp_path):
    """``toy_claims.json`` measured gain only, ``toy_claims.speed.json`` speedup only: one
    outcome, each claim judged from the part that measured it, the times summed."""
    reproduce(tmp_path)
    path = tmp_path / "toy_claims.json"
    rec = json.loads(path.read_text())
    rec["summary"] = {"gain": 1.0}
    rec["seconds"] = 10.0
    path.write_text(json.dumps(rec))
    part = dict(rec, summary={"speedup": 3.1}, seconds=5.0, command="paperlab run toy --speed")
    (tmp_path / "toy_claims.speed.json").write_text(json.dumps(part))
    (o,) = report.load_outcomes(tmp_path)
    got = verdicts([o])
    assert got[("toy_claims", "gain")] == "reproduced"
    assert got[("toy_claims", "speed")] == "reproduced"
    assert got[("toy_claims", "scale")] == "not measured"
    assert o.seconds == 15.0 and "paperlab run toy --speed" in o.command
    # a part that measured nothing leaves the base record's verdicts as they were
    (tmp_path / "toy_claims.speed.json").write_text(json.dumps(dict(part, summary={})))
    assert verdicts(report.load_outcomes(tmp_path))[("toy_claims", "speed")] == "not measured"
    # a record whose name is not its system's (or a part of it) is not a part
    (tmp_path / "other.speed.json").write_text(json.dumps(part))
    assert [o.system for o in report.load_outcomes(tmp_path)] == ["toy_claims"]


def test_plots_older_than_the_run_are_left_out(tmp_path):
    reproduce(tmp_path)
    old = tmp_path / "toy_claims_bench_old.png"
    shutil.copy(tmp_path / "toy_claims_line.png", old)
    os.utime(old, (1, 1))
    (o,) = report.load_outcomes(tmp_path)
    assert [p.name for p in o.plots] == ["toy_claims_line.png"]


README = """# x

text
<!-- paperlab:claims:begin -->
| old | table |
<!-- paperlab:claims:end -->
after
"""


FULL_README = README + f"""
{report.FULL_BEGIN}
| old | full |
{report.FULL_END}
end
"""


def test_readme_table_between_markers(tmp_path):
    reproduce(tmp_path, "--quick")
    readme = tmp_path / "README.md"
    readme.write_text(FULL_README)
    assert report.main(["--results", str(tmp_path), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "| old | table |" not in text and text.startswith("# x\n\ntext\n")
    assert "<!-- paperlab:claims:end -->\nafter\n" in text
    assert "| old | full |" in text  # a quick run leaves the full-size table alone
    assert report.claims_table(report.load_outcomes(tmp_path)) in text
    readme.write_text(FULL_README)
    assert cli.main(["report", "--out", str(tmp_path), "--readme", str(readme)]) == 0
    assert readme.read_text() == text  # `paperlab report` is the same command
    again = report.replace_between_markers(text, report.claims_table(report.load_outcomes(
        tmp_path)))
    assert again == text  # idempotent


def test_full_size_records_write_the_full_table_with_reasons_and_commands(tmp_path):
    full = tmp_path / "full"
    reproduce(full)  # toy_claims finishes (full size), toy_claims_broken writes no record
    (full / report.NOT_RUN_FILE).write_text(json.dumps({"toy_claims_broken": "takes a week"}))
    readme = tmp_path / "README.md"
    readme.write_text(FULL_README)
    assert cli.main(["report", "--out", str(full), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "| old | table |" in text and "| old | full |" not in text  # quick table untouched
    assert "| toy_claims_broken | (all) | - | - | not run at full size: takes a week |" in text
    assert "`paperlab run toy_claims --seed 0`" in text  # the command that made the record
    assert "| toy_claims | ours beats the baseline by 1 |" in text
    (full / report.NOT_RUN_FILE).write_text("[1]")
    assert cli.main(["report", "--out", str(full), "--readme", str(readme)]) == 1


def test_quick_and_full_records_are_not_mixed(tmp_path):
    reproduce(tmp_path)
    rec = json.loads((tmp_path / "toy_claims.json").read_text())
    rec.update(system="toy_claims_broken", quick=True)
    (tmp_path / "toy_claims_broken.json").write_text(json.dumps(rec))
    readme = tmp_path / "README.md"
    readme.write_text(FULL_README)
    with pytest.raises(ValueError, match="mix quick and full"):
        report.rewrite_readme(readme, report.load_outcomes(tmp_path))


@pytest.mark.parametrize("bad", ["no markers", f"{report.END}\n{report.BEGIN}",
                                 f"{report.BEGIN}\n{report.BEGIN}\n{report.END}"])
def test_markers_must_be_there_once_and_in_order(bad):
    with pytest.raises(ValueError, match="expected one"):
        report.replace_between_markers(bad, "table")


def test_report_command_without_records_fails(tmp_path, capsys):
    assert report.main(["--results", str(tmp_path)]) == 1
    assert "no run records" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# REPORT.html in a real headless browser (Debian's `chromium`; skipped where it is absent)


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.claims: list[str] = []
        self.images: list[str | None] = []
        self.checked: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-claim" in a:
            self.claims.append(a["data-claim"])
        elif tag == "img":
            self.images.append(a.get("data-decoded"))
        elif tag == "body":
            self.checked = a.get("data-images-checked")


@pytest.mark.skipif(_chromium() is None, reason="no chromium (apt-get install chromium)")
def test_html_report_renders_in_headless_chromium(tmp_path):
    reproduce(tmp_path / "out")
    page = tmp_path / "out" / "REPORT.html"
    # Offline: the page has to stand alone, so copy it away from its plots first.
    alone = tmp_path / "alone" / "REPORT.html"
    alone.parent.mkdir()
    shutil.copy(page, alone)
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", alone.as_uri()],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Dom()
    dom.feed(proc.stdout)
    assert dom.claims == ["gain", "speed", "scale", "gain"]
    assert dom.images and dom.images == ["yes"] * len(dom.images)
    assert dom.checked == str(len(dom.images))
