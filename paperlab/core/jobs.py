"""One job map for the long sweeps: local processes by default, a Ray cluster on request,
finished jobs kept on disk so an interrupted sweep resumes where it stopped.

A sweep is a list of :class:`Job` (a config and a seed) and a function ``fn(config, seed)``.
:func:`job_map` returns ``[fn(job.config, job.seed) for job in jobs]``, in order, computed

* in this process (``workers <= 1``), on a local process pool (default), or as Ray tasks on
  the cluster at ``ray_address`` (``"auto"``, ``"ray://host:10001"``, or ``"local"``: a new
  Ray instance of this process's own, even where another one runs);
* with a worker that dies (killed, out of memory) retried up to ``retries`` times, and a job
  whose function raises reported as :class:`JobError` naming the job (not retried: the same
  seed would fail the same way);
* when ``sweep`` names the sweep, with every finished result written at once to
  ``<cache>/jobs/<sweep>/<key>.json``, ``key`` a hash of (sweep, config, seed and the source
  code of ``fn``'s package). Running the same sweep again loads those and computes only the
  rest; ``fresh=True`` recomputes all.

Results are stored as JSON through a :class:`Codec` (the default keeps JSON values as they are;
NumPy scalars and arrays become numbers and lists) and every result, computed now or loaded,
goes through the same encode/decode round trip, so a resumed sweep returns exactly what an
uninterrupted one does. Nothing is ever unpickled from the cache. The key hashes the config's
content (dataclasses field by field, arrays by their bytes), so everything else that changes a
result must be in the config or the sweep name; the code of ``fn``'s package is hashed in
(:func:`code_fingerprint`), so editing it starts over.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from paperlab.core import progress
from paperlab.core.data import cache_dir
from paperlab.core.results import atomic_write_text

log = logging.getLogger(__name__)


class JobError(RuntimeError):
    """A job failed (its function raised, or its worker kept dying); names the job."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One unit of a sweep: ``fn(config, seed)``. ``name`` labels it in errors and logs;
    ``key`` (default: ``config``) is what identifies its result in the cache, for configs that
    carry objects whose state is not their content (e.g. a lazily filled memo)."""

    config: Any
    seed: int = 0
    name: str = ""
    key: Any = None

    def label(self) -> str:
        return self.name or f"{_short(self.config)} seed={self.seed}"


@dataclasses.dataclass(frozen=True)
class Codec:
    """How a result is stored: ``encode(result)`` -> JSON value, ``decode(config, value)`` ->
    result (``config`` lets a decoder rebuild objects the job was given)."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any, Any], Any]


JSON = Codec(lambda result: result, lambda config, value: value)


def canonical(obj: Any) -> Any:
    """A JSON value describing ``obj``'s content, for hashing: dataclasses and plain objects
    field by field with their class name, NumPy arrays by dtype, shape and a digest of their
    bytes, dict keys sorted, floats by ``repr`` (so -0.0, nan and inf are distinct)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return {"float": repr(obj)}
    if isinstance(obj, np.generic):
        return canonical(obj.item())
    if isinstance(obj, np.ndarray):
        data = np.ascontiguousarray(obj)
        return {"ndarray": str(data.dtype), "shape": list(data.shape),
                "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    if isinstance(obj, (list, tuple)):
        return [type(obj).__name__, [canonical(x) for x in obj]]
    if isinstance(obj, (set, frozenset)):
        return ["set", sorted(json.dumps(canonical(x), sort_keys=True) for x in obj)]
    if isinstance(obj, dict):
        items = sorted((json.dumps(canonical(k), sort_keys=True), canonical(v))
                       for k, v in obj.items())
        return ["dict", items]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: canonical(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return [_qualname(type(obj)), fields]
    if callable(obj) and hasattr(obj, "__qualname__"):
        return ["callable", _qualname(obj)]
    if hasattr(obj, "__dict__"):
        return [_qualname(type(obj)), canonical(vars(obj))]
    raise TypeError(f"cannot build a cache key from a {type(obj).__name__}; give the job a "
                    "config made of dataclasses, containers, numbers, strings and arrays")


def job_key(sweep: str, job: Job, code: str = "") -> str:
    """The cache key of ``job`` in ``sweep``: 32 hex digits of SHA-256 of its content (and of
    ``code``, the :func:`code_fingerprint` of the function that computes it)."""
    material = job.config if job.key is None else job.key
    text = json.dumps([sweep, code, canonical(material), job.seed], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def code_fingerprint(fn: Callable[..., Any]) -> str:
    """SHA-256 of the Python sources of the package that defines ``fn`` (for
    ``paperlab.hierarchy.experiment._cell``: every ``*.py`` under ``paperlab/hierarchy``), so an
    edit to a system's code never reads results its old code stored."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    module_name = getattr(fn, "__module__", None) or type(fn).__module__
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if path is None:
        return ""
    depth = len(module_name.split(".")) - (Path(path).name != "__init__.py")
    folder = Path(path).parent  # the module's package; up to the second level (paperlab/x)
    if depth > 2:
        folder = folder.parents[depth - 3]
    h = hashlib.sha256()
    for source in sorted(folder.rglob("*.py")):
        h.update(source.relative_to(folder).as_posix().encode() + b"\0" + source.read_bytes())
    return h.hexdigest()[:16]


