import json
import mmap
import os
import stat

import numpy as np
import pytest

from paperlab.core import data, results, seed, timing


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    results.atomic_write_text(path, '{"old": 1}')

    def boom(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        results.atomic_write_text(path, '{"new": 2}')
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_record_is_json_with_numpy_and_nan():
    class Sys:
        name, paper, claim = "s", "p", "c"

    ctx = results.RunContext(system="s", quick=True, seed=1)
    res = results.Result(results=[{"method": "m", "v": np.float32(0.5), "w": float("nan")}],
                         summary={"arr": np.arange(3)})
    rec = results.record(Sys, ctx, res, 1.23456)
    text = json.dumps(rec, allow_nan=False)
    assert json.loads(text)["results"][0] == {"method": "m", "v": 0.5, "w": None}
    assert rec["summary"]["arr"] == [0, 1, 2] and rec["seconds"] == 1.235


def test_markdown_table_columns_union():
    table = results.markdown_table([{"method": "a", "x": 1.23456}, {"method": "b", "y": True}])
    assert table.splitlines()[0] == "| method | x | y |"
    assert "| a | 1.235 | - |" in table and "| b | - | yes |" in table


def test_require_lists_every_place(monkeypatch, tmp_path):
    monkeypatch.setenv(data.ENV_DATA, str(tmp_path / "env"))
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))
    with pytest.raises(data.DataNotFoundError) as exc:
        data.require("graphs/nothing.npz", "Download it from X.")
    msg = str(exc.value)
    assert str(tmp_path / "env" / "graphs/nothing.npz") in msg
    assert str(tmp_path / "cache" / "data" / "graphs/nothing.npz") in msg
    assert "shared" in msg and "Download it from X." in msg
    assert msg.endswith(f"See {data.GETTING_THE_DATA}.")  # not in the manifest: no command


def test_require_finds_env_root_first(monkeypatch, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("x")
    monkeypatch.setenv(data.ENV_DATA, str(tmp_path))
    assert data.require("d/f.txt", "") == tmp_path / "d" / "f.txt"


def test_writable_copy_of_read_only_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))
    src = tmp_path / "ro" / "raw"
    src.mkdir(parents=True)
    (src / "a.txt").write_text("hello")
    os.chmod(src / "a.txt", stat.S_IRUSR)
    os.chmod(src, stat.S_IRUSR | stat.S_IXUSR)
    try:
        copy = data.writable_copy(tmp_path / "ro", "ro")
        (copy / "processed").mkdir()  # a library can write next to raw/
        assert (copy / "raw" / "a.txt").read_text() == "hello"
        assert data.writable_copy(tmp_path / "ro", "ro") == copy  # once
    finally:
        os.chmod(src, stat.S_IRWXU)


def test_seed_everything_repeats():
    import torch

    seed.seed_everything(5)
    a = (np.random.rand(), torch.rand(1).item())
    seed.seed_everything(5)
    assert (np.random.rand(), torch.rand(1).item()) == a
    with pytest.raises(ValueError, match="seed"):
        seed.seed_everything(-1)


def test_derive_seed_is_stable_across_processes_and_separates_keys():
    import subprocess
    import sys

    here = seed.derive_seed(3, "GCN")
    child = subprocess.run([sys.executable, "-c", "from paperlab.core.seed import derive_seed;"
                            "print(derive_seed(3, 'GCN'))"], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "random"})
    assert int(child.stdout) == here and 0 <= here < 2**31
    seeds = {seed.derive_seed(s, *k) for s in range(3) for k in [(), ("GCN",), ("SAGE",),
                                                                  ("GCN", "draws")]}
    assert len(seeds) == 12
    with pytest.raises(ValueError, match="seed"):
        seed.derive_seed(-1, "GCN")


