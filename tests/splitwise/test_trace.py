"""Trace reading, generation and validation."""

from __future__ import annotations

import numpy as np
import pytest

from paperlab.splitwise import Trace, TraceError, poisson_trace, read_azure_csv, read_reference_csv

HEADER = "request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size," \
         "token_size\n"


def _write(tmp_path, text, name="t.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_reads_reference_format(tmp_path):
    p = _write(tmp_path, HEADER + "0,2,0,1,1,4096,32\n1,2,0,3.5,1,2048,8\n")
    t = read_reference_csv(p)
    assert t.arrival_s.tolist() == [1.0, 3.5]
    assert t.prompt_tokens.tolist() == [4096, 2048]
    assert t.output_tokens.tolist() == [32, 8]


@pytest.mark.parametrize("rows,needle", [
    ("0,2,0,1,1,4096,32\n1,2,0,3,1,-5,8\n", "row 2: prompt size must be a positive"),
    ("0,2,0,1,1,4096,0\n", "row 1: output size must be a positive"),
    ("0,2,0,1,1,4096,3\n1,2,0,5,1,10,3\n2,2,0,4,1,10,3\n", "row 3: arrivals out of order"),
    ("0,2,0,1,1,4096,3\n1,2,0,abc,1,10,3\n", "row 2: column arrival_timestamp is not a number"),
    ("0,2,0,1,1,40.5,3\n", "row 1: column prompt_size must be a whole number"),
    ("0,2,0,1,1,4096\n", "row 1: has 6 fields"),
    ("0,2,0,nan,1,4096,3\n", "row 1: arrival time is not a finite number"),
])
def test_malformed_rows_name_the_row(tmp_path, rows, needle):
    with pytest.raises(TraceError, match=needle):
        read_reference_csv(_write(tmp_path, HEADER + rows))


def test_missing_column_and_empty(tmp_path):
    with pytest.raises(TraceError, match=r"missing column\(s\) \['token_size'\]"):
        read_reference_csv(_write(tmp_path, "request_id,arrival_timestamp,prompt_size\n0,1,2\n"))
    with pytest.raises(TraceError, match="no requests"):
        read_reference_csv(_write(tmp_path, HEADER))
    with pytest.raises(TraceError, match="empty file"):
        read_reference_csv(_write(tmp_path, ""))


def test_azure_format(tmp_path):
    p = _write(tmp_path, "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                         "2023-11-16 18:17:03.9799600,4808,10\n"
                         "2023-11-16 18:17:04.0319600,3180,8\n")
    t = read_azure_csv(p)
    np.testing.assert_allclose(t.arrival_s, [0.0, 0.052])
    assert t.prompt_tokens.tolist() == [4808, 3180]
    bad = _write(tmp_path, "TIMESTAMP,ContextTokens,GeneratedTokens\nnot-a-date,1,1\n", "b.csv")
    with pytest.raises(TraceError, match="row 1: TIMESTAMP"):
        read_azure_csv(bad)


def test_trace_constructor_validates():
    with pytest.raises(TraceError, match="row 2: arrivals out of order"):
        Trace(np.array([2.0, 1.0]), np.array([1, 1]), np.array([1, 1]), np.arange(2))
    with pytest.raises(TraceError, match="prompt_tokens has 1 entries"):
        Trace(np.array([2.0, 3.0]), np.array([1]), np.array([1, 1]), np.arange(2))


def test_staged_azure_statistics(azure_code):
    assert len(azure_code) == 8819
    assert round(azure_code.prompt_tokens.mean()) == 2048
    assert np.median(azure_code.output_tokens) == 13


@pytest.mark.parametrize("rate,max_requests", [(30, 20_000), (10, 1_000_000)])
def test_poisson_trace_reproduces_reference_generator(data_root, azure_code, rate, max_requests):
    """Same numpy stream as the reference's generate_trace after numpy.random.seed(0)."""
    ours = poisson_trace(azure_code, rate, 120, seed=0, max_requests=max_requests)
    ref = read_reference_csv(data_root / "generated_traces" / f"rr_code_{rate}_2min.csv")
    assert len(ours) == len(ref)
    np.testing.assert_array_equal(ours.arrival_s, ref.arrival_s)
    np.testing.assert_array_equal(ours.prompt_tokens, ref.prompt_tokens)
    np.testing.assert_array_equal(ours.output_tokens, ref.output_tokens)


def test_poisson_rate_sizes_and_memory(azure_code):
    t = poisson_trace(azure_code, 50.0, 400.0, seed=3)
    assert abs(len(t) / 400.0 - 50.0) < 5  # ~ 20000 ± 140
    assert t.arrival_s.max() < 400.0 and np.all(np.diff(t.arrival_s) >= 0)
    assert set(t.prompt_tokens.tolist()) <= set(azure_code.prompt_tokens.tolist())
    # bytes per request of the arrays; a 1M-request trace needs ~32 MB, far under 2 GB
    per_request = sum(a.nbytes for a in (t.arrival_s, t.prompt_tokens, t.output_tokens,
                                         t.request_id)) / len(t)
    assert per_request * 1_000_000 < 100e6
    with pytest.raises(ValueError, match="rate must be a positive"):
        poisson_trace(azure_code, 0.0, 10.0)


def test_csv_roundtrip(tmp_path, azure_code):
    t = poisson_trace(azure_code, 5.0, 20.0, seed=1)
    t.to_csv(tmp_path / "x.csv")
    back = read_reference_csv(tmp_path / "x.csv")
    np.testing.assert_array_equal(back.arrival_s, t.arrival_s)
    np.testing.assert_array_equal(back.output_tokens, t.output_tokens)