def sweep_dir(sweep: str) -> Path:
    """Where the results of ``sweep`` are kept: ``<cache>/jobs/<sweep>``."""
    if not sweep or "/" in sweep or sweep.startswith("."):
        raise ValueError(f"sweep must be a plain name like 'mowst.run', got {sweep!r}")
    return cache_dir() / "jobs" / sweep


def job_map(fn: Callable[[Any, int], Any], jobs: Sequence[Job], *, sweep: str | None = None,
            fresh: bool = False, workers: int | None = None, ray_address: str | None = None,
            retries: int = 2, codec: Codec | None = JSON,
            description: str | None = None) -> list[Any]:
    """``[fn(job.config, job.seed) for job in jobs]``, in parallel, resumable.

    Worker processes are started fresh (``forkserver``/``spawn``), so a script that calls this
    with ``workers > 1`` needs the usual ``if __name__ == "__main__":`` guard.

    Args:
        fn: a module-level function (it is pickled to the workers).
        jobs: the sweep; results come back in this order.
        sweep: a name for the sweep, e.g. ``"hierarchy.grid.v1"``; with it every finished
            result is kept on disk and reused by the next run (None: nothing is stored).
        fresh: ignore (and overwrite) stored results of this sweep.
        workers: local processes (default: the CPU count, at most the number of jobs);
            ``<= 1`` runs the jobs in this process, one after another.
        ray_address: run the jobs as Ray tasks on this cluster instead (needs ``ray``).
        retries: how often a job whose worker died is started again.
        codec: how results are stored (and round-tripped, also without ``sweep``); None
            returns them as they are (only without ``sweep``).
        description: label of a progress bar counting finished jobs.

    Raises:
        JobError: a job raised (chained to its exception) or its worker kept dying; the
            results finished before it are kept on disk.
    """
    jobs = list(jobs)
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if codec is None and sweep is not None:
        raise ValueError("a stored sweep needs a codec (results are kept as JSON)")
    folder = sweep_dir(sweep) if sweep is not None else None
    code = code_fingerprint(fn) if sweep is not None else ""
    keys = [job_key(sweep, j, code) for j in jobs] if sweep is not None else [""] * len(jobs)
    results: dict[int, Any] = {}
    if folder is not None and not fresh:
        for i, (job, key) in enumerate(zip(jobs, keys, strict=True)):
            stored = _load(folder / f"{key}.json", job)
            if stored is not _MISSING:
                results[i] = codec.decode(job.config, stored)
        if results:
            log.info("%s: %d of %d jobs already done, resuming", sweep, len(results), len(jobs))
    todo = [i for i in range(len(jobs)) if i not in results]

    def finish(i: int, value: Any) -> None:
        if codec is None:
            results[i] = value
            return
        stored = _roundtrip(codec.encode(value), jobs[i])
        if folder is not None:
            _save(folder / f"{keys[i]}.json", jobs[i], stored)
        results[i] = codec.decode(jobs[i].config, stored)

    if todo:
        if ray_address:
            done = _ray(fn, jobs, todo, ray_address, retries)
        elif (workers is not None and workers <= 1) or len(todo) == 1:
            done = _serial(fn, jobs, todo)
        else:
            done = _pool(fn, jobs, todo, min(workers or os.cpu_count() or 1, len(todo)),
                         retries)
        if description:
            done = progress.track(done, description, total=len(todo))
        for i, value in done:
            finish(i, value)
    return [results[i] for i in range(len(jobs))]


