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
_JOB: tuple[Callable[[StateStore, int], object], str, float] | None = None
# where a job's `tick` goes: the caller's progress callback, or (in a worker) the shared counter
_TICK: Callable[[int], None] | None = None
_DONE: Any = None  # a by_piece's shared array: contacts finished per piece
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
    n = plan_workers(store, crm, workers)
    ranges = store.split_live_ids(crm, n)

    def piece(st: StateStore, i: int) -> T:
        return job(st, *ranges[i])

    return by_piece(store, piece, len(ranges), min(n, len(ranges)), progress)


def by_piece(
    store: StateStore,
    job: Callable[[StateStore, int], T],
    pieces: int,
    processes: int,
    progress: Callable[[int], None] | None = None,
) -> list[T]:
    """`job(store, i)` for i in `range(pieces)`, in `processes` forked processes (each piece
    with a `StateStore` of its own on the same file; `plan_workers` says how many), or in
    this process with `store` when `processes` is 1. The results in piece order; a job's
    exception is raised here, after every piece has ended. `progress(n)`: `n` more contacts
    done (what the jobs `tick`), called in this process."""
    global _JOB, _TICK, _DONE
    if processes <= 1 or pieces <= 1:
        _TICK = progress
        collector = gc.get_threshold()
        gc.set_threshold(*_BULK_GC)  # as in a worker (`_run`), for the job's length
        try:
            return [job(store, i) for i in range(pieces)]
        finally:
            gc.set_threshold(*collector)
            _TICK = None
    ctx = multiprocessing.get_context("fork")
    _DONE = ctx.RawArray("q", pieces)  # contacts finished, per piece
    _JOB, _TICK = (job, store.path, store.busy_timeout), None
    try:
        with ProcessPoolExecutor(max_workers=processes, mp_context=ctx) as pool:
            futures = [pool.submit(_run, i) for i in range(pieces)]
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


def _run(slot: int) -> object:
    assert _JOB is not None, "a by_piece worker runs only in a forked process"
    job, path, busy_timeout = _JOB
    global _TICK
    done = _DONE
    assert done is not None

    def add(k: int) -> None:  # this piece's own slot: no other process writes it
        done[slot] += k

    _TICK = add
    # the parent's heap came with the fork: keep the collector off it, and let it run less
    # often (a job holds one batch of contacts; its garbage is freed by reference counting)
    gc.freeze()
    gc.set_threshold(*_BULK_GC)
    # a piece rewrites most of its contacts' score rows: `bulk` checkpoints the WAL less often
    with StateStore.open(path, busy_timeout=busy_timeout, bulk=True) as store:
        return job(store, slot)
