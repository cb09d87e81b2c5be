"""Work over every stored contact, shared among processes by contact-id range.

A full rescore is CPU bound in Python (scoring, JSON), so one process uses one core. The live
contacts are cut into id ranges of about equal size (`StateStore.split_live_ids`); each range
runs in a forked process with its own connection to the state DB (WAL: readers run side by
side, and each writer's short transactions wait for the others through the busy timeout).
Results come back pickled, so a job returns a summary, never per-contact objects.

One process (the caller's, with the caller's store) when `workers` is 1, when the contacts are
too few to be worth a process, where `fork` is not available, and wherever forking is unsafe:
called from any thread but the main one, or while this process runs threads that may hold
locks (`single_process()`: the `run` worker's scheduler, HTTP and webhook threads). A fork
copies only the calling thread; a lock another thread held at that moment (logging, the
scheduler's, SQLite's) stays held forever in the child, which then hangs.

Progress: a job calls `tick(n)` as it finishes `n` more contacts; `by_id_range(progress=...)`
hears the sum of every process's ticks. Each range adds to its own slot of an array in shared
memory, without a lock (one writer per slot: a worker killed mid-update blocks nobody), and
the caller polls the sum.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

from connector.state.store import StateStore

T = TypeVar("T")

# below this many live contacts a rescore takes about a second: processes are not worth it
MIN_CONTACTS_PER_WORKER = 20_000

# the job of the pool being run, inherited by its forked workers (never pickled)
_JOB: tuple[Callable[[StateStore, str, str], object], str, float] | None = None
# where a job's `tick` goes: the caller's progress callback, or (in a worker) the shared counter
_TICK: Callable[[int], None] | None = None
_DONE: Any = None  # a by_id_range's shared array: contacts finished per range
PROGRESS_POLL_S = 0.25
# why this process must not fork now (one entry per `single_process` in force)
_NO_FORK: list[str] = []
_NO_FORK_LOCK = threading.Lock()

log = logging.getLogger(__name__)


@contextmanager
def single_process(reason: str) -> Iterator[None]:
    """While in force, `by_id_range` runs every range in the caller's process: this process
    has threads that must not be forked (`reason` names them)."""
    with _NO_FORK_LOCK:
        _NO_FORK.append(reason)
    try:
        yield
    finally:
        with _NO_FORK_LOCK:
            _NO_FORK.remove(reason)


def fork_unsafe() -> str | None:
    """Why forking from here is unsafe now, or None when it is safe."""
    if threading.current_thread() is not threading.main_thread():
        return f"called from thread {threading.current_thread().name!r}"
    with _NO_FORK_LOCK:
        return _NO_FORK[-1] if _NO_FORK else None


def tick(n: int) -> None:
    """A job's report that it finished `n` more contacts (a no-op when nobody listens)."""
    if _TICK is not None:
        _TICK(n)


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def plan_workers(store: StateStore, crm: str, workers: int | None) -> int:
    """How many processes a rescore of `crm` uses: `workers` (None: every core), fewer when
    there are fewer than `MIN_CONTACTS_PER_WORKER` contacts per process."""
    wanted = _forkable(workers)
    if wanted == 1:
        return 1
    return max(1, min(wanted, store.count_contacts(crm) // MIN_CONTACTS_PER_WORKER))


def _forkable(workers: int | None) -> int:
    """`workers` (None: every core), or 1 where this process cannot fork safely."""
    wanted = default_workers() if workers is None else workers
    if wanted < 1:
        raise ValueError("workers must be >= 1")
    if wanted == 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    unsafe = fork_unsafe()
    if unsafe is not None:
        log.info("rescoring in one process, not %d: %s", wanted, unsafe)
        return 1
    return wanted


def plan_processes(workers: int | None, items: int, min_per_process: int) -> int:
    """How many processes `forked` should use for `items` pieces of work: `workers` (None:
    every core), fewer when there are fewer than `min_per_process` items per process, 1
    where forking is unsafe."""
    wanted = _forkable(workers)
    return 1 if wanted == 1 else max(1, min(wanted, items // max(1, min_per_process)))


# the job of the `forked` call being run, inherited by its forked workers (never pickled)
_PART_JOB: Callable[[int], object] | None = None


def forked(job: Callable[[int], T], pieces: int, processes: int) -> Iterator[T]:
    """`job(0)`, ..., `job(pieces - 1)` in `processes` forked processes (from
    `plan_processes`), yielded in order as they come: the caller works on the first while
    the processes make the rest. The results come back pickled, so keep them flat (tuples of
    plain values pickle ~10x faster than records). A job must not touch the caller's
    database connection (SQLite's must not cross a fork): it opens its own, or works on what
    the caller read before. A job's exception is raised here; the pieces not started yet are
    dropped."""
    global _PART_JOB
    if processes == 1:
        yield from map(job, range(pieces))
        return
    ctx = multiprocessing.get_context("fork")
    _PART_JOB = job
    pool = ProcessPoolExecutor(max_workers=processes, mp_context=ctx)
    try:
        futures = [pool.submit(_run_part, i) for i in range(pieces)]
        for f in futures:
            yield f.result()  # type: ignore[misc]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _PART_JOB = None


def _run_part(i: int) -> object:
    assert _PART_JOB is not None, "a forked job runs only in a forked process"
    gc.freeze()  # the parent's heap came with the fork: keep the collector off it
    return _PART_JOB(i)


def by_id_range(
    store: StateStore,
    crm: str,
    job: Callable[[StateStore, str, str], T],
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[T]:
    """`job(store, after, upto)` for each id range `(after, upto]` of the live contacts, in id
    order. Each range runs in its own process (with its own `StateStore` on the same file) when
    `plan_workers` says so; in this process with `store` otherwise. A job's exception is
    raised here, after every range has ended. `progress(n)`: `n` more contacts done (what
    the jobs `tick`), called in this process."""
    global _JOB, _TICK, _DONE
    n = plan_workers(store, crm, workers)
    ranges = store.split_live_ids(crm, n)
    if n == 1 or len(ranges) == 1:
        _TICK = progress
        collector = gc.get_threshold()
        gc.set_threshold(*_BULK_GC)  # as in a worker (`_run`), for the job's length
        try:
            return [job(store, after, upto) for after, upto in ranges]
        finally:
            gc.set_threshold(*collector)
            _TICK = None
    ctx = multiprocessing.get_context("fork")
    _DONE = ctx.RawArray("q", len(ranges))  # contacts finished, per range
    _JOB, _TICK = (job, store.path, store.busy_timeout), None
    try:
        with ProcessPoolExecutor(max_workers=len(ranges), mp_context=ctx) as pool:
            futures = [pool.submit(_run, after, upto, i) for i, (after, upto) in enumerate(ranges)]
            heard = 0
            while True:
                _, running = wait(futures, timeout=PROGRESS_POLL_S, return_when=FIRST_EXCEPTION)
                now_done = sum(_DONE)
                if progress is not None and now_done > heard:
                    progress(now_done - heard)
                    heard = now_done
                if not running or any(f.done() and f.exception() for f in futures):
                    break
            errors = [f.exception() for f in futures]
            for error in errors:
                if error is not None:
                    raise error
            return [f.result() for f in futures]  # type: ignore[misc]
    finally:
        _JOB, _TICK, _DONE = None, None, None


# the collector's thresholds while a job runs: it allocates millions of short-lived objects
# (freed by reference counting) beside the long-lived memos of the scoring core, which every
# full collection walks (~15% of a one-process rescore's time at the default thresholds)
_BULK_GC = (50_000, 20, 100)


def _run(after: str, upto: str, slot: int) -> object:
    assert _JOB is not None, "a by_id_range worker runs only in a forked process"
    job, path, busy_timeout = _JOB
    global _TICK
    done = _DONE
    assert done is not None

    def add(k: int) -> None:  # this range's own slot: no other process writes it
        done[slot] += k

    _TICK = add
    # the parent's heap came with the fork: keep the collector off it, and let it run less
    # often (a job holds one batch of contacts; its garbage is freed by reference counting)
    gc.freeze()
    gc.set_threshold(*_BULK_GC)
    # a range rewrites most of its contacts' score rows: `bulk` checkpoints the WAL less often
    with StateStore.open(path, busy_timeout=busy_timeout, bulk=True) as store:
        return job(store, after, upto)