def run_options(options: Mapping[str, Any], workers: int = 1) -> dict[str, Any]:
    """:func:`job_map`'s ``workers``, ``ray_address`` and ``fresh`` for a system's run, from its
    command-line options (``ctx.options``: ``workers``, ``ray_address``, ``fresh``), else the
    environment (``PAPERLAB_WORKERS``, ``PAPERLAB_RAY_ADDRESS``, ``PAPERLAB_FRESH=1``), else
    ``workers`` local processes, no Ray, resume."""
    env = os.environ
    return {
        "workers": int(options.get("workers") or env.get("PAPERLAB_WORKERS") or workers),
        "ray_address": options.get("ray_address") or env.get("PAPERLAB_RAY_ADDRESS") or None,
        "fresh": bool(options.get("fresh")) or env.get("PAPERLAB_FRESH", "") not in ("", "0"),
    }


# ----------------------------------------------------------------------------- storage

_MISSING = object()


def _numpy(obj: Any) -> Any:
    """NumPy scalars and arrays as JSON numbers and lists (``json.dumps``'s ``default``)."""
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _roundtrip(value: Any, job: Job) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=True, default=_numpy))
    except (TypeError, ValueError) as exc:
        raise JobError(f"job {job.label()}: its result cannot be stored as JSON ({exc}); "
                       "pass a Codec that encodes it") from exc


def _save(path: Path, job: Job, value: Any) -> None:
    """Write atomically (temporary file + rename): a killed run never leaves half a result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"job": job.label(), "seed": job.seed, "result": value}
    atomic_write_text(path, json.dumps(record))


def _load(path: Path, job: Job) -> Any:
    """The stored result of ``job``, or ``_MISSING`` (absent or unreadable: recomputed)."""
    try:
        record = json.loads(path.read_text())
        if record["seed"] != job.seed:
            raise ValueError(f"seed {record['seed']} != {job.seed}")
        return record["result"]
    except FileNotFoundError:
        return _MISSING
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: ignoring unreadable stored result (%s); recomputing", path, exc)
        return _MISSING


# ---------------------------------------------------------------------------- executors


def _failed(job: Job, exc: BaseException) -> JobError:
    return JobError(f"job {job.label()} failed: {type(exc).__name__}: {exc}")


def _serial(fn: Callable[[Any, int], Any], jobs: list[Job],
            todo: list[int]) -> Iterator[tuple[int, Any]]:
    for i in todo:
        try:
            value = fn(jobs[i].config, jobs[i].seed)
        except Exception as exc:
            raise _failed(jobs[i], exc) from exc
        yield i, value


def _pool(fn: Callable[[Any, int], Any], jobs: list[Job], todo: list[int], workers: int,
          retries: int) -> Iterator[tuple[int, Any]]:
    """Local processes. A dead worker breaks the whole pool, so which job killed it is unknown:
    the unfinished jobs are then run again one at a time, each in a pool of its own, where a
    death is the job's own; a job whose worker dies ``retries`` more times is an error."""
    broken = yield from _run_pool(fn, jobs, todo, workers)
    if broken:
        log.warning("a worker process died; running %d unfinished job(s) one at a time",
                    len(broken))
    for i in broken:
        deaths = 1  # the shared pool's break, charged to every job it caught
        while True:
            if deaths > retries:
                raise JobError(f"job {jobs[i].label()}: its worker process died "
                               f"{deaths} times (killed, or out of memory?)")
            if not (yield from _run_pool(fn, jobs, [i], 1)):
                break
            deaths += 1


