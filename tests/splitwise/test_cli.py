"""``paperlab splitwise simulate`` and ``provision`` on profiles and traces the tests write."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from paperlab import cli
from paperlab.splitwise import (
    BLOOM_176B,
    INFINIBAND,
    PerfDatabase,
    SearchSpace,
    baseline_design,
    max_rate,
    poisson_trace,
    read_reference_csv,
    splitwise_design,
)

# linear iteration times in ms (prompt: a + b * tokens, decode: c + d * decodes), near the
# staged BLOOM-176B profile's
PROFILE = {"a100-80gb": (40.0, 0.25, 47.0, 0.001), "h100-80gb": (25.0, 0.12, 30.0, 0.001),
           "h100-80gb-pcap": (32.5, 0.156, 30.0, 0.001)}
HEADER = "request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size," \
         "token_size\n"


def write_profile(path: Path, hardware: tuple[str, ...] = tuple(PROFILE)) -> Path:
    lines = ["model,hardware,tensor_parallel,prompt_size,batch_size,prompt_time,token_time"]
    for hw in hardware:
        a, b, c, d = PROFILE[hw]
        lines += [f"bloom-176b,{hw},8,{x},1,{a + b * x},{c + d * x}"
                  for x in (1, 128, 512, 2048, 8192)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_trace(path: Path, rows: list[tuple[float, int, int]]) -> Path:
    path.write_text(HEADER + "".join(f"{i},2,0,{t},1,{p},{o}\n"
                                     for i, (t, p, o) in enumerate(rows)))
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    return write_profile(tmp_path / "perf.csv")


def test_simulate_writes_requests_and_summary(tmp_path, profile, capsys):
    # three requests far apart: each runs alone, so its latencies follow from the profile
    trace = write_trace(tmp_path / "t.csv", [(0.0, 1000, 4), (30.0, 2000, 10), (60.0, 500, 2)])
    out = tmp_path / "sim"
    assert cli.main(["splitwise", "simulate", "--trace", str(trace), "--perf-model",
                     str(profile), "--design", "Baseline-H100:1", "--design", "splitwise-ha:1:1",
                     "--design", "2xH100+1xH100cap", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "t: 3 requests over 60.0 s" in printed
    for label in ("Baseline-H100 (1)", "Splitwise-HA (1P/1T)", "Splitwise-HHcap (2P/1T)"):
        assert f"| {label} |" in printed
    rows = read_rows(out / "requests.csv")
    assert len(rows) == 9 and {r["design"] for r in rows} == {
        "Baseline-H100 (1)", "Splitwise-HA (1P/1T)", "Splitwise-HHcap (2P/1T)"}
    a, b = PROFILE["h100-80gb"][:2]  # every design's prompts run on an H100
    decodes_on = {"Baseline-H100 (1)": "h100-80gb", "Splitwise-HA (1P/1T)": "a100-80gb",
                  "Splitwise-HHcap (2P/1T)": "h100-80gb-pcap"}
    kv = BLOOM_176B.kv_bytes_per_token / INFINIBAND.bandwidth
    for r in rows:
        p, o = int(r["prompt_tokens"]), int(r["output_tokens"])
        assert float(r["ttft_s"]) == pytest.approx((a + b * p) / 1000, rel=1e-6)
        split = not r["design"].startswith("Baseline")
        assert float(r["kv_transfer_s"]) == pytest.approx(kv * p if split else 0.0, rel=1e-6)
        c, d = PROFILE[decodes_on[r["design"]]][2:]
        decode = float(r["e2e_s"]) - float(r["ttft_s"]) - float(r["kv_transfer_s"])
        assert decode == pytest.approx((o - 1) * (c + d) / 1000, rel=1e-6)
    summary = {r["design"]: r for r in read_rows(out / "summary.csv")}
    h100 = summary["Baseline-H100 (1)"]
    assert (h100["power_kw"], h100["cost"], h100["completed"]) == ("10.2", "4.76", "3")
    assert h100["slo_met"] == "True" and h100["slos_met"] == "9/9"  # H100 alone beats A100 alone


def test_simulate_synthetic_trace_and_json(tmp_path, profile, capsys):
    args = ["splitwise", "simulate", "--rate", "4", "--duration", "10", "--sizes", "300x6",
            "--seed", "3", "--perf-model", str(profile), "--design", "40xA100",
            "--out", str(tmp_path / "o"), "--json"]
    assert cli.main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    expected = len(poisson_trace(read_reference_csv(write_trace(
        tmp_path / "one.csv", [(0.0, 300, 6)])), 4.0, 10.0, seed=3))
    assert summary["trace"]["requests"] == expected > 20
    row = summary["designs"][0]
    assert row["design"] == "Baseline-A100 (40)" and row["completed"] == expected
    assert row["power_kw"] == pytest.approx(40 * 24.8 * 10.2 / 44, abs=0.01)
    rows = read_rows(tmp_path / "o" / "requests.csv")
    assert {(r["prompt_tokens"], r["output_tokens"]) for r in rows} == {("300", "6")}
    # sizes resampled from a trace file of the user's
    sizes = write_trace(tmp_path / "sizes.csv", [(0.0, 111, 3), (1.0, 222, 4)])
    args[args.index("300x6")] = str(sizes)
    assert cli.main(args) == 0
    capsys.readouterr()
    rows = read_rows(tmp_path / "o" / "requests.csv")
    assert {r["prompt_tokens"] for r in rows} == {"111", "222"}


def small_trace(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_trace(tmp_path / "sizes.csv", [
        (float(i), int(p), int(o)) for i, (p, o) in
        enumerate(zip(rng.integers(100, 2000, 30), rng.integers(2, 30, 30), strict=True))])


def test_provision_searches_designs_and_plots_pareto(tmp_path, profile, capsys):
    trace = small_trace(tmp_path)
    base = ["splitwise", "provision", "--trace", str(trace), "--perf-model", str(profile),
            "--power-h100", "2", "--rates", "1:30:1", "--duration", "10", "--chunk-size", "0"]
    assert cli.main([*base, "--out", str(tmp_path / "p1")]) == 0
    printed = capsys.readouterr().out
    assert "budget 20.4 kW (2 DGX-H100s of power)" in printed
    designs = {r["design"]: r for r in read_rows(tmp_path / "p1" / "designs.csv")}
    assert set(designs) == {"Baseline-A100 (3)", "Baseline-H100 (2)", "Splitwise-AA (1P/2T)",
                            "Splitwise-AA (2P/1T)", "Splitwise-HH (1P/1T)",
                            "Splitwise-HA (1P/1T)", "Splitwise-HHcap (1P/1T)"}
    assert (tmp_path / "p1" / "pareto.png").stat().st_size > 0
    db = PerfDatabase.from_csv(profile)
    space = SearchSpace(rates=tuple(float(r) for r in range(1, 31)), duration_s=10.0, seed=0)
    source = read_reference_csv(trace)
    for design in (baseline_design("H100", 2), splitwise_design("HA", 1, 1)):
        rate, _ = max_rate(design, source, db, space)  # what the library's search finds
        assert float(designs[design.label]["max_rate_rps"]) == rate > 0
    points = [(float(r["cost"]), float(r["max_rate_rps"]), r["pareto"] == "True")
              for r in designs.values()]
    front = [(c, m) for c, m, on in points if on]
    assert front
    for c, m, on in points:  # the front: not beaten; everything else: matched by the front
        beaten = any(c2 <= c and m2 > m for c2, m2, _ in points)
        assert not beaten if on else any(c2 <= c and m2 >= m for c2, m2 in front) or m == 0
    # the same search on two worker processes, as JSON
    assert cli.main([*base, "--workers", "2", "--out", str(tmp_path / "p2"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {r["design"]: str(r["max_rate_rps"]) for r in summary["designs"]} == {
        k: str(float(r["max_rate_rps"])) for k, r in designs.items()}
    assert len(summary["best"]) == 6 and summary["power_kw"] == pytest.approx(20.4)


@pytest.mark.parametrize("rows, message", [
    ("0,2,0,1,1,4096,32\n1,2,0,abc,1,10,3\n", "column arrival_timestamp is not a number: "
     "'abc' (line 3, column 4)"),
    ("0,2,0,1,1,4096,32\n\n1,2,0,3,1,-5,8\n", "prompt size must be a positive number of tokens "
     "(arrival=3.0, prompt=-5, output=8) (line 4, column 6)"),
    ("0,2,0,1,1,40.5,3\n", "must be a whole number of tokens, got '40.5' (line 2, column 6)"),
    ("0,2,0,5,1,10,3\n1,2,0,4,1,10,3\n", "arrivals out of order (4.0 s comes after 5.0 s) "
     "(line 3, column 4)"),
    ("0,2,0,1,1,4096\n", "has 6 fields, header has 7 (line 2)"),
])
def test_malformed_trace_rows_name_line_and_column(tmp_path, profile, rows, message, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + rows)
    assert cli.main(["splitwise", "simulate", "--trace", str(path), "--perf-model",
                     str(profile), "--design", "Baseline-H100:1"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err


def test_azure_trace_is_read_too(tmp_path, profile, capsys):
    path = tmp_path / "azure.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.98,100,4\n"
                    "2023-11-16 18:17:04.98,x,4\n")
    args = ["splitwise", "simulate", "--trace", str(path), "--perf-model", str(profile),
            "--design", "Baseline-A100:1", "--out", str(tmp_path / "o")]
    assert cli.main(args) == 2
    assert "column ContextTokens is not a number: 'x' (line 3, column 2)" in \
        capsys.readouterr().err
    path.write_text(path.read_text().replace(",x,", ",200,"))
    assert cli.main(args) == 0
    assert [r["arrival_s"] for r in read_rows(tmp_path / "o" / "requests.csv")] == ["0.0", "1.0"]


def test_bad_trace_files(tmp_path, profile, capsys):
    def run(path: Path) -> tuple[int, str]:
        code = cli.main(["splitwise", "simulate", "--trace", str(path), "--perf-model",
                         str(profile), "--design", "Baseline-H100:1"])
        return code, capsys.readouterr().err

    assert run(tmp_path / "none.csv") == (3, f"paperlab: no trace file at {tmp_path}/none.csv\n")
    code, err = run(tmp_path)
    assert code == 3 and "(a folder)" in err
    for text, message in (("", "empty file (no header row)"),
                          (HEADER, "no requests (only a header)"),
                          ("request_id,arrival_timestamp,prompt_size\n0,1,2\n",
                           "missing column(s) ['token_size']; header is")):
        (tmp_path / "t.csv").write_text(text)
        code, err = run(tmp_path / "t.csv")
        assert code == 2 and err.startswith(f"paperlab: {tmp_path}/t.csv: {message}")
    (tmp_path / "t.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    code, err = run(tmp_path / "t.csv")
    assert code == 2 and "not a UTF-8 text CSV file" in err


@pytest.mark.parametrize("design, message", [
    ("Splitwise-XY:2:2", "unknown Splitwise design 'XY'"),
    ("Baseline-B200:4", "expected Baseline-A100:N"),
    ("4xB200", "unknown machine 'B200'; expected one of A100, H100, H100cap"),
    ("Splitwise-HA:3", "takes prompt and token machine counts, Splitwise-HA:P:T"),
    ("Baseline-H100:2:2", "a baseline takes one machine count"),
    ("Baseline-H100:0", "needs at least one prompt machine"),
    ("Splitwise-HH:2:0", "needs at least one token machine"),
])
def test_unknown_or_bad_designs_exit_2(tmp_path, profile, design, message, capsys):
    trace = write_trace(tmp_path / "t.csv", [(0.0, 100, 3)])
    assert cli.main(["splitwise", "simulate", "--trace", str(trace), "--perf-model",
                     str(profile), "--design", design]) == 2
    assert message in capsys.readouterr().err


def test_bad_profiles_and_missing_data(tmp_path, capsys):
    trace = write_trace(tmp_path / "t.csv", [(0.0, 100, 3)])
    base = ["splitwise", "simulate", "--trace", str(trace), "--design", "Splitwise-HHcap:1:1"]
    assert cli.main([*base, "--perf-model", str(tmp_path / "none.csv")]) == 3
    assert "no performance profile at" in capsys.readouterr().err
    assert cli.main([*base, "--data-root", str(tmp_path / "empty")]) == 3
    assert "missing data 'splitwise/splitwise_sim/perf_model.csv'" in capsys.readouterr().err
    partial = write_profile(tmp_path / "p.csv", ("a100-80gb", "h100-80gb"))
    assert cli.main([*base, "--perf-model", str(partial)]) == 2
    assert "no profile of bloom-176b on h100-80gb-pcap at tensor parallel 8 (needed by " \
           "Splitwise-HHcap (1P/1T))" in capsys.readouterr().err
    (tmp_path / "cols.csv").write_text("model,hardware\nbloom-176b,a100-80gb\n")
    assert cli.main([*base, "--perf-model", str(tmp_path / "cols.csv")]) == 2
    assert "missing column(s)" in capsys.readouterr().err
    assert cli.main(["splitwise", "simulate", "--rate", "1", "--sizes", "conv", "--design",
                     "Baseline-H100:1", "--perf-model", str(write_profile(tmp_path / "ok.csv")),
                     "--data-root", str(tmp_path / "empty")]) == 3
    assert "AzureLLMInferenceTrace_conv.csv" in capsys.readouterr().err


def test_provision_bad_input(tmp_path, profile, capsys):
    trace = small_trace(tmp_path)
    base = ["splitwise", "provision", "--trace", str(trace), "--perf-model", str(profile)]
    assert cli.main([*base, "--power-kw", "8"]) == 2
    assert "less than one DGX-H100 (10.2 kW)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main([*base, "--power-kw", "20", "--rates", "5:1:1"])
    assert exc.value.code == 2 and "needs 0 < START <= STOP" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main([*base, "--power-kw", "-3"])
    assert exc.value.code == 2 and "invalid positive float value: '-3'" in \
        capsys.readouterr().err
    if importlib.util.find_spec("ray") is None:
        assert cli.main([*base, "--power-kw", "20", "--ray-address", "auto"]) == 2
        assert "--ray-address needs ray" in capsys.readouterr().err
    # a request whose KV cache fits no machine fails every job: said as bad input
    huge = write_trace(tmp_path / "huge.csv", [(0.0, 200_000, 4)])
    assert cli.main(["splitwise", "provision", "--trace", str(huge), "--perf-model",
                     str(profile), "--power-h100", "1", "--rates", "1:2:1"]) == 2
    assert "needs 802.8 GB of KV cache" in capsys.readouterr().err


def test_help_shows_examples(capsys):
    for verb in ("simulate", "provision"):
        with pytest.raises(SystemExit):
            cli.main(["splitwise", verb, "--help"])
        assert f"example:\n  paperlab splitwise {verb}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["splitwise", "simulate", "--trace", "x.csv"])  # no --design
    assert "--design" in capsys.readouterr().err
