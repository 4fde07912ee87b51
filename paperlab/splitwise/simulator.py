"""A discrete-event simulator of an LLM serving cluster, colocated or phase-split (Splitwise).

Reading order: the request/task records, :class:`Machine` (one model instance on one DGX:
continuous batching with the reference simulator's limits and decode preemption),
:class:`ChunkedPrefillMachine` (a colocated machine that splits prompts into chunks mixed
with decodes), the two cluster schedulers (token join-shortest-queue for colocated baselines;
the mixed-pool scheduler for Splitwise, with KV-cache transfers and pool borrowing), and
:func:`simulate`, the event loop.

Semantics follow github.com/Mutinifni/splitwise-sim ("reference-compatible"): a run of
decode-only iterations is simulated as one event until some request finishes or a newly
arrived task must join at the next iteration boundary; a prompt joins a batch whole (no
chunking) with at most ``max_batch_tokens`` tokens per iteration (a longer prompt runs alone);
decode tasks are preempted (kept in memory) when prompts take their slot, and a task waiting
``max_preemptions`` iteration starts gets priority. Memory gates admission: a task is admitted
only if its KV cache fits beside the weights.

Speed: plain objects with ``__slots__``, one ``heapq`` of tuples, arrivals read from the
trace arrays a chunk at a time (never all in the heap, nor all as Python numbers), finished
requests handed out in chunks: into numpy arrays in trace order, or appended to files on disk
(``simulate(..., out=DIR)``) so that 10^7 requests run in the memory of the trace.
"""

from __future__ import annotations

import heapq
import shutil
from bisect import bisect_left, insort
from dataclasses import dataclass, replace
from numbers import Integral
from operator import attrgetter
from pathlib import Path

import numpy as np

from paperlab.splitwise.hardware import LLM, Link, MachineSKU
from paperlab.splitwise.perf_model import IterationModel
from paperlab.splitwise.trace import Trace

PROMPT, TOKEN = 0, 1
QUEUED, RUNNING, BLOCKED, COMPLETED = 1, 2, 3, 4
KV_RETRY_S = 1.0  # a KV transfer waiting for destination memory retries every second
CHUNK = 1 << 16  # requests read from the trace, and results written out, at a time
_NAN = float("nan")


class _Request:
    __slots__ = ("idx", "arrival", "prompt", "tokens", "ptask", "ttask", "memory", "pool_n",
                 "head", "src", "dst", "prompt_end", "prompt_iter_s", "ttft", "kv",
                 "token_start")

    def __init__(self, idx: int, arrival: float, prompt: int, tokens: int) -> None:
        self.idx, self.arrival, self.prompt, self.tokens = idx, arrival, prompt, tokens
        self.memory = 0  # KV bytes this request holds (the reference's request.memory)
        self.pool_n = 0  # tasks of this request on the machine currently holding it
        self.head = None
        self.src = self.dst = None
        self.prompt_end = self.prompt_iter_s = 0.0
        self.ttft = self.token_start = _NAN  # the outcomes, until the request is written out
        self.kv = 0.0


class _Task:
    __slots__ = ("kind", "req", "state", "npre", "tpi", "mem", "target", "generated",
                 "inb", "sel", "arr", "remaining")

    def __init__(self, kind: int, req: _Request, tpi: int, mem: int, target: int) -> None:
        self.kind, self.req, self.tpi, self.mem, self.target = kind, req, tpi, mem, target
        self.state = 0
        self.npre = 0  # iteration starts this task waited through (reference: preemptions)
        self.generated = 0  # decode iterations done (prompt: 1 when prefilled)
        self.inb = False  # in the running batch
        self.sel = -1  # stamp of the last batch selection that picked it
        self.arr = req.arrival
        self.remaining = tpi  # prompt tokens not yet prefilled (chunked prefill only)


def _pending_key(t: _Task) -> tuple[int, float]:
    return (t.npre, t.arr)


_arrival_key = attrgetter("arr")


@dataclass(frozen=True)
class MachineConfig:
    """Machine-level batching limits (the reference's Splitwise instance defaults).

    Attributes:
        max_batch_size: requests per iteration.
        max_batch_tokens: tokens per iteration (prompt tokens + one per decode); a single
            longer prompt may run alone.
        max_preemptions: iteration starts a task may wait before it gets priority.
        chunk_size: if set, use chunked prefill (prompt chunks of at most this many tokens
            share each iteration with the decodes); None = whole prompts (Splitwise/ORCA).
    """

    max_batch_size: int = 512
    max_batch_tokens: int = 2048
    max_preemptions: int = 4
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        # max_batch_size=0 used to admit nothing: every request silently ended as NaN
        for name, low in (("max_batch_size", 1), ("max_batch_tokens", 1),
                          ("max_preemptions", 0)):
            value = getattr(self, name)
            if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
                raise ValueError(f"MachineConfig.{name} must be an integer >= {low}, "
                                 f"got {value!r}")
        if self.chunk_size is not None and (not isinstance(self.chunk_size, Integral)
                                            or self.chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive token count or None, got "
                             f"{self.chunk_size!r}")