def _run_pool(fn: Callable[[Any, int], Any], jobs: list[Job], todo: list[int],
              workers: int) -> Generator[tuple[int, Any], None, list[int]]:
    """Run ``todo`` in one pool, yielding ``(index, result)``; return the jobs a dead worker
    left unfinished."""
    broken: list[int] = []
    with ProcessPoolExecutor(max_workers=min(workers, len(todo)),
                             mp_context=_start_method(), initializer=_ignore_sigint) as pool:
        futures: dict[Future, int] = {pool.submit(fn, jobs[i].config, jobs[i].seed): i
                                      for i in todo}
        try:
            while futures:
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    i = futures.pop(future)
                    try:
                        value = future.result()
                    except BrokenProcessPool:
                        broken.append(i)
                        continue
                    except Exception as exc:
                        raise _failed(jobs[i], exc) from exc
                    yield i, value
        except BaseException:  # Ctrl-C or a failed job: stop the rest now
            _stop(pool)
            raise
    return broken


def _start_method() -> multiprocessing.context.BaseContext:
    """Fresh worker processes, not forks: a fork of a process whose BLAS/OpenMP/torch threads
    are running can deadlock (seen here: workers forked after a serial scikit-learn sweep sat at
    0 CPU). ``forkserver`` where the platform has it (the default from Python 3.14), else
    ``spawn``; either way ``fn`` and its configs must be importable/picklable by reference."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the driver, which stops them (else each interrupted worker
    would go on with the next queued job)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel queued jobs and end the running ones now (not after they finish)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())  # before shutdown
    pool.shutdown(wait=False, cancel_futures=True)  # drops its list of processes
    for process in processes:
        process.terminate()


def _ray(fn: Callable[[Any, int], Any], jobs: list[Job], todo: list[int], address: str,
         retries: int) -> Iterator[tuple[int, Any]]:
    """Ray tasks: Ray restarts a task whose worker died (``max_retries``); results are
    collected as they finish so each one is stored at once.

    ``"local"`` goes to ``ray.init`` as it is, which starts a new instance. (``address=None``
    would join the cluster in ``RAY_ADDRESS`` or one left by ``ray start``, whose owner may
    stop it mid-sweep: the sweep then failed with ``LocalRayletDiedError``.) With
    ``RAY_ADDRESS`` set, Ray 2.60 cannot start a new instance (its node times out after
    minutes), so that is refused at once.
    """
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("--ray-address needs ray: pip install 'ray[default]'") from exc
    if not ray.is_initialized():
        if address == "local" and os.environ.get("RAY_ADDRESS"):
            raise RuntimeError(f"ray address 'local' starts a Ray instance of its own, which "
                               f"Ray cannot do while RAY_ADDRESS is set "
                               f"({os.environ['RAY_ADDRESS']}); unset it, or pass that "
                               "address (or 'auto') to use its cluster")
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    remote = ray.remote(max_retries=retries, retry_exceptions=False)(_call)
    fn_ref = ray.put(fn)  # shipped once, not with every task
    refs = {remote.remote(fn_ref, jobs[i].config, jobs[i].seed): i for i in todo}
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            i = refs.pop(ready[0])
            try:
                value = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                raise _failed(jobs[i], cause) from exc
            except ray.exceptions.RayError as exc:  # worker/node died more than max_retries
                raise JobError(f"job {jobs[i].label()}: {type(exc).__name__}: {exc}") from exc
            yield i, value
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)


def _call(fn: Callable[[Any, int], Any], config: Any, seed: int) -> Any:
    """A Ray task: ``fn`` may be any picklable callable (Ray wraps only plain functions)."""
    return fn(config, seed)


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _short(config: Any, limit: int = 60) -> str:
    text = repr(config)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["JSON", "Codec", "Job", "JobError", "canonical", "code_fingerprint", "job_key",
           "job_map", "run_options", "sweep_dir"]