def test_compare_and_ratios():
    calls = []
    t = timing.compare({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                       warmup=1, repeats=3)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # interleaved
    assert len(t["a"].times) == len(t["a"].cpu_times) == 3
    r = timing.ratios({"a": timing.Timing((2.0,)), "b": timing.Timing((1.0,))}, "a")
    assert r == {"a": 1.0, "b": 2.0}
    with pytest.raises(KeyError):
        timing.ratios(t, "c")


def test_compare_inner_calls_and_cpu_clock():
    import time

    calls = []
    t = timing.compare({"spin": lambda: calls.append(1), "sleep": lambda: time.sleep(0.01)},
                       warmup=2, repeats=3, inner=4)
    assert len(calls) == 2 + 3 * 4
    assert t["sleep"].median >= 0.009  # per call, not per sample of 4
    assert t["sleep"].cpu_median < t["sleep"].median / 2  # sleeping burns no CPU
    with pytest.raises(ValueError, match="inner"):
        timing.compare({"a": lambda: None}, inner=0)
    assert len(timing.measure(lambda: None, repeats=2).times) == 2


def test_peak_memory_sees_pages_touched_outside_python():
    # Fresh anonymous pages, so the rise cannot hide in memory the allocator kept resident
    # from earlier tests (a 50 MB malloc may reuse freed heap pages, and then the process
    # rightly needs no more memory than it had).
    def alloc():
        pages = mmap.mmap(-1, 50_000_000)
        x = np.frombuffer(pages, dtype=np.float64)
        x[:] = 1.0  # NumPy writes every page, Python allocates none of them
        total = float(x.sum())
        del x
        pages.close()
        return total

    value, peak = timing.peak_memory(alloc)
    assert value == 50_000_000 // 8
    assert 40_000_000 < peak < 500_000_000


def test_torch_threads_restores():
    import torch

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), seed.torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
        raise RuntimeError
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="thread count"), seed.torch_threads(0):
        pass


def test_mcnemar_counts_discordant_pairs_and_checks_input():
    from paperlab.core.stats import mcnemar

    a = np.array([1, 1, 1, 0, 0, 1], bool)
    b = np.array([1, 0, 0, 0, 1, 1], bool)
    out = mcnemar(a, b)
    assert (out["a_only"], out["b_only"]) == (2, 1)
    assert out["p"] == pytest.approx(1.0)  # 2 vs 1 discordant: exact two-sided p = 1
    many = mcnemar(np.ones(40, bool), np.zeros(40, bool))
    assert many["p"] == pytest.approx(2 * 0.5**40)
    assert mcnemar(a, a)["p"] == 1.0
    with pytest.raises(TypeError, match="boolean"):
        mcnemar(a.astype(int), b)
    with pytest.raises(ValueError, match="1-D"):
        mcnemar(a, b[:3])


def test_compare_runs_setup_untimed_before_each_sample():
    import time

    from paperlab.core import timing

    calls = []
    t = timing.compare({"a": lambda: calls.append("a"), "b": lambda: None}, warmup=1,
                       repeats=3, setup={"a": lambda: (calls.append("setup"), time.sleep(0.02))})
    assert calls == ["setup", "a"] * 4  # warm-up + 3 samples, each after its setup
    assert max(t["a"].times) < 0.015  # the 20 ms of setup were not timed
    with pytest.raises(KeyError):
        timing.compare({"a": lambda: None}, setup={"b": lambda: None})


def test_cache_key_depends_on_values_not_order_and_keeps_keys_of_fields_added_later():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        lr: float = 0.1
        steps: int = 10
        clip: float | None = None  # added later: artefacts before it were unclipped

    key = data.cache_key({"a": 1, "b": [2, 3]})
    assert key == data.cache_key({"b": [2, 3], "a": 1}) and len(key) == 16
    assert int(key, 16) >= 0 and key != data.cache_key({"a": 1, "b": [3, 2]})
    assert data.key_fields(Cfg(), {"clip": None}) == {"lr": 0.1, "steps": 10}
    assert data.key_fields(Cfg(clip=1.0), {"clip": None}) == {"lr": 0.1, "steps": 10,
                                                             "clip": 1.0}
    # the key of a config made before the field existed is the one it has now
    @dataclasses.dataclass(frozen=True)
    class Before:
        lr: float = 0.1
        steps: int = 10

    assert data.cache_key(dataclasses.asdict(Before())) == data.cache_key(
        data.key_fields(Cfg(), {"clip": None}))
