"""The job map: local processes, Ray, on-disk results, resume after a kill.

The Ray tests share one local Ray instance (the ``ray_address`` fixture; ``ray`` comes with
the dev extra) and are skipped only where ray is not installed.

Run as a module (``python -m tests.core.test_jobs CACHE LOG N [RAY_ADDRESS]``) it is the
sweep that :func:`test_killed_sweep_resumes_from_finished_jobs` (and its Ray twin) kills
half-way.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from paperlab.core import data
from paperlab.core.jobs import (
    Codec,
    Job,
    JobError,
    canonical,
    code_fingerprint,
    job_key,
    job_map,
    sweep_dir,
)

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Point:
    scale: float
    size: int


def draw(config: Point, seed: int) -> dict:
    """A seeded result (what a training run at this config and seed would report)."""
    rng = np.random.default_rng(seed)
    return {"mean": float(rng.normal(size=config.size).mean() * config.scale), "seed": seed}


def logged(config: dict, seed: int) -> dict:
    """Appends one line per execution to ``config['log']`` (works across processes)."""
    with open(config["log"], "a") as f:
        f.write(f"{config['i']}\n")
    time.sleep(config.get("sleep", 0.0))
    if config.get("fail"):
        raise ArithmeticError(f"diverged at i={config['i']}")
    return {"i": config["i"], "value": config["i"] * 10 + seed}


def dies_once(config: dict, seed: int) -> int:
    """Kills its own worker process the first time (or every time with ``always``)."""
    marker = Path(config["marker"])
    if config.get("always") or not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return config["i"] + seed


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path / "cache"))


def grid(n: int = 6) -> list[Job]:
    return [Job(Point(scale, 50), seed, f"scale={scale} seed={seed}")
            for scale in (0.5, 2.0) for seed in range(n // 2)]


def test_processes_agree_with_serial_and_keep_order():
    jobs = grid()
    serial = job_map(draw, jobs, workers=1)
    assert serial == [draw(j.config, j.seed) for j in jobs]
    assert job_map(draw, jobs, workers=2) == serial


_STATE = {"who": "import"}


def state(config: str, seed: int) -> str:
    return _STATE["who"]


def test_workers_are_fresh_processes_not_forks(monkeypatch):
    """A fork would inherit this process's running BLAS/OpenMP threads' locks (deadlock); a
    fresh worker sees the module as imported, not as this process changed it."""
    monkeypatch.setitem(_STATE, "who", "changed in the driver")
    assert job_map(state, [Job("x", 0), Job("y", 1)], workers=2) == ["import", "import"]


def lines(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_finished_jobs_are_kept_and_reused(tmp_path):
    log = tmp_path / "log"
    jobs = [Job({"i": i, "log": str(log)}, seed=1) for i in range(4)]
    first = job_map(logged, jobs, sweep="t.reuse", workers=1)
    assert lines(log) == ["0", "1", "2", "3"]
    assert len(list(sweep_dir("t.reuse").glob("*.json"))) == 4
    assert job_map(logged, jobs, sweep="t.reuse", workers=2) == first  # nothing recomputed
    assert len(lines(log)) == 4
    changed = jobs[:3] + [Job({"i": 3, "log": str(log)}, seed=2)]  # another seed: a new job
    assert job_map(logged, changed, sweep="t.reuse", workers=1)[3] == {"i": 3, "value": 32}
    assert lines(log)[4:] == ["3"]
    job_map(logged, jobs, sweep="t.reuse", fresh=True, workers=1)
    assert len(lines(log)) == 9


def test_a_failing_job_is_named_and_earlier_results_survive(tmp_path):
    log = tmp_path / "log"
    jobs = [Job({"i": i, "log": str(log), "fail": i == 2}, name=f"cora/gcn#{i}")
            for i in range(4)]
    with pytest.raises(JobError, match=r"job cora/gcn#2 failed: ArithmeticError: diverged"):
        job_map(logged, jobs, sweep="t.fail", workers=1)
    assert len(list(sweep_dir("t.fail").glob("*.json"))) == 2
    with pytest.raises(JobError, match=r"cora/gcn#2"):
        job_map(logged, jobs, sweep="t.fail", workers=2)


def test_a_dead_worker_gets_its_job_retried(tmp_path):
    jobs = [Job({"i": i, "marker": str(tmp_path / f"m{i}")}, seed=100) for i in range(3)]
    assert job_map(dies_once, jobs, workers=2) == [100, 101, 102]
    always = [Job({"i": 0, "marker": str(tmp_path / "x"), "always": True}, name="doomed")]
    always.append(Job({"i": 1, "marker": str(tmp_path / "m1")}))
    with pytest.raises(JobError, match=r"job doomed: its worker process died 2 times"):
        job_map(dies_once, always, workers=2, retries=1)


def test_results_round_trip_identically_with_a_codec(tmp_path):
    codec = Codec(encode=lambda r: {"pair": list(r)}, decode=lambda c, v: tuple(v["pair"]))
    jobs = [Job(Point(1.0, 3), s) for s in range(3)]

    def as_pair(config, seed):
        return seed, config.size

    fresh = job_map(as_pair, jobs, sweep="t.codec", workers=1, codec=codec)
    assert fresh == [(0, 3), (1, 3), (2, 3)]
    assert job_map(as_pair, jobs, sweep="t.codec", workers=1, codec=codec) == fresh
    assert job_map(as_pair, jobs, workers=1)[0] == [0, 3]  # plain JSON: what a reload gives
    numpy_out = job_map(lambda c, s: {"n": np.int64(s), "a": np.arange(2.0)}, jobs[:1],
                        workers=1)
    assert numpy_out == [{"n": 0, "a": [0.0, 1.0]}] and type(numpy_out[0]["n"]) is int
    with pytest.raises(JobError, match=r"job Point\(.*seed=0: its result cannot be stored"):
        job_map(lambda c, s: c, jobs, workers=1)  # an object needs a codec


def test_cache_keys_follow_content():
    a = Job(Point(1.0, 3), 0)
    assert job_key("s", a) == job_key("s", Job(Point(1.0, 3), 0))
    assert job_key("s", a) != job_key("s", Job(Point(1.0, 3), 1))
    assert job_key("s", a) != job_key("t", a)
    assert job_key("s", a) != job_key("s", Job(Point(-0.0 + 1.0000001, 3), 0))
    arr = np.arange(5.0)
    k = job_key("s", Job({"x": arr}))
    arr2 = arr.copy()
    arr2[4] = 4.5
    assert k == job_key("s", Job({"x": arr.copy()})) != job_key("s", Job({"x": arr2}))
    assert canonical(0.0) != canonical(-0.0)
    with pytest.raises(TypeError, match="cannot build a cache key from a generator"):
        canonical(x for x in ())
    with pytest.raises(ValueError, match="plain name"):
        sweep_dir("../escape")


def test_editing_the_package_invalidates_stored_results(tmp_path, monkeypatch):
    """The key includes the sources of the function's package: new code, new results."""
    pkg = tmp_path / "fakelab" / "sysx"
    pkg.mkdir(parents=True)
    (tmp_path / "fakelab" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "exp.py").write_text("def f(config, seed):\n    return config + seed\n")
    (pkg / "model.py").write_text("SCALE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    exp = importlib.import_module("fakelab.sysx.exp")
    before = code_fingerprint(exp.f)
    jobs = [Job(1, 2)]
    job_map(exp.f, jobs, sweep="t.code", workers=1)
    assert len(list(sweep_dir("t.code").glob("*.json"))) == 1
    (pkg / "model.py").write_text("SCALE = 2\n")  # another module of the same package
    assert code_fingerprint(exp.f) != before
    job_map(exp.f, jobs, sweep="t.code", workers=1)
    assert len(list(sweep_dir("t.code").glob("*.json"))) == 2  # computed again, new key


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_killed_sweep_resumes_from_finished_jobs(tmp_path, sig):
    _kill_and_resume(tmp_path, sig)


def _kill_and_resume(tmp_path: Path, sig: int, ray_address: str = "") -> None:
    """Start the sweep of :func:`_sweep_main` in a subprocess (its own session), send ``sig``
    to its process group once a few jobs are stored, run it again to the end and check that
    the finished jobs did not run again and the results are complete and right."""
    n = 10
    log, cache = tmp_path / "log", tmp_path / "cache2"
    cmd = [sys.executable, "-m", "tests.core.test_jobs", str(cache), str(log), str(n)]
    cmd += [ray_address] if ray_address else []
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = cache / "jobs" / "t.killed"
    deadline = time.monotonic() + 60
    while len(list(results.glob("*.json"))) < 3:  # wait until a few jobs are done
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.05)
    os.killpg(proc.pid, sig)  # the whole sweep: driver and its workers
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    kept = len(list(results.glob("*.json")))
    ran_before = set(lines(log))
    assert 3 <= kept < n
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                         check=True).stdout
    counts = {i: lines(log).count(str(i)) for i in range(n)}
    assert sum(c == 1 for c in counts.values()) >= kept  # finished jobs did not run again
    assert all(1 <= c <= 2 for c in counts.values())  # in-flight ones at most once more
    assert len(ran_before) < n
    expected = [{"i": i, "value": i * 10 + 7} for i in range(n)]
    assert out.strip().splitlines()[-1] == repr(expected)


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance for this module's Ray tests (starting one takes seconds); the
    job map finds it initialised and submits to it. Yields the address other drivers (the
    killed sweep's subprocess) connect to."""
    ray = pytest.importorskip("ray", reason="ray is not installed (the dev extra has it)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()


def test_ray_gives_what_the_in_process_run_gives(ray_address, tmp_path):
    jobs = grid(4)
    in_process = job_map(draw, jobs, workers=1)
    on_ray = job_map(draw, jobs, ray_address=ray_address, sweep="t.ray")
    assert on_ray == in_process == job_map(draw, jobs, workers=2)
    assert job_map(functools.partial(draw), jobs, ray_address=ray_address) == on_ray  # not a def
    assert job_map(draw, jobs, workers=1, sweep="t.ray") == on_ray  # read back, same values


def test_ray_retries_a_killed_worker_then_names_the_job(ray_address, tmp_path):
    dying = [Job({"i": i, "marker": str(tmp_path / f"m{i}")}, seed=100) for i in range(2)]
    assert job_map(dies_once, dying, ray_address=ray_address) == [100, 101]
    always = [Job({"i": 0, "marker": str(tmp_path / "x"), "always": True}, name="doomed")]
    with pytest.raises(JobError, match=r"job doomed: WorkerCrashedError"):
        job_map(dies_once, always, ray_address=ray_address, retries=1)


def test_ray_names_a_failing_job_and_keeps_the_finished_ones(ray_address, tmp_path):
    log = tmp_path / "log"
    failing = [Job({"i": i, "log": str(log), "fail": i == 1}, name=f"job{i}") for i in range(2)]
    with pytest.raises(JobError, match="job job1 failed: ArithmeticError: diverged at i=1"):
        job_map(logged, failing, ray_address=ray_address, sweep="t.rayfail")
    assert lines(log).count("1") == 1  # an exception is the job's own: not retried
    fixed = [failing[0], Job({"i": 1, "log": str(log)}, name="job1")]
    ran = len(lines(log))
    stored = len(list(sweep_dir("t.rayfail").glob("*.json")))
    assert job_map(logged, fixed, ray_address=ray_address, sweep="t.rayfail") == [
        {"i": 0, "value": 0}, {"i": 1, "value": 10}]
    assert len(lines(log)) == ran + 2 - stored  # a job stored before the failure is read back


def test_ray_sweep_resumes_from_its_stored_jobs(ray_address, tmp_path):
    log = tmp_path / "log"
    jobs = [Job({"i": i, "log": str(log)}, seed=3) for i in range(4)]
    job_map(logged, jobs[:2], ray_address=ray_address, sweep="t.rayresume")
    assert sorted(lines(log)) == ["0", "1"]
    resumed = job_map(logged, jobs, ray_address=ray_address, sweep="t.rayresume")
    assert sorted(lines(log)) == ["0", "1", "2", "3"]  # only the two missing ones ran
    assert resumed == job_map(logged, jobs, workers=1)  # and they equal an in-process run


def test_local_starts_a_ray_instance_of_its_own(ray_address, monkeypatch):
    """``"local"`` reaches ``ray.init`` as ``"local"`` (a new instance), not as ``None``, which
    joins the cluster in ``RAY_ADDRESS`` or one left by ``ray start`` (seen: a search on
    such a cluster failed with LocalRayletDiedError when its owner stopped it); with
    ``RAY_ADDRESS`` set, where Ray cannot start one, it is refused at once."""
    import ray

    class Started(Exception):
        pass

    def init(address=None, **_):
        raise Started(address)

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(Started, match="^local$"):
        job_map(draw, grid(2), ray_address="local")
    with pytest.raises(Started, match="^auto$"):
        job_map(draw, grid(2), ray_address="auto")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    with pytest.raises(RuntimeError, match=r"while RAY_ADDRESS is set \(10.0.0.1:6379\)"):
        job_map(draw, grid(2), ray_address="local")


def test_killed_sweep_on_ray_resumes_from_finished_jobs(ray_address, tmp_path):
    """The driver of a sweep on Ray is killed half-way; run again, it computes only what is
    missing (the same check as for local processes, with a second driver on the cluster)."""
    _kill_and_resume(tmp_path, signal.SIGKILL, ray_address)


def test_splitwise_search_resumes_to_the_same_answer():
    """The provisioning search folded into the job map: a rerun reads every stored search and
    returns what the first run computed (designs rebuilt from the jobs, metrics equal)."""
    try:
        root = data.require("splitwise", "stage ../shared/data/splitwise")
    except data.DataNotFoundError as exc:
        pytest.skip(str(exc))
    from paperlab.splitwise import PerfDatabase, read_azure_csv
    from paperlab.splitwise.cluster import baseline_design
    from paperlab.splitwise.provisioning import SearchSpace, best_design

    db = PerfDatabase.from_csv(root / "splitwise_sim" / "perf_model.csv")
    src = read_azure_csv(root / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv")
    space = SearchSpace(rates=(1.0, 2.0, 4.0), duration_s=20.0)
    designs = [baseline_design("H100", 1), baseline_design("H100", 2)]
    first = best_design(designs, src, db, space, workers=1, sweep="t.splitwise")
    assert len(list(sweep_dir("t.splitwise").glob("*.json"))) == 2
    again = best_design(designs, src, db, space, workers=1, sweep="t.splitwise")
    assert again == first and again.best in designs
    plain = best_design(designs, src, db, space, workers=1)  # no storage at all
    assert plain.rates == first.rates and plain.best == first.best
    assert [e.metrics for e in plain.evaluations] == [e.metrics for e in first.evaluations]


def _sweep_main(cache: str, log: str, n: int, ray_address: str | None = None) -> None:
    os.environ[data.ENV_CACHE] = cache
    # a second a job: on a loaded machine the test may not run for a while after it sees three
    # results, and the sweep must still be going when the signal arrives
    jobs = [Job({"i": i, "log": log, "sleep": 1.0}, seed=7, name=f"job{i}") for i in range(n)]
    print(repr(job_map(logged, jobs, sweep="t.killed", workers=2, ray_address=ray_address)))


if __name__ == "__main__":
    # a shell that starts the suite in the background passes SIGINT on as ignored, and Python
    # then installs no KeyboardInterrupt handler; ctrl-c in a terminal has one
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _sweep_main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