class Machine:
    """One model instance on one DGX machine, with iteration-level (continuous) batching."""

    __slots__ = ("mid", "sku", "tag", "sched_tag", "perf", "sim", "memory", "max_memory",
                 "sched_memory", "sched_pending_tokens", "pending", "pending_prompts",
                 "blocked", "batch", "n_prompts_in_batch", "pool", "pool_keys", "batch_tokens",
                 "iter_dur", "n_contig", "paused", "joined", "iter_end", "iter_token", "stamp",
                 "max_bs", "max_bt", "max_pre", "busy_s", "run_since", "peak_memory",
                 "kv_per_token")

    def __init__(self, mid: int, sku: MachineSKU, model: LLM, perf: IterationModel,
                 config: MachineConfig, tag: str | None = None) -> None:
        if model.weight_bytes >= sku.memory:
            raise ValueError(f"{model.name} weights ({model.weight_bytes / 1e9:.0f} GB) do not "
                             f"fit in {sku.name} memory ({sku.memory / 1e9:.0f} GB)")
        self.mid, self.sku, self.tag, self.sched_tag, self.perf = mid, sku, tag, None, perf
        self.sim: _Sim | None = None
        self.memory = self.sched_memory = self.peak_memory = model.weight_bytes
        self.max_memory = sku.memory
        self.kv_per_token = model.kv_bytes_per_token
        self.sched_pending_tokens = 0
        self.pending: list[_Task] = []  # by (waits, arrival) at insertion
        self.pending_prompts: list[_Task] = []  # FIFO
        self.blocked: list[_Task] = []  # preempted decodes
        self.batch: list[_Task] = []
        self.joined: list[_Task] = []  # tasks that entered the batch at this iteration start
        self.n_prompts_in_batch = 0
        self.pool: list[_Request] = []  # requests with a task here, by arrival
        self.pool_keys: list[float] = []
        self.batch_tokens = 0
        self.iter_dur = 0.0
        self.n_contig = 0
        self.paused = False
        self.iter_end = 0.0
        self.iter_token = 0
        self.stamp = 0
        self.max_bs, self.max_bt = config.max_batch_size, config.max_batch_tokens
        self.max_pre = config.max_preemptions
        self.busy_s = self.run_since = 0.0

    # -- memory -------------------------------------------------------------------------------
    def alloc(self, nbytes: int) -> None:
        self.memory += nbytes
        if self.memory > self.peak_memory:
            self.peak_memory = self.memory

    def free(self, nbytes: int) -> None:
        self.memory -= nbytes
        self.sched_memory -= nbytes

    # -- queues -------------------------------------------------------------------------------
    def _add_pending(self, t: _Task, preempted: bool = False) -> None:
        insort(self.pending, t, key=_pending_key)
        if preempted:
            self.blocked.append(t)
        if t.kind == PROMPT:
            self.pending_prompts.append(t)

    def _remove_pending(self, t: _Task) -> None:
        self.pending.remove(t)
        if t.state == BLOCKED:
            self.blocked.remove(t)
        if t.kind == PROMPT:
            self.pending_prompts.remove(t)

    def _add_to_pool(self, t: _Task) -> None:
        r = t.req
        if r.pool_n == 0:
            i = bisect_left(self.pool_keys, r.arrival)
            # insort_right semantics: after equal keys
            while i < len(self.pool_keys) and self.pool_keys[i] == r.arrival:
                i += 1
            self.pool.insert(i, r)
            self.pool_keys.insert(i, r.arrival)
            r.head = t
        r.pool_n += 1

    def _remove_from_pool(self, t: _Task) -> None:
        r = t.req
        r.pool_n -= 1
        if r.pool_n:
            r.head = r.ttask
            return
        i = bisect_left(self.pool_keys, r.arrival)
        while self.pool[i] is not r:
            i += 1
        del self.pool[i]
        del self.pool_keys[i]

    def _add_to_batch(self, t: _Task) -> None:
        if not self.batch:
            self.run_since = self.sim.now
        self.batch.append(t)
        self.joined.append(t)
        t.inb = True
        if t.kind == PROMPT:
            self.n_prompts_in_batch += 1

    def _remove_from_batch(self, t: _Task) -> None:
        self.batch.remove(t)
        t.inb = False
        if t.kind == PROMPT:
            self.n_prompts_in_batch -= 1
        if not self.batch:
            self.busy_s += self.sim.now - self.run_since

    # -- arrivals -----------------------------------------------------------------------------
    def task_arrival(self, t: _Task) -> None:
        t.state = QUEUED
        self._add_to_pool(t)
        self._add_pending(t)
        if not self.batch:
            if self.memory + t.mem > self.max_memory:
                return  # blocked on memory until something frees
            self.start_iteration()
            return
        if len(self.batch) < self.max_bs and self.batch_tokens + t.tpi <= self.max_bt:
            self.pause()
            return
        if t.kind == PROMPT:
            batch_prompt_tokens = self.batch_tokens - (len(self.batch) - self.n_prompts_in_batch)
            if self.n_prompts_in_batch < len(self.batch) and \
                    batch_prompt_tokens + t.tpi <= self.max_bt:
                self.pause()

    def notify_kv_sent(self) -> None:
        """A KV transfer from this machine finished (its memory is free again)."""
        if not self.pending:
            return
        t = self.pending[0]
        if not self.batch:
            if self.memory + t.mem > self.max_memory:
                return
            self.start_iteration()
            return
        if len(self.batch) < self.max_bs and self.batch_tokens < self.max_bt:
            self.pause()

    # -- batch selection ----------------------------------------------------------------------
    def _select(self) -> list[_Task]:
        """The reference's selection order: starved tasks, prompts, preempted decodes, the
        running decodes, then other requests by arrival; returns the new batch."""
        self.stamp += 1
        stamp = self.stamp
        new: list[_Task] = []
        reqs = set()
        bt = 0
        mem = self.memory
        max_bs, max_bt, max_mem = self.max_bs, self.max_bt, self.max_memory
        for t in self.pending:
            if t.npre < self.max_pre:
                break
            if len(new) == max_bs or (new and bt + t.tpi > max_bt):
                break
            if t.req in reqs:
                continue
            if t.state == BLOCKED:
                pass
            elif t.mem + mem <= max_mem:
                mem += t.mem
            else:
                continue
            new.append(t)
            reqs.add(t.req)
            bt += t.tpi
        for t in self.pending_prompts:
            if len(new) == max_bs or (new and bt + t.tpi > max_bt):
                break
            if t.req in reqs:
                continue
            if t.mem + mem > max_mem:
                break
            mem += t.mem
            new.append(t)
            reqs.add(t.req)
            bt += t.tpi
        for group in (self.blocked, self.batch):
            for t in group:
                if len(new) == max_bs or (new and bt + t.tpi > max_bt):
                    break
                if t.req in reqs:
                    continue
                new.append(t)
                reqs.add(t.req)
                bt += t.tpi
        for r in self.pool:
            if len(new) == max_bs:
                break
            if r in reqs:
                continue
            t = r.head
            if new and bt + t.tpi > max_bt:
                break
            if t.state != BLOCKED:
                if t.mem + mem > max_mem:
                    break
                mem += t.mem
            new.append(t)
            reqs.add(r)
            bt += t.tpi
        self.batch_tokens = bt
        for t in new:
            t.sel = stamp
        return new

    def start_iteration(self) -> None:
        if self.pending:
            self._rebatch()
        else:
            # nothing waits: every request here is in the (decode-only) batch, which the
            # full selection would keep as is (it is within both limits)
            self.batch_tokens = len(self.batch)
        batch = self.batch
        if not batch:
            if not self.pool:
                self.sim.scheduler.notify_free(self)
            return
        perf = self.perf
        if self.n_prompts_in_batch == len(batch):
            dur = perf.prompt_time(self.batch_tokens)
        elif self.n_prompts_in_batch == 0:
            dur = perf.token_time(self.batch_tokens)
        else:
            dur = perf.mixed_time(self.batch_tokens - (len(batch) - self.n_prompts_in_batch),
                                  len(batch) - self.n_prompts_in_batch)
        if self.n_prompts_in_batch:
            n = 1
        else:
            n = min([t.target - t.generated for t in batch])
        self.iter_dur, self.n_contig = dur, n
        for t in self.joined:
            if t.state == QUEUED:
                self._run(t)
            t.state = RUNNING
        self.joined.clear()
        self._schedule_completion(dur * n)

    def _rebatch(self) -> None:
        """Select the next batch, preempt decodes left out, count waits of the others."""
        if not self.pending_prompts and not self.blocked and \
                self.pending[0].npre < self.max_pre and \
                len(self.batch) < min(self.max_bs, self.max_bt):
            self._append_decodes()
            return
        new = self._select()
        stamp = self.stamp
        for t in [t for t in self.batch if t.sel != stamp]:  # preempt (KV stays in memory)
            t.state = BLOCKED
            self._remove_from_batch(t)
            self._add_pending(t, preempted=True)
        for t in new:
            if not t.inb:
                self._remove_pending(t)
                self._add_to_batch(t)
        # every request here has its head task either in the batch or pending
        for t in self.pending:
            if t.req.head is t:
                t.npre += 1

    def _append_decodes(self) -> None:
        """What :meth:`_select` does when only decodes wait, none starved or preempted, and
        the running decodes are within both limits: keep them all, then admit the waiting
        ones by arrival while the limits and memory allow."""
        batch = self.batch
        bt = len(batch)
        mem = self.memory
        max_bs, max_bt, max_mem = self.max_bs, self.max_bt, self.max_memory
        waiting = self.pending
        admitted = []
        for t in sorted(waiting, key=_arrival_key) if len(waiting) > 1 else waiting:
            if bt == max_bs or bt + 1 > max_bt or t.mem + mem > max_mem:
                break
            mem += t.mem
            bt += 1
            admitted.append(t)
        for t in admitted:
            self._remove_pending(t)
            self._add_to_batch(t)
        self.batch_tokens = bt
        for t in waiting:
            t.npre += 1

    def _run(self, t: _Task) -> None:
        """A task starts: its KV cache is allocated."""
        r = t.req
        self.alloc(t.mem)
        r.memory += t.mem
        if t.kind == TOKEN:
            r.token_start = self.sim.now
        else:
            r.prompt_iter_s = self.iter_dur

    def _schedule_completion(self, delay: float) -> None:
        self.iter_token += 1
        if delay <= 0:
            self.complete_iteration()
            return
        sim = self.sim
        self.iter_end = sim.now + delay
        sim.seq += 1
        heapq.heappush(sim.events, (self.iter_end, sim.seq, self._on_iter_event, self.iter_token))

    def _on_iter_event(self, token: int) -> None:
        if token == self.iter_token:
            self.complete_iteration()

    def pause(self) -> None:
        """Stop a run of decode iterations at the next iteration boundary (a task must join)."""
        if self.paused or self.n_prompts_in_batch:
            return
        self.paused = True
        now = self.sim.now
        dur = self.iter_dur
        start = self.iter_end - dur * self.n_contig
        elapsed = now - start
        n = min(int(elapsed // dur) + 1, self.n_contig)
        self.n_contig = n  # every task in the batch advances by n_contig iterations
        self._schedule_completion(dur * n - elapsed)

    def complete_iteration(self) -> None:
        self.iter_token += 1
        done = []
        n = self.n_contig
        for t in self.batch:
            t.generated += n
            if t.generated == t.target:
                done.append(t)
        for t in done:
            self._task_done(t)
        self.paused = False
        self.start_iteration()

    def _task_done(self, t: _Task) -> None:
        sim = self.sim
        r = t.req
        t.state = COMPLETED
        self._remove_from_batch(t)
        self._remove_from_pool(t)
        if t.kind == PROMPT:
            self.sched_pending_tokens -= r.prompt
            r.prompt_end = sim.now
            r.ttft = sim.now - r.arrival
            if r.ttask is None:  # a one-token request is done at prompt end
                self.free(r.memory)
                r.memory = 0
                sim.finish(r)
            elif r.dst is not self:
                sim.start_kv_transfer(r)
        else:
            self.sched_pending_tokens -= 1
            self.free(r.memory)
            r.memory = 0
            sim.finish(r)


class ChunkedPrefillMachine(Machine):
    """Colocated machine with chunked prefill (Sarathi-style, as vLLM/SGLang schedule).

    Every iteration runs all admitted decodes plus prompt chunks filling a token budget of
    ``chunk_size`` (decodes count one token each). A prompt's KV cache is allocated when its
    first chunk runs; its first token comes when its last chunk finishes. The iteration time
    is the profiled model's mixed-iteration time at (chunk tokens + decodes); the extra
    attention cost of later chunks over earlier ones is not in the profile and is ignored.
    Decode-only stretches run as one event until a request finishes or a prompt arrives.
    """

    __slots__ = ("chunk", "decodes", "chunks")

    def __init__(self, mid: int, sku: MachineSKU, model: LLM, perf: IterationModel,
                 config: MachineConfig, tag: str | None = None) -> None:
        super().__init__(mid, sku, model, perf, config, tag)
        if config.chunk_size is None or config.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive token count, got "
                             f"{config.chunk_size}")
        self.chunk = config.chunk_size
        self.decodes: list[_Task] = []  # admitted decode tasks (memory held)
        self.chunks: list[tuple[_Task, int]] = []  # this iteration's (prompt, tokens)

    def task_arrival(self, t: _Task) -> None:
        t.state = QUEUED
        if t.kind == PROMPT:
            self.pending_prompts.append(t)
        else:
            self.pending.append(t)  # waits for its prompt, then for memory
        if not self.batch and not self.decodes:
            self.start_iteration()
        elif t.kind == PROMPT:
            self.pause()

    def start_iteration(self) -> None:
        sim = self.sim
        # admit decodes whose prompt is done, FCFS, while memory allows
        while self.pending and self.pending[0].req.ptask.state == COMPLETED and \
                len(self.decodes) < self.max_bs and \
                self.memory + self.pending[0].mem <= self.max_memory:
            t = self.pending.pop(0)
            t.state = RUNNING
            self._run(t)
            self.decodes.append(t)
        budget = max(self.chunk - len(self.decodes), 0)
        self.chunks = []
        for t in self.pending_prompts:
            if budget == 0:
                break
            if t.state == QUEUED:
                if self.memory + t.mem > self.max_memory:
                    break
                t.state = RUNNING
                self._run(t)
            take = min(t.remaining, budget)
            self.chunks.append((t, take))
            budget -= take
        was_busy = bool(self.batch)
        self.batch = self.decodes + [t for t, _ in self.chunks]
        self.n_prompts_in_batch = len(self.chunks)
        if not self.batch:
            if was_busy:
                self.busy_s += sim.now - self.run_since
            if not self.pending_prompts and not self.pending:
                sim.scheduler.notify_free(self)
            return
        if not was_busy:
            self.run_since = sim.now
        chunk_tokens = sum(k for _, k in self.chunks)
        nd = len(self.decodes)
        if chunk_tokens and nd:
            dur = self.perf.mixed_time(chunk_tokens, nd)
        elif chunk_tokens:
            dur = self.perf.prompt_time(chunk_tokens)
        else:
            dur = self.perf.token_time(nd)
        self.iter_dur = dur
        n = 1 if chunk_tokens else min([t.target - t.generated for t in self.decodes])
        self.n_contig = n
        self._schedule_completion(dur * n)

    def complete_iteration(self) -> None:
        self.iter_token += 1
        finished = []
        for t in self.decodes:
            t.generated += self.n_contig
            if t.generated >= t.target:
                finished.append(t)
        for t in finished:
            self.decodes.remove(t)
            t.state = COMPLETED
            self.sched_pending_tokens -= 1
            self.free(t.req.memory)
            t.req.memory = 0
            self.sim.finish(t.req)
        for t, take in self.chunks:
            t.remaining -= take
            if t.remaining == 0:
                r = t.req
                self.pending_prompts.remove(t)
                t.state = COMPLETED
                self.sched_pending_tokens -= r.prompt
                r.prompt_end = self.sim.now
                r.ttft = self.sim.now - r.arrival
                if r.ttask is None:
                    self.free(r.memory)
                    r.memory = 0
                    self.sim.finish(r)
        self.paused = False
        self.start_iteration()


# -- cluster schedulers --------------------------------------------------------------------------
class TokenJSQScheduler:
    """Colocated serving: each request goes whole to the machine with the fewest pending
    tokens (prompt tokens + one per request)."""

    def __init__(self, machines: list[Machine]) -> None:
        if not machines:
            raise ValueError("a cluster needs at least one machine")
        self.machines = machines

    def place(self, r: _Request) -> tuple[Machine, Machine]:
        m = min(self.machines, key=_by_pending_tokens)
        m.sched_pending_tokens += r.prompt + 1
        return m, m

    def notify_free(self, m: Machine) -> None:
        pass


_by_pending_tokens = attrgetter("sched_pending_tokens")
_by_sched_memory = attrgetter("sched_memory")


class MixedPoolScheduler:
    """Splitwise's cluster scheduler: a prompt pool, a token pool and a mixed pool.

    The prompt machine is the one with the fewest pending prompt tokens, unless its queue is
    non-empty and would exceed ``prompt_max_pending_tokens``; the token machine is the one
    with the least scheduled KV memory, unless the request would fill it. When a pool has no
    acceptable machine, one is borrowed from the other pool into the mixed pool (it returns
    when it drains); failing all that, the request runs colocated on the least-loaded machine.
    """

    def __init__(self, prompt_machines: list[Machine], token_machines: list[Machine],
                 prompt_max_pending_tokens: int = 8192) -> None:
        if not prompt_machines or not token_machines:
            raise ValueError("Splitwise needs at least one prompt and one token machine")
        self.prompt_pool = list(prompt_machines)
        self.token_pool = list(token_machines)
        self.mixed_pool: list[Machine] = []
        self.max_pending = prompt_max_pending_tokens

    def place(self, r: _Request) -> tuple[Machine, Machine]:
        pmem, tmem = r.ptask.mem, (r.ttask.mem if r.ttask is not None else 0)
        p = None
        for pool in (self.prompt_pool, self.mixed_pool):
            if pool:
                c = min(pool, key=_by_pending_tokens)
                if not (c.pending and c.sched_pending_tokens + r.prompt > self.max_pending):
                    p = c
                    break
        tok = None
        for pool in (self.token_pool, self.mixed_pool):
            if pool:
                c = min(pool, key=_by_sched_memory)
                if c.sched_memory + pmem + tmem < c.max_memory:
                    tok = c
                    break
        if p is None and self.token_pool:
            p = min(self.token_pool, key=_by_pending_tokens)
            self.token_pool.remove(p)
            self.mixed_pool.append(p)
            p.sched_tag = "mixed"
        if tok is None and self.prompt_pool:
            tok = min(self.prompt_pool, key=_by_sched_memory)
            self.prompt_pool.remove(tok)
            self.mixed_pool.append(tok)
            tok.sched_tag = "mixed"
        if p is None or tok is None:
            p = tok = min(self.prompt_pool + self.mixed_pool + self.token_pool,
                          key=_by_pending_tokens)
        if p is not tok:
            p.sched_memory += pmem
            tok.sched_memory += pmem + tmem
        else:
            p.sched_memory += pmem + tmem
        p.sched_pending_tokens += r.prompt
        tok.sched_pending_tokens += 1
        return p, tok

    def notify_free(self, m: Machine) -> None:
        if m.sched_tag == "mixed":
            m.sched_tag = None
            self.mixed_pool.remove(m)
            (self.prompt_pool if m.tag == "prompt" else self.token_pool).append(m)


# -- the event loop ------------------------------------------------------------------------------
@dataclass
class SimResult:
    """Per-request outcome arrays (seconds; NaN where a request did not finish).

    Attributes:
        request_id, arrival_s, prompt_tokens, output_tokens: copied from the trace.
        ttft_s: arrival to prompt end (excludes the KV transfer).
        e2e_s: arrival to last token.
        kv_transfer_s: KV-cache transfer time (0 when prompt and decode ran on one machine).
        token_start_gap_s: prompt end to the first decode iteration (KV transfer + queueing).
        machine_peak_memory: (machines,) highest bytes in use on each machine.
        machine_max_memory: (machines,) capacity of each machine.
        machine_busy_s: (machines,) seconds each machine had a non-empty batch.
        end_time_s: simulated time of the last event.
        index: ``None`` when the per-request arrays are in trace order; for results streamed
            to disk (``simulate(..., out=DIR)``) they are in the order requests were written
            out (completion order, then the unfinished ones) and ``index`` (n,) gives each
            row's position in the trace.
    """

    request_id: np.ndarray
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    ttft_s: np.ndarray
    e2e_s: np.ndarray
    kv_transfer_s: np.ndarray
    token_start_gap_s: np.ndarray
    machine_peak_memory: np.ndarray
    machine_max_memory: np.ndarray
    machine_busy_s: np.ndarray
    end_time_s: float
    index: np.ndarray | None = None

    @property
    def tbt_s(self) -> np.ndarray:
        """(E2E - TTFT) / output tokens, as the reference reports it (includes KV wait)."""
        return (self.e2e_s - self.ttft_s) / self.output_tokens

    @property
    def completed(self) -> int:
        return int(np.isfinite(self.e2e_s).sum())

    def in_trace_order(self) -> SimResult:
        """The same result with its per-request arrays in trace order (loaded into memory)."""
        if self.index is None:
            return self
        order = np.argsort(self.index, kind="stable")
        per_request = {f: np.asarray(getattr(self, f))[order] for f in OUTCOMES}
        return replace(self, **per_request, index=None)


# the per-request fields of a SimResult, in the order a streamed result stores them
OUTCOMES = ("request_id", "arrival_s", "prompt_tokens", "output_tokens", "ttft_s", "e2e_s",
            "kv_transfer_s", "token_start_gap_s")
_MACHINE_FIELDS = ("machine_peak_memory", "machine_max_memory", "machine_busy_s")


class _MemorySink:
    """Per-request outcomes scattered into arrays in trace order."""

    def __init__(self, trace: Trace) -> None:
        n = len(trace)
        self.trace = trace
        self.ttft, self.e2e = np.full(n, np.nan), np.full(n, np.nan)
        self.kv, self.gap = np.zeros(n), np.full(n, np.nan)

    def write(self, index: np.ndarray, ttft: np.ndarray, e2e: np.ndarray, kv: np.ndarray,
              gap: np.ndarray) -> None:
        self.ttft[index], self.e2e[index], self.kv[index], self.gap[index] = ttft, e2e, kv, gap

    def result(self, machines: dict[str, np.ndarray], end_time_s: float) -> SimResult:
        t = self.trace
        return SimResult(request_id=t.request_id, arrival_s=t.arrival_s,
                         prompt_tokens=t.prompt_tokens, output_tokens=t.output_tokens,
                         ttft_s=self.ttft, e2e_s=self.e2e, kv_transfer_s=self.kv,
                         token_start_gap_s=self.gap, **machines, end_time_s=end_time_s)


class _FileSink:
    """Per-request outcomes appended, a chunk at a time, to one ``.npy`` file per field in
    a folder written as ``<out>.partial`` and renamed to ``out`` when complete."""

    def __init__(self, trace: Trace, out: Path) -> None:
        if out.exists():
            raise FileExistsError(f"{out} exists; streamed results go to a new folder")
        self.trace, self.out, self.written = trace, out, 0
        self.tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.files = {}
        for name in ("index", *OUTCOMES):
            dtype = np.dtype(np.int64 if name in _INT_FIELDS else np.float64)
            f = open(self.tmp / f"{name}.npy", "wb")  # closed by result() or discard()
            np.lib.format.write_array_header_1_0(f, {
                "descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                "shape": (len(trace),)})
            self.files[name] = (f, dtype)

    def write(self, index: np.ndarray, ttft: np.ndarray, e2e: np.ndarray, kv: np.ndarray,
              gap: np.ndarray) -> None:
        t = self.trace
        columns = {"index": index, "request_id": t.request_id[index],
                   "arrival_s": t.arrival_s[index], "prompt_tokens": t.prompt_tokens[index],
                   "output_tokens": t.output_tokens[index], "ttft_s": ttft, "e2e_s": e2e,
                   "kv_transfer_s": kv, "token_start_gap_s": gap}
        for name, (f, dtype) in self.files.items():
            f.write(np.ascontiguousarray(columns[name], dtype=dtype).tobytes())
        self.written += len(index)

    def result(self, machines: dict[str, np.ndarray], end_time_s: float) -> SimResult:
        for f, _ in self.files.values():
            f.close()
        if self.written != len(self.trace):
            raise RuntimeError(f"wrote {self.written} of {len(self.trace)} requests")
        np.savez(self.tmp / "machines.npz", **machines, end_time_s=end_time_s)
        self.tmp.rename(self.out)
        return read_results(self.out)

    def discard(self) -> None:
        for f, _ in self.files.values():
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


_INT_FIELDS = ("index", "request_id", "prompt_tokens", "output_tokens")


def read_results(out: str | Path) -> SimResult:
    """A result streamed by ``simulate(..., out=DIR)``: its per-request arrays are read-only
    memory maps of ``DIR/<field>.npy`` (in the order written, ``index`` giving each row's
    position in the trace), the machine arrays and end time from ``DIR/machines.npz``."""
    out = Path(out)
    if not (out / "machines.npz").is_file():
        raise FileNotFoundError(f"{out}: no streamed simulation results (machines.npz missing)")
    columns = {name: np.load(out / f"{name}.npy", mmap_mode="r") for name in ("index", *OUTCOMES)}
    with np.load(out / "machines.npz") as machines:
        rest = {name: machines[name] for name in _MACHINE_FIELDS}
        end = float(machines["end_time_s"])
    return SimResult(**{name: columns[name] for name in OUTCOMES}, **rest, end_time_s=end,
                     index=columns["index"])


class _Sim:
    __slots__ = ("now", "seq", "events", "scheduler", "link", "model", "done", "sink", "rows",
                 "outstanding")

    def __init__(self, sink: _MemorySink | _FileSink, scheduler, link: Link,
                 model: LLM) -> None:
        self.now = 0.0
        self.seq = 0
        self.events: list = []
        self.scheduler, self.link, self.model = scheduler, link, model
        self.done = 0
        self.sink = sink
        self.rows: list[tuple] = []  # finished requests not yet written out
        self.outstanding: dict[int, _Request] = {}  # arrived, not finished

    def push(self, delay: float, fn, arg) -> None:
        self.seq += 1
        heapq.heappush(self.events, (self.now + delay, self.seq, fn, arg))

    def finish(self, r: _Request) -> None:
        del self.outstanding[r.idx]
        self.rows.append((r.idx, r.ttft, self.now - r.arrival, r.kv,
                          r.token_start - r.prompt_end))
        self.done += 1
        if len(self.rows) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        """Hand the finished requests to the sink."""
        if self.rows:
            block = np.array(self.rows, dtype=np.float64)
            self.rows = []
            self.sink.write(block[:, 0].astype(np.int64), *block[:, 1:].T)

    def close(self, arrived: int, n: int) -> None:
        """Write out what is left: requests still running (the outcomes they reached; e2e and
        the token-start gap NaN) and those that never arrived (NaN, no KV transfer)."""
        self.flush()
        for r in self.outstanding.values():
            self.rows.append((r.idx, r.ttft, _NAN, r.kv, _NAN))
            if len(self.rows) >= CHUNK:
                self.flush()
        self.flush()
        for start in range(arrived, n, CHUNK):
            index = np.arange(start, min(start + CHUNK, n), dtype=np.int64)
            nan = np.full(len(index), np.nan)
            self.sink.write(index, nan, nan, np.zeros(len(index)), nan)

    def start_kv_transfer(self, r: _Request) -> None:
        dst = r.dst
        if dst.memory + r.memory <= dst.max_memory:
            dst.alloc(r.memory)
            d = self.link.transfer_time(r.prompt * self.model.kv_bytes_per_token, r.prompt,
                                        r.prompt_iter_s, self.model.num_layers)
            r.kv = d
            self.push(d, self._kv_done, r)
        else:
            self.push(KV_RETRY_S, self.start_kv_transfer, r)

    def _kv_done(self, r: _Request) -> None:
        r.src.free(r.memory)
        r.dst.task_arrival(r.ttask)
        r.src.notify_kv_sent()


def _check_requests_fit(trace: Trace, machines: list[Machine], model: LLM) -> None:
    """``ValueError`` naming the first request whose KV cache (prompt + output tokens) exceeds
    what any machine has beside the weights: it could never be admitted and would silently
    come back NaN (and hold up the requests queued behind it)."""
    if not machines:
        raise ValueError("a cluster needs at least one machine")
    room = max(m.max_memory - m.memory for m in machines)
    need = (trace.prompt_tokens + trace.output_tokens) * model.kv_bytes_per_token
    too_big = need > room
    if too_big.any():
        i = int(np.argmax(too_big))
        raise ValueError(f"{trace.name}: request {i + 1} (prompt {trace.prompt_tokens[i]}, output "
                         f"{trace.output_tokens[i]} tokens) needs {need[i] / 1e9:.1f} GB of KV "
                         f"cache; the roomiest machine has {room / 1e9:.1f} GB beside the weights")


def simulate(trace: Trace, machines: list[Machine],
             scheduler: TokenJSQScheduler | MixedPoolScheduler, model: LLM,
             link: Link, end_time_s: float = float("inf"),
             max_outstanding: int | None = None, out: str | Path | None = None) -> SimResult:
    """Run ``trace`` through a cluster; return per-request latencies.

    Args:
        trace: the requests.
        machines: the cluster's machines (fresh ones: a Machine holds run state).
        scheduler: a :class:`TokenJSQScheduler` or :class:`MixedPoolScheduler` over them.
        model: the served LLM (sets KV bytes per token).
        link: how KV caches move between machines.
        end_time_s: stop the clock here (requests still running get NaN).
        max_outstanding: give up (remaining requests get NaN) once more requests than this
            have arrived but not finished: a search-time guard against simulating hopelessly
            overloaded clusters, whose queues make every iteration slower.
        out: ``None`` to keep the per-request results in memory (arrays in trace order), or a
            new folder to stream them to: one ``.npy`` file per field, appended every
            ``CHUNK`` (65,536) finished requests, so memory holds only the trace and the
            requests in flight. The result's per-request arrays are then read-only memory
            maps of those files in the order written (:attr:`SimResult.index`; the folder
            is ``<out>.partial`` until complete; :func:`read_results` opens it again).
    """
    if not isinstance(trace, Trace):
        raise TypeError(f"trace must be a Trace, got {type(trace).__name__}")
    if end_time_s != end_time_s or end_time_s <= 0:
        raise ValueError(f"end_time_s must be a positive number of seconds, got {end_time_s}")
    if max_outstanding is not None and max_outstanding < 0:
        raise ValueError(f"max_outstanding must be >= 0 or None, got {max_outstanding}")
    n = len(trace)
    for m in machines:
        if m.sim is not None:
            raise ValueError(f"machine {m.mid} was already used in a simulation; build fresh "
                             f"machines for each run")
    _check_requests_fit(trace, machines, model)
    sink = _MemorySink(trace) if out is None else _FileSink(trace, Path(out))
    try:
        sim = _Sim(sink, scheduler, link, model)
        for m in machines:
            m.sim = sim
        arrived = _run(sim, trace, end_time_s, max_outstanding)
        sim.close(arrived, n)
        stats = {"machine_peak_memory": np.array([m.peak_memory for m in machines],
                                                 dtype=np.float64),
                 "machine_max_memory": np.array([m.max_memory for m in machines],
                                                dtype=np.float64),
                 "machine_busy_s": np.array([m.busy_s for m in machines], dtype=np.float64)}
        return sink.result(stats, sim.now)
    except BaseException:
        if isinstance(sink, _FileSink):
            sink.discard()
        raise


def _run(sim: _Sim, trace: Trace, end_time_s: float, max_outstanding: int | None) -> int:
    """The event loop; returns how many requests arrived. The trace is read ``CHUNK``
    requests at a time (Python numbers for the chunk only)."""
    kv_tok = sim.model.kv_bytes_per_token
    events = sim.events
    pop = heapq.heappop
    place = sim.scheduler.place
    arrive = sim.outstanding.__setitem__
    n = len(trace)
    i = 0
    for begin in range(0, n, CHUNK):
        end = min(begin + CHUNK, n)
        chunk = zip(trace.arrival_s[begin:end].tolist(), trace.prompt_tokens[begin:end].tolist(),
                    trace.output_tokens[begin:end].tolist(), strict=True)
        for ta, p, o in chunk:
            while events and events[0][0] < ta:
                if events[0][0] >= end_time_s:
                    return i
                t, _, fn, arg = pop(events)
                sim.now = t
                fn(arg)
            if ta >= end_time_s or (max_outstanding is not None
                                    and i - sim.done > max_outstanding):
                return i
            sim.now = ta
            r = _Request(i, ta, p, o)
            r.ptask = _Task(PROMPT, r, p, (p + 1) * kv_tok, 1)
            r.ttask = _Task(TOKEN, r, 1, (o - 1) * kv_tok, o - 1) if o > 1 else None
            arrive(i, r)
            i += 1
            src, dst = place(r)
            r.src, r.dst = src, dst
            src.task_arrival(r.ptask)
            if dst is src and r.ttask is not None:
                src.task_arrival(r.ttask)
    while events and events[0][0] < end_time_s:
        t, _, fn, arg = pop(events)
        sim.now = t
        fn(arg)
    return i
