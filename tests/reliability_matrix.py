"""The reliability matrix: every fault, crash, bad input and security property the worker is
proven to survive, each a scenario that runs against the HubSpot sandbox over real HTTP, checks
the outcome strictly and returns one row (what was tried, how many, what happened).

`tests/test_reliability_*.py` and `tests/test_security.py` run every scenario (one test each,
so `pytest -n 2` spreads them) and require its row to equal the one in `docs/reliability.md`.
This script writes that file; nothing in the test suite writes it, so parallel runs cannot
corrupt it::

    .venv/bin/python tests/reliability_matrix.py            # run every scenario, write the doc
    .venv/bin/python tests/reliability_matrix.py --check    # exit 1 if the doc is stale
    .venv/bin/python tests/reliability_matrix.py --only NAME

Internally, `python tests/reliability_matrix.py child HOOK ARGS...` is a `leadscore` process
(the real CLI entry point) that SIGKILLs itself at HOOK (`commit:N`: in the middle of the N-th
SQLite transaction, before its COMMIT) - for the kill points a request count cannot reach.

Every number in a row is deterministic: fixed seeds, a fixed clock, a sequential client.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from connector.crm.hubspot import HubSpotAdapter  # noqa: E402
from connector.enrich.enricher import build_enricher  # noqa: E402
from connector.model.loader import LoadedModel, load_model  # noqa: E402
from connector.pipeline import Pipeline, SyncOptions, SyncSummary  # noqa: E402
from connector.retry import RetryPolicy  # noqa: E402
from connector.sandbox.base import Faults, Request, Response  # noqa: E402
from connector.sandbox.demo_portal import build_demo_portal  # noqa: E402
from connector.sandbox.hubspot import HubSpotSandbox  # noqa: E402
from connector.settings import Settings, load_settings  # noqa: E402
from connector.state.base import StoreBase  # noqa: E402
from connector.state.store import StateStore  # noqa: E402
from connector.types import event_record_id  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CRM = "hubspot"
SEED = 20261101
WRITE_BATCH = 10  # the demo portal's 54 live contacts make 6 write batches
PAGE_SIZE = 20  # and 3 search pages
EVENT_PAGE = 500  # and 4 events pages
MAX_SYNCS = 12  # "until quiescent": more than this is a failure
BATCH_UPDATE = "/crm/v3/objects/contacts/batch/update"
SEARCH = "/crm/v3/objects/contacts/search"
HTML_PAGE = "<html><head><title>Proxy</title></head><body>Please sign in to the proxy</body></html>"


# ------------------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Row:
    area: str
    case: str
    tried: str
    outcome: str
    problems: tuple[str, ...] = ()
    gaps: tuple[str, ...] = ()  # known open issues the row states (their tests xfail)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        cells = (self.area, self.case, self.tried, self.outcome)
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


@dataclass(frozen=True)
class Scenario:
    name: str
    area: str
    run: Callable[[Path], Row]


SCENARIOS: dict[str, Scenario] = {}
AREAS = ("Faults", "Crashes", "Bad input", "Security")


def scenario(area: str) -> Callable[[Callable[[Path], Row]], Callable[[Path], Row]]:
    def register(fn: Callable[[Path], Row]) -> Callable[[Path], Row]:
        name = fn.__name__
        assert name not in SCENARIOS, name
        SCENARIOS[name] = Scenario(name, area, fn)
        return fn

    return register


class Checks:
    """Collects failed expectations; a scenario's row carries them (a test shows them all)."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def expect(self, condition: object, message: str) -> bool:
        if not condition:
            self.problems.append(message)
        return bool(condition)

    def equal(self, got: object, want: object, what: str) -> bool:
        if got == want:
            return True
        self.problems.append(f"{what}: {_diff(got, want)}")
        return False

    def row(
        self, area: str, case: str, tried: str, outcome: str, gaps: tuple[str, ...] = ()
    ) -> Row:
        return Row(area, case, tried, outcome, tuple(self.problems), gaps)


def _diff(got: object, want: object) -> str:
    if isinstance(got, dict) and isinstance(want, dict):
        keys = sorted(set(got) | set(want), key=str)
        bad = [k for k in keys if got.get(k) != want.get(k)]
        return f"{len(bad)} key(s) differ, e.g. " + "; ".join(
            f"{str(k)[:60]!r}: {_diff(got.get(k), want.get(k))}" for k in bad[:3]
        )
    if isinstance(got, list) and isinstance(want, list):
        extra = [x for x in got if x not in want]
        missing = [x for x in want if x not in got]
        return f"unexpected {str(extra[:2])[:400]}; missing {str(missing[:2])[:400]}"
    return f"got {str(got)[:300]} want {str(want)[:300]}"


# ---------------------------------------------------------------------------------- the rig


@functools.cache
def _demo_fixture() -> str:
    return json.dumps(build_demo_portal())


def demo_portal() -> dict[str, Any]:
    portal: dict[str, Any] = json.loads(_demo_fixture())
    return portal


@contextlib.contextmanager
def sandbox(
    portal: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = NOW,
    token: str = "demo-token",
    faults: Faults | None = None,
) -> Iterator[HubSpotSandbox]:
    """The demo portal on loopback, our properties created, an empty request log."""
    with HubSpotSandbox.start(
        copy.deepcopy(dict(portal)) if portal is not None else demo_portal(),
        now=now,
        token=token,
        rate_limit=100_000,
        search_rate_limit=100_000,
        time_scale=0.01,
    ) as sb:
        setup = HubSpotAdapter(SecretStr(token), sb.url, timeout_s=5)
        try:
            setup.ensure_properties()
        finally:
            setup.close()
        sb.clear_log()
        if faults is not None:
            sb.faults = faults
        yield sb


@functools.cache
def _model() -> LoadedModel:
    return load_model()


@functools.cache
def _settings() -> Settings:
    return load_settings(pdl_api_key=None, apollo_api_key=None)


@dataclass
class Rig:
    sb: HubSpotSandbox
    adapter: HubSpotAdapter
    store: StateStore
    pipeline: Pipeline
    db_path: Path

    def close(self) -> None:
        self.adapter.close()
        self.store.close()


def rig(
    sb: HubSpotSandbox,
    db_path: Path,
    *,
    timeout_s: float = 5.0,
    clock: Callable[[], datetime] = lambda: NOW,
    token: str | None = None,
) -> Rig:
    adapter = HubSpotAdapter(
        SecretStr(token or sb.token),
        sb.url,
        timeout_s=timeout_s,
        retry=RetryPolicy(attempts=4, base_seconds=0.01, max_seconds=0.05, seed=1),
        page_size=PAGE_SIZE,
        event_page_size=EVENT_PAGE,
        write_batch=WRITE_BATCH,
        search_per_second=100_000,
    )
    db_path.parent.mkdir(parents=True, exist_ok=True)
    store = StateStore.open(db_path)
    pipeline = Pipeline(
        store,
        adapter,
        _model(),
        enricher=build_enricher(_settings(), cache=store.company_cache),
        options=SyncOptions(),
        clock=clock,
    )
    return Rig(sb, adapter, store, pipeline, db_path)


BACKFILL_SINCE = NOW - timedelta(days=400)  # the demo portal's whole history


def run_job(r: Rig, job: str) -> SyncSummary:
    """One run of `job`: "sync", or "backfill" (resumes an unfinished one of the same window)."""
    if job == "backfill":
        from connector.worker.backfill import run_backfill

        return run_backfill(r.pipeline, BACKFILL_SINCE, NOW).summary
    return r.pipeline.sync()


def sync_until_quiescent(r: Rig, job: str = "sync") -> list[SyncSummary]:
    """Run until a run ends ok with no pending write and no write in flight."""
    runs: list[SyncSummary] = []
    for _ in range(MAX_SYNCS):
        s = run_job(r, job)
        runs.append(s)
        if (
            s.status == "ok"
            and not r.store.pending_write_ids(CRM)
            and not r.store.writes_in_flight(CRM)
        ):
            break
    return runs


# ------------------------------------------------------------------------------ final state


def crm_state(sb: HubSpotSandbox, *, mask_time: bool = False) -> dict[str, dict[str, str]]:
    """Every contact's leadscore_* properties and lifecycle stage, as the sandbox stores them."""
    out: dict[str, dict[str, str]] = {}
    with sb.portal.lock:
        for cid, rec in sb.portal.contacts.items():
            props = {
                k: str(v)
                for k, v in rec.properties.items()
                if k.startswith("leadscore_") or k == "lifecyclestage"
            }
            if mask_time and "leadscore_scored_at" in props:
                props["leadscore_scored_at"] = "<time>"
            out[cid] = props
    return out


def db_state(store: StateStore, *, mask_time: bool = False) -> dict[str, Any]:
    """What a sync must end with in the state DB: scores, values written, contacts, events."""
    q = store.db.execute
    scores = [list(r) for r in q("SELECT * FROM scores ORDER BY crm, contact_id").fetchall()]
    written = q(
        "SELECT contact_id, property, value FROM written ORDER BY contact_id, property"
    ).fetchall()
    contacts = q(
        "SELECT id, email, lifecycle_stage, mql_at, archived_at IS NOT NULL, merged_into "
        "FROM contacts ORDER BY id"
    ).fetchall()
    events = q(
        "SELECT count(*), group_concat(source || ':' || source_id || '>' || contact_id, ',') "
        "FROM (SELECT * FROM events ORDER BY source, source_id)"
    ).fetchone()
    if mask_time:  # runs in real time (subprocesses): when it happened differs, nothing else
        cols = [d[1] for d in q("PRAGMA table_info(scores)").fetchall()]
        for row in scores:  # the portal is shifted to each sandbox's own start time
            row[cols.index("scored_at")] = "<time>"
            if row[cols.index("next_change_at")] is not None:
                row[cols.index("next_change_at")] = "<time>"
        written = [(c, p, "<time>" if p == "scored_at" else v) for c, p, v in written]
        contacts = [(i, e, s, "<time>" if m else None, a, g) for i, e, s, m, a, g in contacts]
    return {
        "scores": [tuple(r) for r in scores],
        "written": [tuple(r) for r in written],
        "contacts": [tuple(r) for r in contacts],
        "events": tuple(events),
        "pending": store.pending_write_ids(CRM),
        "in_flight": sorted(store.writes_in_flight(CRM)),
        "open_write_dead_letters": sorted(
            d.contact_id or "" for d in store.open_dead_letters(CRM, "write")
        ),
    }


def applied_writes(sb: HubSpotSandbox, *, mask_time: bool = False) -> Counter[str]:
    """Each batch-update input the sandbox applied (200, or applied before a dropped or late
    answer), as `id {properties}`: a write applied twice counts 2."""
    applied: Counter[str] = Counter()
    for r in sb.requests:
        if r.path.rstrip("/") != BATCH_UPDATE or not isinstance(r.body, dict):
            continue
        if r.status != 200 and r.fault not in ("drop_after_apply", "slow"):
            continue
        for item in r.body.get("inputs", []):
            props = dict(item.get("properties", {}))
            if mask_time:
                props.pop("leadscore_scored_at", None)
            applied[f"{item.get('id')} {json.dumps(props, sort_keys=True)}"] += 1
    return applied


def faults_seen(sb: HubSpotSandbox) -> Counter[str]:
    names = {"error": "5xx", "burst_429": "429", "drop": "dropped", "slow": "timed out"}
    names["drop_after_apply"] = "applied+dropped"
    return Counter(names[r.fault] for r in sb.requests if r.fault)


def _fmt(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counter.items(), key=lambda kv: kv[0]))


@dataclass
class Reference:
    crm: dict[str, dict[str, str]]
    db: dict[str, Any]
    applied: Counter[str]
    requests: int  # API requests of the first (full) sync
    commits: int  # SQLite transactions of the first sync
    written: int


@functools.cache
def clean_reference(job: str = "sync") -> Reference:
    """The clean run (of `job`, then an idle sync) every faulted or crashed one must equal."""
    with tempfile.TemporaryDirectory(prefix="leadscore-clean-") as tmp, sandbox() as sb:
        r = rig(sb, Path(tmp) / "state.db")
        try:
            commits = [0]
            real_commit = r.store._commit

            def counting_commit() -> None:
                commits[0] += 1
                real_commit()

            r.store._commit = counting_commit  # type: ignore[method-assign]
            first = run_job(r, job)
            assert first.status == "ok", first.message
            requests, first_commits = len(sb.requests), commits[0]
            runs = sync_until_quiescent(r)
            assert len(runs) == 1 and runs[-1].written == 0, "the clean idle resync wrote"
            return Reference(
                crm_state(sb),
                db_state(r.store),
                applied_writes(sb),
                requests,
                first_commits,
                first.written,
            )
        finally:
            r.close()


def compare_to_clean(
    c: Checks, sb: HubSpotSandbox, store: StateStore, *, label: str = "", job: str = "sync"
) -> None:
    ref = clean_reference(job)
    pre = f"{label}: " if label else ""
    c.equal(crm_state(sb), ref.crm, f"{pre}CRM state differs from the clean run")
    c.equal(db_state(store), ref.db, f"{pre}state DB differs from the clean run")
    c.equal(
        applied_writes(sb),
        ref.applied,
        f"{pre}writes the CRM applied differ from the clean run (each exactly once)",
    )


def idle_check(c: Checks, r: Rig, label: str = "") -> None:
    """After quiescence, with faults off: one more sync writes nothing."""
    r.sb.faults = Faults()
    before = len(applied_writes(r.sb))
    s = r.pipeline.sync()
    c.expect(s.status == "ok" and s.written == 0, f"{label} idle resync: {s.line()}")
    c.equal(len(applied_writes(r.sb)), before, f"{label} idle resync applied writes")


# ------------------------------------------------------------------------------------ faults


FAULT_SEEDS = range(SEED, SEED + 5)


def _fault_run(
    tmp: Path, make: Callable[[int], Faults], *, timeout_s: float = 5.0
) -> tuple[Checks, str, str]:
    """A full sync of the demo portal under `make(seed)` for each of the seeds, synced until
    quiescent; then, faults off, one idle sync; the end state must equal the clean run's."""
    c = Checks()
    ref = clean_reference()
    seen: Counter[str] = Counter()
    syncs = reads = 0
    for seed in FAULT_SEEDS:
        with sandbox(faults=make(seed)) as sb:
            r = rig(sb, tmp / str(seed) / "state.db", timeout_s=timeout_s)
            try:
                runs = sync_until_quiescent(r)
                syncs += len(runs)
                seen += faults_seen(sb)
                reads += sum(1 for x in sb.requests if x.path.endswith("/batch/read"))
                c.expect(
                    runs[-1].status == "ok", f"seed {seed}: never quiescent: {runs[-1].line()}"
                )
                idle_check(c, r, f"seed {seed}")
                compare_to_clean(c, sb, r.store, label=f"seed {seed}")
            finally:
                r.close()
    c.expect(sum(seen.values()) > 0, "no fault was injected")
    tried = (
        f"{len(FAULT_SEEDS)} seeded full syncs ({syncs} runs), {sum(seen.values())} faults "
        f"injected ({_fmt(seen)})"
    )
    outcome = (
        f"final CRM and state DB equal the clean run's; each of the {ref.written} writes "
        "applied exactly once; 0 open dead letters"
    )
    if reads:
        outcome += f"; {reads} read-back(s) of writes left without an answer, before any resend"
    return c, tried, outcome


@scenario("Faults")
def faults_5xx(tmp: Path) -> Row:
    c, tried, outcome = _fault_run(tmp, lambda s: Faults(seed=s, error_rate=0.1))
    return c.row("Faults", "10% 5xx on every call (500 JSON, 502/503 HTML pages)", tried, outcome)


@scenario("Faults")
def faults_timeouts(tmp: Path) -> Row:
    c, tried, outcome = _fault_run(
        # 1 s: past the 2 s delays, and far enough above an honest answer that a loaded
        # machine times none out (at 0.5 s one did, and the row moved)
        tmp,
        lambda s: Faults(seed=s, slow_rate=0.1, slow_seconds=2.0),
        timeout_s=1.0,
    )
    return c.row(
        "Faults",
        "10% answers 2 s late, past the adapter's 1 s timeout (applied all the same)",
        tried,
        outcome,
    )


@scenario("Faults")
def faults_drops(tmp: Path) -> Row:
    c, tried, outcome = _fault_run(tmp, lambda s: Faults(seed=s, drop_rate=0.1))
    return c.row("Faults", "10% dropped connections (no answer, not applied)", tried, outcome)


@scenario("Faults")
def faults_drop_after_apply(tmp: Path) -> Row:
    c, tried, outcome = _fault_run(
        tmp,
        lambda s: Faults(
            seed=s, drop_after_apply_rate=0.5, methods=("POST",), path_prefixes=(BATCH_UPDATE,)
        ),
    )
    return c.row(
        "Faults",
        "50% of write batches applied by HubSpot, then the connection dropped",
        tried,
        outcome,
    )


@scenario("Faults")
def faults_429_bursts(tmp: Path) -> Row:
    c, tried, outcome = _fault_run(
        tmp, lambda s: Faults(seed=s, burst_429_every=4, burst_429_length=3)
    )
    return c.row("Faults", "ten-secondly 429 bursts (3 in a row, every 4th call)", tried, outcome)


@scenario("Faults")
def faults_everything(tmp: Path) -> Row:
    c, tried, outcome = _fault_run(
        tmp,
        lambda s: Faults(
            seed=s,
            error_rate=0.1,
            slow_rate=0.05,
            slow_seconds=2.0,
            drop_rate=0.05,
            drop_after_apply_rate=0.05,
            burst_429_every=7,
            burst_429_length=2,
        ),
        # past the injected 2 s delays, and far enough above an honest answer that a busy
        # machine (a loaded CI runner) times none out: at 0.5 s one did, and the row moved
        timeout_s=1.0,
    )
    return c.row("Faults", "all of the above at once", tried, outcome)


@scenario("Faults")
def faults_retries_exhausted(tmp: Path) -> Row:
    c, tried, outcome = _fault_run(tmp, lambda s: Faults(seed=s, error_rate=0.5))
    return c.row(
        "Faults",
        "50% 5xx: retries run out, runs stop; the persisted backlog is finished by later runs",
        tried,
        outcome,
    )


# ----------------------------------------------------------------------------------- crashes


class Crash(BaseException):
    """Stands for SIGKILL in-process: nothing catches it and no cleanup runs that matters,
    because the DB files were copied at the instant of the 'kill'."""


def snapshot_db(db: Path, dest: Path) -> None:
    """What a SIGKILL leaves on disk: the DB and its WAL as they are now (uncommitted frames
    in the WAL are ignored when SQLite opens it again)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        src = Path(f"{db}{suffix}")
        if src.exists():
            shutil.copyfile(src, Path(f"{dest}{suffix}"))


Arm = Callable[[Rig, Callable[[], None]], None]


def _crash_and_recover(tmp: Path, arm: Arm, job: str = "sync") -> Checks:
    """One crash: a run of `job` 'killed' where `arm` says, then a new process on what it
    left runs `job` again until done; then an idle sync; the end must equal the clean run."""
    c = Checks()
    with sandbox() as sb:
        first = rig(sb, tmp / "run1" / "state.db")
        after = tmp / "run2" / "state.db"
        crashed = [False]

        def kill() -> None:
            snapshot_db(first.db_path, after)
            crashed[0] = True
            raise Crash

        arm(first, kill)
        try:
            run_job(first, job)
        except BaseException:  # the Crash, or what cleanup code made of it: the process is gone
            if not crashed[0]:
                raise
        finally:
            with contextlib.suppress(Exception):
                first.close()
        c.expect(crashed[0], "the crash point was never reached")
        second = rig(sb, after)
        try:
            runs = sync_until_quiescent(second, job)
            c.expect(runs[-1].status == "ok", f"never quiescent: {runs[-1].line()}")
            idle_check(c, second)
            compare_to_clean(c, sb, second.store, job=job)
        finally:
            second.close()
    return c


def _request_hook(when: str, n: int) -> Arm:
    def arm(r: Rig, kill: Callable[[], None]) -> None:
        real = r.adapter._call_once
        count = [0]

        def hooked(kind: str, fn: Callable[[], Any], *, search: bool = False) -> Any:
            count[0] += 1
            if count[0] == n and when == "before":
                kill()
            result = real(kind, fn, search=search)
            if count[0] == n and when == "after":
                kill()  # the CRM answered (and applied a write); we die before recording it
            return result

        r.adapter._call_once = hooked  # type: ignore[method-assign]

    return arm


def _commit_hook(n: int) -> Arm:
    def arm(r: Rig, kill: Callable[[], None]) -> None:
        real = r.store._commit
        count = [0]

        def hooked() -> None:
            count[0] += 1
            if count[0] == n:
                kill()  # mid-transaction: its work is not committed
            real()

        r.store._commit = hooked  # type: ignore[method-assign]

    return arm


def _crash_matrix(tmp: Path, points: list[tuple[str, Arm]], job: str = "sync") -> Checks:
    c = Checks()
    for label, arm in points:
        one = _crash_and_recover(tmp / label.replace(" ", "_"), arm, job)
        c.problems.extend(f"{label}: {p}" for p in one.problems)
    return c


def _request_points(job: str) -> list[tuple[str, Arm]]:
    """After every request (the nasty point: answered, maybe applied, not recorded) and
    before every other one."""
    n = clean_reference(job).requests
    return [
        (f"{when} request {i}", _request_hook(when, i))
        for i in range(1, n + 1)
        for when in ("before", "after")
        if when == "after" or i % 2
    ]


def _commit_points(job: str) -> list[tuple[str, Arm]]:
    n = clean_reference(job).commits
    return [(f"commit {i}", _commit_hook(i)) for i in sorted({1, 2, *range(3, n + 1, 3), n})]


@scenario("Crashes")
def crash_before_each_request(tmp: Path) -> Row:
    n = clean_reference().requests
    c = _crash_matrix(
        tmp, [(f"before request {i}", _request_hook("before", i)) for i in range(1, n + 1)]
    )
    return c.row(
        "Crashes",
        "killed before each API request of a sync (between pages, between write batches)",
        f"{n} kill points, 1 restart each",
        "restart ends equal to the clean run; no write applied twice",
    )


@scenario("Crashes")
def crash_after_each_request(tmp: Path) -> Row:
    n = clean_reference().requests
    c = _crash_matrix(
        tmp, [(f"after request {i}", _request_hook("after", i)) for i in range(1, n + 1)]
    )
    return c.row(
        "Crashes",
        "killed after each API request was answered (a write applied), before the answer was "
        "recorded",
        f"{n} kill points, 1 restart each",
        "restart ends equal to the clean run; unrecorded writes are read back, not resent",
    )


@scenario("Crashes")
def crash_mid_transaction(tmp: Path) -> Row:
    points = _commit_points("sync")
    c = _crash_matrix(tmp, points)
    return c.row(
        "Crashes",
        "killed in the middle of a SQLite transaction (page + cursor, scores, write outcomes)",
        f"{len(points)} of the sync's {clean_reference().commits} transactions, 1 restart each",
        "the open transaction is lost whole; restart ends equal to the clean run",
    )


@scenario("Crashes")
def crash_backfill(tmp: Path) -> Row:
    requests, commits = _request_points("backfill"), _commit_points("backfill")
    c = _crash_matrix(tmp, requests + commits, "backfill")
    ref = clean_reference("backfill")
    return c.row(
        "Crashes",
        "`backfill` (400 days) killed after each API request, before every other one and in "
        "the middle of its SQLite transactions, then resumed",
        f"{len(requests) + len(commits)} kill points ({len(requests)} around its "
        f"{ref.requests} requests, {len(commits)} of its {ref.commits} transactions)",
        "the resumed backfill ends equal to a clean backfill; no write applied twice",
    )


# ---- real processes: `leadscore sync` SIGKILLed


def child_env(sb: HubSpotSandbox, db: Path, token: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSCORE_")}
    env.update(
        LEADSCORE_ENV_FILE=str(db.parent / "no-such.env"),
        LEADSCORE_HUBSPOT_BASE_URL=sb.url,
        LEADSCORE_HUBSPOT_TOKEN=token or sb.token,
        LEADSCORE_STATE_PATH=str(db),
        LEADSCORE_HUBSPOT_SEARCH_PER_SECOND="100000",
        LEADSCORE_HUBSPOT_SEARCH_PAGE_SIZE=str(PAGE_SIZE),
        LEADSCORE_HUBSPOT_WRITE_BATCH=str(WRITE_BATCH),
        LEADSCORE_RETRY_MAX_SECONDS="0.05",
        LEADSCORE_REQUEST_TIMEOUT_SECONDS="5",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


# the console script when installed (what users run), else the same entry point by hand
_SCRIPT = Path(sys.executable).with_name("leadscore")
LEADSCORE = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "from connector.cli import main; main()"]
)


def run_child(
    args: list[str], env: Mapping[str, str], cwd: Path, *, hook: str | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = (
        [sys.executable, str(Path(__file__).resolve()), "child", hook, *args]
        if hook
        else [*LEADSCORE, *args]
    )
    return subprocess.run(
        cmd, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


class KillSwitch:
    """Wraps the sandbox's router: at the n-th request to a path it SIGKILLs the child, before
    or after the request is applied (from the server thread, so the point is exact)."""

    def __init__(self, sb: HubSpotSandbox) -> None:
        self.real = sb.app.route
        self.proc: subprocess.Popen[str] | None = None
        self.at: tuple[str, str, int] | None = None
        self.count = 0
        self.lock = threading.Lock()
        sb.app.route = self.route  # type: ignore[method-assign]

    def route(self, req: Request) -> Response:
        with self.lock:
            fire, when = False, ""
            if self.at is not None and req.path.rstrip("/").endswith(self.at[1]):
                self.count += 1
                fire, when = self.count == self.at[2], self.at[0]
        if fire and when == "before":
            self.kill()
        resp = self.real(req)
        if fire and when == "after":
            self.kill()
        return resp

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)

    def run(
        self, args: list[str], env: Mapping[str, str], cwd: Path, at: tuple[str, str, int]
    ) -> int:
        with self.lock:
            self.count, self.at = 0, at
        self.proc = subprocess.Popen(
            [*LEADSCORE, *args], env=dict(env), cwd=cwd, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            return self.proc.wait(timeout=120)
        finally:
            self.at, self.proc = None, None


@functools.cache
def _real_time_reference(
    job: str,
) -> tuple[dict[str, dict[str, str]], dict[str, Any], Counter[str]]:
    """A clean in-process run of `job` (then an idle sync) on the real clock, as the children
    run on it."""
    with tempfile.TemporaryDirectory(prefix="leadscore-clean-rt-") as tmp, sandbox(now=None) as sb:
        r = rig(sb, Path(tmp) / "state.db", clock=lambda: datetime.now(UTC))
        try:
            if job == "backfill":
                from connector.worker.backfill import run_backfill

                since, until = _real_window()
                done = run_backfill(r.pipeline, since, until)
                assert done.summary.status == "ok", done.summary.line()
            sync_until_quiescent(r)
            r.pipeline.sync()  # the idle resync every compared run ends with
            return (
                crm_state(sb, mask_time=True),
                db_state(r.store, mask_time=True),
                applied_writes(sb, mask_time=True),
            )
        finally:
            r.close()


def _real_window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(days=400), now + timedelta(hours=1)


# one after the other on the same state DB; each process is killed at (when, path, n-th call
# to that path in this process), or inside its n-th SQLite transaction ("commit")
SIGKILL_PLAN: tuple[tuple[str, str, int], ...] = (
    ("after", "/search", 2),  # mid-pull: a contacts page served, not yet saved
    ("before", "/events/v3/events", 2),  # between events pages
    ("commit", "", 6),  # mid-transaction (a page and its position), via the child hook
    ("after", "/batch/update", 1),  # a write batch applied, the process dies before the answer
    ("before", "/batch/update", 3),  # between write batches
    ("after", "/batch/update", 1),
)


def _sigkill_chain(tmp: Path, args: list[str], job: str) -> tuple[Checks, int]:
    """`leadscore ARGS` SIGKILLed at every point of the plan in turn on one state DB, then run
    until it succeeds; then `leadscore sync` until idle. The end must equal a clean run's."""
    c = Checks()
    crm_ref, db_ref, applied_ref = _real_time_reference(job)
    with sandbox(now=None) as sb:
        db = tmp / "state.db"
        env = child_env(sb, db)
        switch = KillSwitch(sb)
        kills = 0
        for when, path, n in SIGKILL_PLAN:
            if when == "commit":
                rc = run_child(args, env, tmp, hook=f"commit:{n}").returncode
            else:
                rc = switch.run(args, env, tmp, (when, path, n))
            kills += rc == -signal.SIGKILL
            c.expect(rc == -signal.SIGKILL, f"{when} {path} {n}: exit {rc}, not killed")
        for _ in range(MAX_SYNCS):
            p = run_child(args, env, tmp)
            if p.returncode == 0:
                break
        c.expect(p.returncode == 0, f"leadscore {args[0]} never finished: {p.stderr[-500:]}")
        for _ in range(MAX_SYNCS):
            p = run_child(["sync"], env, tmp)
            if p.returncode == 0 and " written 0," in p.stdout:
                break
        c.expect(p.returncode == 0, f"final sync: {p.stderr[-500:]}")
        c.expect(" written 0," in p.stdout, f"never idle: {p.stdout}")
        c.equal(crm_state(sb, mask_time=True), crm_ref, "CRM state differs from the clean run")
        with StateStore.open(db) as store:
            c.equal(db_state(store, mask_time=True), db_ref, "state DB differs from the clean run")
        applied = applied_writes(sb, mask_time=True)
        twice = sorted(k for k, v in applied.items() if v > 1)
        c.expect(not twice, f"contacts written twice with the same values: {twice[:3]}")
        c.equal(set(applied), set(applied_ref), "the writes applied differ from the clean run")
    return c, kills


@scenario("Crashes")
def sigkill_leadscore_sync(tmp: Path) -> Row:
    c, kills = _sigkill_chain(tmp, ["sync"], "sync")
    return c.row(
        "Crashes",
        "`leadscore sync` SIGKILLed (real processes): mid-pull, between events pages, "
        "mid-transaction, a write applied but unanswered, between write batches",
        f"{kills} kills in a row on one state DB, then runs to the end",
        "final CRM and state DB equal a clean run's; no contact written twice with the same values",
    )


@scenario("Crashes")
def sigkill_leadscore_backfill(tmp: Path) -> Row:
    since, until = _real_window()
    args = ["backfill", "--since", since.isoformat(), "--until", until.isoformat()]
    c, kills = _sigkill_chain(tmp, args, "backfill")
    return c.row(
        "Crashes",
        "`leadscore backfill` SIGKILLed (real processes) at the same points; the same command "
        "resumes it",
        f"{kills} kills in a row on one state DB, then runs to the end",
        "final CRM and state DB equal a clean backfill's; no contact written twice with the "
        "same values",
    )


def child_main(hook: str, args: list[str]) -> None:
    """A `leadscore` process that SIGKILLs itself at `hook` (`commit:N`)."""
    kind, _, n_text = hook.partition(":")
    target = int(n_text)
    if kind != "commit":
        raise SystemExit(f"unknown hook {hook!r}")
    real = StateStore._commit
    count = [0]

    def hooked(self: StoreBase) -> None:
        count[0] += 1
        if count[0] == target:
            os.kill(os.getpid(), signal.SIGKILL)  # the transaction is open: never committed
        real(self)

    StateStore._commit = hooked  # type: ignore[method-assign]
    from connector.cli import cli

    cli.main(args=args, prog_name="leadscore")


# --------------------------------------------------------------------------------- bad input


class Mutator:
    """Rewrites the sandbox's JSON answers on their way out, as a broken API or a proxy would
    send them; every answer to a matching path, every time (the bad data stays bad)."""

    def __init__(self, sb: HubSpotSandbox) -> None:
        self.real = sb.app.route
        self.rules: list[tuple[str, Callable[[Request, Response], Response]]] = []
        sb.app.route = self.route  # type: ignore[method-assign]

    def on(self, path_suffix: str, fn: Callable[[Request, Response], Response]) -> None:
        self.rules.append((path_suffix, fn))

    def records(
        self, path_suffix: str, key: str, changes: Mapping[str, Callable[[Any], Any]]
    ) -> None:
        """Replace the records whose `id` is a key of `changes` (in the answer's `key` list)."""

        def edit(_: Request, resp: Response) -> Response:
            if isinstance(resp.body, dict) and isinstance(resp.body.get(key), list):
                resp.body[key] = [
                    changes[str(x.get("id"))](copy.deepcopy(x))
                    if isinstance(x, dict) and str(x.get("id")) in changes
                    else x
                    for x in resp.body[key]
                ]
            return resp

        self.on(path_suffix, edit)

    def route(self, req: Request) -> Response:
        resp = self.real(req)
        for suffix, fn in self.rules:
            if req.path.rstrip("/").endswith(suffix) and resp.status == 200:
                resp = fn(req, resp)
        return resp


def _set(path: str, value: Any) -> Callable[[Any], Any]:
    """`_set("properties.email", v)`: a function that sets that (dotted) field of a record."""
    parts = path.split(".")

    def apply(rec: Any) -> Any:
        target = rec
        for p in parts[:-1]:
            target = target[p]
        target[parts[-1]] = value
        return rec

    return apply


def _replace(value: Any) -> Callable[[Any], Any]:
    return lambda _rec: value


def _fixture_ids() -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
    """Filler contacts, (event id, owner) and (e-mail event id, recipient) to break."""
    portal = demo_portal()
    fillers = [c["id"] for c in portal["contacts"] if int(c["id"]) >= 113]
    # events in the middle of the stream: not the newest (the adapter's probe reads that one)
    events = [(e["id"], str(e["objectId"])) for e in portal["events"][200:2000:90]]
    mails = [(e["id"], str(e["recipient"])) for e in portal["email_events"][50:450:40]]
    return fillers, events, mails


@contextlib.contextmanager
def bad_input_rig(tmp: Path) -> Iterator[tuple[Rig, Mutator]]:
    with sandbox() as sb:
        mut = Mutator(sb)
        r = rig(sb, tmp / "state.db")
        try:
            yield r, mut
        finally:
            r.close()


def check_rest_flows(c: Checks, r: Rig, affected: set[str], runs: list[SyncSummary]) -> int:
    """Every contact the bad input did not touch ends exactly as in the clean run. Returns how
    many contacts that is."""
    c.expect(runs[-1].status == "ok", f"never quiescent: {runs[-1].line()}")
    c.expect(all(s.status == "ok" for s in runs), f"a run failed: {[s.line() for s in runs]}")
    ref = clean_reference().crm
    got = crm_state(r.sb)
    rest = {k: v for k, v in got.items() if k not in affected}
    c.equal(rest, {k: v for k, v in ref.items() if k not in affected}, "untouched contacts")
    return len(rest)


def check_dead_letters(c: Checks, r: Rig, expected: Mapping[str, str]) -> None:
    """One open input dead letter per bad record, whose reason names the record and says
    what is wrong (`expected`: record id -> a piece of the reason)."""
    letters = {d.contact_id or "": d for d in r.store.open_dead_letters(CRM, "input")}
    c.equal(sorted(letters), sorted(expected), "input dead letters (by record)")
    for rid, fragment in expected.items():
        dl = letters.get(rid)
        if dl is None:
            continue
        reason = dl.reason or ""
        named = rid.removeprefix(event_record_id(""))  # an event's: its own id
        c.expect(named in reason, f"dead letter {rid}: reason does not name it: {reason!r}")
        c.expect(fragment in reason, f"dead letter {rid}: {reason!r} lacks {fragment!r}")


@scenario("Bad input")
def bad_api_types(tmp: Path) -> Row:
    """Wrong JSON types and nulls in contacts, events and e-mail events."""
    c = Checks()
    fillers, events, mails = _fixture_ids()
    contacts = {
        fillers[0]: (_set("properties.email", {"a": 1}), "email: expected text, got dict"),
        fillers[1]: (_set("properties.jobtitle", [1, 2]), "jobtitle: expected text, got list"),
        fillers[2]: (_set("properties.firstname", True), "firstname: expected text, got bool"),
        fillers[3]: (_set("properties.createdate", "yesterday"), "createdate: not an ISO-8601"),
        fillers[4]: (_set("properties.num_associated_deals", "many"), "not a number"),
        fillers[5]: (_set("properties.hs_merged_object_ids", "12;x7"), "not a list of ids"),
        fillers[6]: (_set("properties", "oops"), "properties: expected an object, got str"),
    }
    nulls = {  # nulls HubSpot may send: not errors, the contact is read as it is
        fillers[7]: _set("properties", None),
        fillers[8]: _set("properties.email", None),
    }
    bad_events = {
        events[0][0]: (_set("occurredAt", "garbage"), "occurredAt: not an ISO-8601"),
        events[1][0]: (_set("occurredAt", None), "occurredAt: missing timestamp"),
        events[2][0]: (_set("occurredAt", True), "occurredAt: expected a timestamp, got bool"),
        events[3][0]: (_set("properties", [1, 2]), "properties: expected an object, got list"),
        events[4][0]: (_set("objectId", None), "objectId missing"),
        events[5][0]: (_set("objectId", {"id": 7}), "objectId: expected text, got dict"),
        events[6][0]: (_set("eventType", ["x"]), "eventType: expected text, got list"),
    }
    bad_mails = {
        mails[0][0]: (_set("created", "garbage"), "created: not an ISO-8601"),
        mails[1][0]: (_set("recipient", None), "recipient missing"),
        mails[2][0]: (_set("recipient", {"a": 1}), "recipient: expected text, got dict"),
        mails[3][0]: (_set("created", None), "created: missing timestamp"),
    }
    with bad_input_rig(tmp) as (r, mut):
        mut.records("/search", "results", {k: f for k, (f, _) in contacts.items()} | nulls)
        mut.records("/events/v3/events", "results", {k: f for k, (f, _) in bad_events.items()})
        mut.records("/email/public/v1/events", "events", {k: f for k, (f, _) in bad_mails.items()})
        # and records that are not even objects, or have an id of the wrong type
        ev_str, ev_id_obj = events[7][0], events[8][0]
        mut.records("/events/v3/events", "results", {ev_str: _replace("garbage")})
        mut.records("/events/v3/events", "results", {ev_id_obj: _set("id", {"x": 1})})
        runs = sync_until_quiescent(r)
        idle_check(c, r)
        owners = {o for e, o in events[:9]}
        by_mail = {m: cid for cid, m in _emails(r).items()}
        recipients = {by_mail.get(m.lower(), "") for _, m in mails[:4]}
        affected = set(contacts) | set(nulls) | owners | recipients
        kept = check_rest_flows(c, r, affected, runs)
        expected = {k: why for k, (_, why) in contacts.items()}
        # engagement records' dead letters: under `event:<id>`
        expected |= {event_record_id(k): why for k, (_, why) in bad_events.items()}
        expected |= {event_record_id(k): why for k, (_, why) in bad_mails.items()}
        letters = {d.contact_id or "" for d in r.store.open_dead_letters(CRM, "input")}
        positional = sorted(x for x in letters if x.startswith(event_record_id("#")))
        c.equal(len(positional), 1, "the event that is not an object, named by its position")
        expected |= {p: "expected an object, got str" for p in positional}
        expected[event_record_id("{'x': 1}")] = "id: expected text, got dict"
        check_dead_letters(c, r, expected)
        for cid in nulls:
            c.expect(r.store.get_contact(CRM, cid) is not None, f"null-property contact {cid}")
    n_bad = len(contacts) + len(bad_events) + len(bad_mails) + 2
    return c.row(
        "Bad input",
        "wrong JSON types and nulls from the API (objects/lists/bools for text, bad ids, "
        "non-objects, null timestamps/ids/recipients) in contacts, events and e-mail events",
        f"{n_bad} bad records + {len(nulls)} contacts with null properties",
        f"each bad record dead-lettered (kind input) with a reason naming it; the {kept} other "
        "contacts end exactly as in a clean run; null properties are read as empty",
    )


def _emails(r: Rig) -> dict[str, str]:
    return {
        c.id: (c.email or "").lower() for c in r.store.iter_contacts(CRM, include_inactive=True)
    }


HOSTILE_EMAILS: tuple[str, ...] = (
    "a@@acme.com",
    "no-at-sign",
    "<script>alert(1)</script>@acme.com",
    "robert'); DROP TABLE contacts;--@acme.com",
    "x@localhost",
    "x@[127.0.0.1]",
    "a@acme.com\r\nBcc: victim@example.com",
    "\u202eevil@acme.com",
    "zoë@bücher.de",
    "x@acme.com\x00",
    "user@.com",
    "a" * 1_000_000 + "@acme.com",
)


@scenario("Bad input")
def bad_emails(tmp: Path) -> Row:
    """Malformed and hostile e-mail addresses: scored as invalid/odd mail, never a crash."""
    c = Checks()
    fillers, _, _ = _fixture_ids()
    targets = dict(zip(fillers[: len(HOSTILE_EMAILS)], HOSTILE_EMAILS, strict=True))
    with bad_input_rig(tmp) as (r, _):
        for cid, email in targets.items():
            r.sb.portal.contacts[cid].properties["email"] = email
        runs = sync_until_quiescent(r)
        idle_check(c, r)
        kept = check_rest_flows(c, r, set(targets), runs)
        check_dead_letters(c, r, {})
        c.equal(
            r.store.count_contacts(CRM, include_inactive=True),
            len(clean_reference().db["contacts"]),
            "contacts table intact",
        )
        for cid in targets:
            stored = r.store.get_score(CRM, cid)
            c.expect(stored is not None, f"{cid}: not scored")
            props = crm_state(r.sb)[cid]
            c.expect("leadscore_grade" in props, f"{cid}: no grade written")
        from connector.enrich.email import parse_email

        kinds: Counter[str] = Counter(str(parse_email(e).kind) for e in HOSTILE_EMAILS)
    return c.row(
        "Bad input",
        "malformed and hostile e-mail addresses (double @, no @, HTML/SQL in the local part, "
        "CR/LF header injection, RTL override, NUL, IP literal, IDN, 1 MB)",
        f"{len(targets)} contacts",
        f"each scored and written like any contact ({_fmt(kinds)}); SQL text stays data; "
        f"the {kept} other contacts as in a clean run",
    )


NAMES: tuple[tuple[str, str, str], ...] = (
    ("Zoë 🚀", "Ångström-Łukasiewicz", "VP Marketing 👩‍💼"),
    ("李", "小龍", "市场副总裁"),
    ("\u202eevil", "O'Brien; DROP TABLE contacts", "Head of Growth"),
    ("محمد", "العلي", "Chief Marketing Officer"),
    ("\U0001f600" * 50, "x\x00y", "Director of Demand Gen"),
)


@scenario("Bad input")
def bad_unicode_names(tmp: Path) -> Row:
    c = Checks()
    fillers, _, _ = _fixture_ids()
    targets = dict(zip(fillers[: len(NAMES)], NAMES, strict=True))
    with bad_input_rig(tmp) as (r, _):
        for cid, (first, last, title) in targets.items():
            props = r.sb.portal.contacts[cid].properties
            props.update(firstname=first, lastname=last, jobtitle=title)
        runs = sync_until_quiescent(r)
        idle_check(c, r)
        kept = check_rest_flows(c, r, set(targets), runs)
        check_dead_letters(c, r, {})
        for cid, (first, last, title) in targets.items():
            got = r.store.get_contact(CRM, cid)
            c.expect(
                got is not None
                and (got.first_name, got.last_name, got.job_title) == (first, last, title),
                f"{cid}: names did not round-trip: {got}",
            )
            c.expect(r.store.get_score(CRM, cid) is not None, f"{cid}: not scored")
    return c.row(
        "Bad input",
        "unicode and emoji names and titles (CJK, Arabic, RTL override, NUL, 50 emoji, SQL text)",
        f"{len(targets)} contacts",
        f"stored exactly, scored and written; the {kept} other contacts as in a clean run",
    )


MB = 1_000_000


@scenario("Bad input")
def bad_megabyte_strings(tmp: Path) -> Row:
    c = Checks()
    fillers, events, _ = _fixture_ids()
    ev_id, ev_owner = events[0]
    with bad_input_rig(tmp) as (r, mut):
        props = r.sb.portal.contacts[fillers[0]].properties
        props.update(firstname="F" * MB, jobtitle="VP " + "x" * MB, company="C" * MB)
        mut.records(
            "/events/v3/events",
            "results",
            {ev_id: _set("properties.hs_url", "https://x/" + "p" * MB)},
        )
        runs = sync_until_quiescent(r)
        idle_check(c, r)
        kept = check_rest_flows(c, r, {fillers[0], ev_owner}, runs)
        check_dead_letters(c, r, {})
        got = r.store.get_contact(CRM, fillers[0])
        c.expect(got is not None and len(got.first_name or "") == 10_000, "firstname not cut")
        c.expect(r.store.get_score(CRM, fillers[0]) is not None, "1 MB contact not scored")
        reasons = crm_state(r.sb)[fillers[0]].get("leadscore_reasons", "")
        c.expect(len(reasons) < 2_000, f"reasons carry the 1 MB text ({len(reasons)} chars)")
        stored = [e for e in r.store.events_for(CRM, ev_owner) if e.source_id == ev_id]
        c.expect(len(stored) == 1, "the event with a 1 MB URL was not stored")
        url = stored[0].attributes.get("url", "") if stored else ""
        c.equal(len(url), 10_000, "the event's 1 MB URL as stored")
    return c.row(
        "Bad input",
        "1 MB strings (first name, job title, company, an event's URL)",
        "3 contact fields + 1 event",
        f"text fields and event attributes cut to 10,000 characters; scored and written; "
        f"the {kept} other "
        "contacts as in a clean run",
    )


@scenario("Bad input")
def bad_proxy_pages(tmp: Path) -> Row:
    """HTML instead of JSON (a proxy's 200 page) and cut-off JSON, on every endpoint a sync uses."""
    c = Checks()
    endpoints = {
        "properties list": "/crm/v3/properties/contacts",
        "contact search": "/search",
        "events page": "/events/v3/events",
        "e-mail events page": "/email/public/v1/events",
        "write batch (applied)": "/batch/update",
    }
    answers: dict[str, Callable[[Response], Response]] = {
        "HTML page": lambda _: Response(200, HTML_PAGE, content_type="text/html"),
        "cut-off JSON": lambda resp: Response(
            200, resp.payload()[: max(1, len(resp.payload()) // 2)], content_type="application/json"
        ),
        "JSON that is not an object": lambda _: Response(200, [1, 2, 3]),
    }
    cases = 0
    for ename, path in endpoints.items():
        for aname, make in answers.items():
            cases += 1
            with sandbox() as sb:
                hit = [0]
                real = sb.app.route

                def route(
                    req: Request,
                    path: str = path,
                    make: Callable[[Response], Response] = make,
                    real: Callable[[Request], Response] = real,
                    hit: list[int] = hit,
                ) -> Response:
                    resp = real(req)  # the sandbox applies the request, then the proxy answers
                    if req.path.rstrip("/").endswith(path) and hit[0] < 2:
                        hit[0] += 1
                        return make(resp)
                    return resp

                sb.app.route = route  # type: ignore[method-assign]
                r = rig(sb, tmp / f"{cases}" / "state.db")
                try:
                    runs = sync_until_quiescent(r)
                    idle_check(c, r, f"{ename}/{aname}")
                    c.expect(hit[0] == 2, f"{ename}/{aname}: injected {hit[0]} times")
                    c.expect(runs[-1].status == "ok", f"{ename}/{aname}: {runs[-1].line()}")
                    compare_to_clean(c, sb, r.store, label=f"{ename}/{aname}")
                finally:
                    r.close()
    # a proxy that answers a write itself: HubSpot never saw it
    with sandbox() as sb:
        real = sb.app.route
        swallowed = [0]

        never_applied: Counter[str] = Counter()

        def proxy(req: Request) -> Response:
            if req.path.rstrip("/").endswith("/batch/update") and swallowed[0] < 2:
                swallowed[0] += 1
                for item in req.json["inputs"]:  # logged as a 200, but HubSpot never saw it
                    props = json.dumps(item["properties"], sort_keys=True)
                    never_applied[f"{item['id']} {props}"] += 1
                return Response(200, HTML_PAGE, content_type="text/html")
            return real(req)

        sb.app.route = proxy  # type: ignore[method-assign]
        r = rig(sb, tmp / "swallowed" / "state.db")
        try:
            sync_until_quiescent(r)
            idle_check(c, r, "swallowed write")
            ref = clean_reference()
            c.equal(crm_state(sb), ref.crm, "swallowed write: CRM state")
            c.equal(db_state(r.store), ref.db, "swallowed write: state DB")
            c.equal(applied_writes(sb) - never_applied, ref.applied, "swallowed write: writes")
        finally:
            r.close()
    return c.row(
        "Bad input",
        "HTML instead of JSON (a proxy's 200 page), cut-off JSON, JSON that is not an object: "
        "on the properties list, search, events, e-mail events and write batches (applied or "
        "swallowed by the proxy)",
        f"{cases + 1} endpoint × answer combinations, each twice in a row",
        "a retryable error (never an empty page that would end a stream early); writes are "
        "read back before any resend; every run ends equal to the clean run",
    )


@scenario("Bad input")
def bad_event_types_and_timestamps(tmp: Path) -> Row:
    c = Checks()
    _, events, mails = _fixture_ids()
    far = "3000-01-01T00:00:00Z"
    bad = {
        events[0][0]: (_set("occurredAt", far), "more than 1 day(s) in the future"),
        events[1][0]: (_set("occurredAt", "1960-05-01T00:00:00Z"), "before 1970"),
        events[2][0]: (_set("occurredAt", "9999-12-31T23:59:59-23:59"), "out of range"),
        events[3][0]: (_set("occurredAt", -5), "before 1970"),
        events[4][0]: (_set("occurredAt", 10**30), "epoch milliseconds out of range"),
    }
    bad_mails = {
        mails[0][0]: (_set("created", 32503680000000), "more than 1 day(s) in the future"),
        mails[1][0]: (_set("created", -1), "before 1970"),
    }
    unknown = {
        events[5][0]: _set("eventType", "e_mystery_signal"),
        events[6][0]: _set("eventType", "pe9_unheard_of"),
    }
    with bad_input_rig(tmp) as (r, mut):
        mut.records("/events/v3/events", "results", {k: f for k, (f, _) in bad.items()} | unknown)
        mut.records("/email/public/v1/events", "events", {k: f for k, (f, _) in bad_mails.items()})
        runs = sync_until_quiescent(r)
        # the future-dated events did not push the stream's cursor past now: an event that
        # happens after this run is still read by the next one
        r.sb.faults = Faults()
        late = r.sb.add_event(
            "101", "e_visited_page", {"hs_url": "https://www.leadscore-demo.com/pricing"}, NOW
        )
        r.sb.add_email_event("101", "OPEN", NOW, campaign_id=2001)
        s = r.pipeline.sync()
        c.expect(s.new_events == 2, f"an event after the future-dated ones was missed: {s.line()}")
        del late
        by_mail = {m: cid for cid, m in _emails(r).items()}
        affected = {o for _, o in events[:7]} | {by_mail.get(m.lower(), "") for _, m in mails[:2]}
        affected.add("101")
        kept = check_rest_flows(c, r, affected, runs)
        check_dead_letters(
            c, r, {event_record_id(k): why for k, (_, why) in (bad | bad_mails).items()}
        )
        customs = [
            e
            for cid in {o for _, o in events[5:7]}
            for e in r.store.events_for(CRM, cid)
            if e.source_id in unknown
        ]
        c.equal(sorted(e.type for e in customs), ["custom", "custom"], "unknown event types")
    return c.row(
        "Bad input",
        "timestamps in the far future, before 1970, past year 9999, negative or huge epoch ms; "
        "unknown event types",
        f"{len(bad) + len(bad_mails)} bad timestamps, {len(unknown)} unknown types",
        "bad timestamps dead-lettered with the reason (a future date never moves a stream's "
        "cursor: the next event is still read); unknown types stored as `custom`, no points; "
        f"the {kept} other contacts as in a clean run",
    )


# ------------------------------------------------------------- bad files and configuration


def _one_line_error(c: Checks, what: str, p: subprocess.CompletedProcess[str], code: int) -> str:
    err = p.stderr.strip()
    c.equal(p.returncode, code, f"{what}: exit code")
    c.expect("Traceback" not in p.stderr, f"{what}: a traceback: {err[-400:]}")
    c.expect(len(err.splitlines()) == 1, f"{what}: not one line: {err[-400:]}")
    c.expect(err.startswith("error: "), f"{what}: {err[:200]!r}")
    return err


@scenario("Bad input")
def bad_state_db(tmp: Path) -> Row:
    """A state DB that is garbage, cut in half, locked, from a newer leadscore, a directory."""
    c = Checks()
    with sandbox() as sb:
        # garbage bytes
        garbage = tmp / "garbage" / "state.db"
        garbage.parent.mkdir(parents=True)
        garbage.write_bytes(bytes(range(256)) * 64)
        p = run_child(["sync"], child_env(sb, garbage), tmp)
        err = _one_line_error(c, "garbage DB", p, 6)
        c.expect("not a valid SQLite database" in err, f"garbage DB: {err}")
        # a real DB cut in half (a disk that filled up, a bad copy)
        good = tmp / "cut" / "state.db"
        r = rig(sb, good)
        try:
            r.pipeline.sync()
        finally:
            r.close()
        sb.clear_log()  # from here on, nothing may be written
        data = good.read_bytes()
        good.write_bytes(data[: len(data) // 2])
        for suffix in ("-wal", "-shm"):
            Path(f"{good}{suffix}").unlink(missing_ok=True)
        p = run_child(["sync"], child_env(sb, good), tmp)
        err = _one_line_error(c, "cut DB", p, 6)
        c.expect("state DB" in err, f"cut DB: {err}")
        # locked by another process for longer than the busy timeout
        locked = tmp / "locked" / "state.db"
        StateStore.open(locked).close()
        holder = sqlite3.connect(locked, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            store = StateStore.open(locked, busy_timeout=0.2)
            try:
                r = rig(sb, tmp / "unused" / "state.db")
                r.store.close()
                r.store = store
                r.pipeline.store = store
                try:
                    r.pipeline.sync()
                    c.expect(False, "a sync ran on a locked state DB")
                except Exception as exc:
                    c.expect(
                        type(exc).__name__ == "StateError" and "locked" in str(exc),
                        f"locked DB: {type(exc).__name__}: {exc}",
                    )
                    c.equal(getattr(exc, "exit_code", None), 6, "locked DB: exit code")
                finally:
                    r.adapter.close()
            finally:
                store.close()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # written by a newer leadscore
        newer = tmp / "newer" / "state.db"
        StateStore.open(newer).close()
        with sqlite3.connect(newer) as db:
            db.execute(
                "INSERT INTO migrations (version, name, applied_at) VALUES (999, 'future', '')"
            )
        db.close()
        p = run_child(["sync"], child_env(sb, newer), tmp)
        err = _one_line_error(c, "newer DB", p, 6)
        # a directory where the file should be
        folder = tmp / "folder.db"
        folder.mkdir()
        p = run_child(["sync"], child_env(sb, folder), tmp)
        _one_line_error(c, "directory", p, 6)
        writes = [x for x in sb.requests if x.path.endswith("/batch/update")]
        c.equal(len(writes), 0, "writes made with a bad state DB")
    return c.row(
        "Bad input",
        "a state DB that is garbage, cut in half, locked by another process, from a newer "
        "leadscore, or a directory",
        "5 files",
        "`leadscore sync` stops before any write with a one-line `error: state DB …` naming the "
        "file and the problem, exit 6; locked: `StateError` after the busy timeout",
    )


BAD_MODEL = """\
version: 2026
name: [not, a, name]
fti: {}
fit:
  grades: {A: high, B: 55, C: 25}
  rules:
    - {name: title_decision_maker, when: {seniority: [executive]}, points: lots}
    - {name: typo_rule, wen: {seniority: vp}, points: 10}
engagement:
  window_days: "sixty"
"""


@scenario("Bad input")
def bad_model_file(tmp: Path) -> Row:
    from connector.model.loader import validate_model_file

    c = Checks()
    path = tmp / "model.yaml"
    shutil.copy(ROOT / "config" / "titles.yaml", tmp / "titles.yaml")
    path.write_text(BAD_MODEL, encoding="utf-8")
    loaded, problems = validate_model_file(path)
    c.expect(loaded is None, "a bad model loaded")
    garbage = tmp / "garbage.yaml"
    garbage.write_text("version: [unclosed\n  - : :\n", encoding="utf-8")
    none, yaml_problems = validate_model_file(garbage)
    c.expect(none is None and len(yaml_problems) == 1, f"garbage YAML: {yaml_problems}")
    c.expect(
        bool(yaml_problems) and "not valid YAML" in yaml_problems[0] and "line" in yaml_problems[0],
        f"garbage YAML problem: {yaml_problems}",
    )
    for needle in ("fti: unknown key", "grades.A", "rules[0].points: must be an integer", "wen"):
        c.expect(any(needle in p for p in problems), f"no problem mentions {needle!r}: {problems}")
    with sandbox() as sb:
        env = child_env(sb, tmp / "state.db")
        p = run_child(["sync", "--model", str(path)], env, tmp)
        c.expect(p.returncode != 0, "sync ran with a bad model")
        c.expect("Traceback" not in p.stderr, f"traceback: {p.stderr[-300:]}")
        listed = [ln for ln in p.stderr.splitlines() if ln.startswith(str(path))]
        c.equal(len(listed), len(problems), "every problem listed by `leadscore sync`")
        c.equal(len(sb.requests), 0, "API calls made with a bad model")
    return c.row(
        "Bad input",
        "a model file with wrong types and unknown keys (typos), and garbage YAML",
        "2 files: wrong types, unknown keys and a typo'd key; YAML that does not parse",
        f"every problem listed with its location (`fit.rules[0].points: must be an integer`, "
        f"`fti: unknown key (typo?)`, `line 1: not valid YAML (…)`); `leadscore sync` exits "
        f"{p.returncode} before any API call",
    )


@scenario("Bad input")
def bad_settings_no_token(tmp: Path) -> Row:
    c = Checks()
    with sandbox() as sb:
        env = child_env(sb, tmp / "state.db")
        del env["LEADSCORE_HUBSPOT_TOKEN"]
        p = run_child(["sync"], env, tmp)
        err = _one_line_error(c, "no token", p, 2)
        c.expect("LEADSCORE_HUBSPOT_TOKEN" in err, f"the variable is not named: {err}")
        c.equal(len(sb.requests), 0, "API calls made without a token")
        env["LEADSCORE_RETRY_ATTEMPTS"] = "zero"
        env["LEADSCORE_CRM"] = "salesforce"
        p = run_child(["sync"], env, tmp)
        err2 = _one_line_error(c, "bad settings", p, 2)
        for name in ("LEADSCORE_RETRY_ATTEMPTS", "LEADSCORE_CRM"):
            c.expect(name in err2, f"{name} not named: {err2}")
    return c.row(
        "Bad input",
        "settings without LEADSCORE_HUBSPOT_TOKEN; settings with several bad values",
        "2 runs of `leadscore sync`",
        "one line naming the variable(s) (all bad values at once), exit 2, no API call",
    )


# ----------------------------------------------------------------------- parsers (hypothesis)

FUZZ_EXAMPLES = 250


def _fuzz_targets(adapter: HubSpotAdapter) -> dict[str, tuple[Callable[[Any], object], Any]]:
    from hypothesis import strategies as st

    from connector.enrich.email import parse_email
    from connector.parse import contact_from_json, event_from_json, opt_text, parse_timestamp

    leaf = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.sampled_from([400, -400, 5000, 19]).map(
            lambda n: (10 ** abs(n)) * (1 if n > 0 else -1)
        )
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=30)
        | st.sampled_from(["", " ", "\x00", "１２３", "²", "٣٤٥", "9" * 30, "a" * 10_001])
    )
    value = st.recursive(
        leaf,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=6,
    )
    offsets = st.sampled_from(
        [UTC, timezone(timedelta(hours=23, minutes=59)), timezone(-timedelta(hours=23, minutes=59))]
    )
    edges = st.sampled_from(
        [
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59.999999",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
            "+002026-11-01",
            "2026-13-45",
            "2026-11-01T25:00:00Z",
            "1e3",
            "-5",
            "nan",
            "NaN",
            "inf",
            " 17 ",
            "０１２",
            "\n",
            datetime.max.replace(tzinfo=timezone(-timedelta(hours=23, minutes=59))),
            datetime.min.replace(tzinfo=timezone(timedelta(hours=23, minutes=59))),
            float("nan"),
            float("inf"),
            -1e300,
            1e300,
            2**63,
            -(2**63),
        ]
    ) | st.sampled_from([5000, 400, -5000]).map(lambda n: 10 ** abs(n) * (1 if n > 0 else -1))
    stamp = (
        edges
        | value
        | st.datetimes(timezones=offsets)
        | st.datetimes()
        | st.datetimes(timezones=offsets).map(lambda d: d.isoformat())
        | st.from_regex(
            r"-?\d{1,6}(-\d{1,2}(-\d{1,2}(T\d{1,2}(:\d{1,2}(:\d{1,2}(\.\d{1,7})?)?)?)?)?)?([Zz]|[+-]\d{2}:?\d{2})?",
            fullmatch=True,
        )
    )
    contact_keys = st.sampled_from(
        ["email", "firstname", "jobtitle", "createdate", "lastmodifieddate", "hs_lead_status",
         "engagements_last_meeting_booked", "num_associated_deals", "hs_merged_object_ids",
         "lifecyclestage", "hs_analytics_num_page_views"]
    )  # fmt: skip
    props = st.dictionaries(contact_keys, value | stamp, max_size=6) | value
    event_type = st.sampled_from(
        ["e_visited_page", "e_submitted_form", "pe1_webinar_attended", "pe1_webinar_registered",
         "e_other"]
    ) | value  # fmt: skip
    ev_props = (
        st.dictionaries(
            st.sampled_from(
                [
                    "hs_url",
                    "hs_referrer",
                    "hs_page_title",
                    "hs_form_id",
                    "hs_form_title",
                    "webinar_name",
                    "minutes_watched",
                    "webinar_minutes",
                ]
            ),
            value,
            max_size=5,
        )
        | value
    )
    event = st.fixed_dictionaries(
        {},
        optional={"id": value | st.text(min_size=1, max_size=8), "objectId": value | st.just("7"),
                  "eventType": event_type, "occurredAt": stamp, "properties": ev_props},
    ) | value  # fmt: skip
    mail = st.fixed_dictionaries(
        {},
        optional={"id": value | st.just("m1"), "recipient": value | st.emails(),
                  "type": st.sampled_from(["OPEN", "CLICK", "BOUNCE", "SENT"]) | value,
                  "created": stamp, "emailCampaignId": value, "url": value},
    ) | value  # fmt: skip
    file_contact = st.dictionaries(
        st.sampled_from(["id", "email", "first_name", "created_at", "updated_at", "properties",
                         "recycled_at", "lead_status_changed_at"]),
        value | stamp,
        max_size=6,
    ) | value  # fmt: skip
    file_event = st.dictionaries(
        st.sampled_from(["id", "contact_id", "type", "occurred_at", "attributes", "source"]),
        value | stamp,
        max_size=6,
    ) | value  # fmt: skip
    hostile = st.sampled_from(HOSTILE_EMAILS) | st.emails() | value
    return {
        "parse_timestamp": (parse_timestamp, stamp),
        "opt_text": (lambda v: opt_text(v, "f"), value),
        "contact_from_json (files)": (contact_from_json, file_contact),
        "event_from_json (files)": (event_from_json, file_event),
        "HubSpot contact": (
            lambda v: adapter._contact_from(v[0], v[1]),
            st.tuples(value | st.just("5"), props),
        ),
        "HubSpot event": (adapter._event_from, event),
        "HubSpot e-mail event": (adapter._email_event_from, mail),
        "parse_email": (parse_email, hostile),
    }


@scenario("Bad input")
def parsers_fuzz(tmp: Path) -> Row:
    """Any input gives a value or an InputError (parse_email: a result), never another error."""
    from hypothesis import HealthCheck, given, settings

    from connector.errors import InputError

    c = Checks()
    adapter = HubSpotAdapter(SecretStr("x"), "http://127.0.0.1:9")  # its parsers: no network
    targets = _fuzz_targets(adapter)

    def prop_for(fn: Callable[[Any], object], strategy: Any) -> Callable[[], None]:
        @settings(
            max_examples=FUZZ_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def prop(v: Any) -> None:
            try:
                fn(v)
            except InputError as exc:
                assert len(str(exc)) < 1_000, f"an error message of {len(str(exc))} chars"

        return prop  # type: ignore[no-any-return]

    for name, (fn, strategy) in targets.items():
        try:
            prop_for(fn, strategy)()
        except Exception as exc:
            c.problems.append(f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
    adapter.close()
    return c.row(
        "Bad input",
        "hypothesis on every parser: ISO/epoch timestamps (offsets at the edges of time, "
        "huge integers), text fields, contact/event JSON lines, HubSpot contacts, events and "
        "e-mail events, e-mail addresses",
        f"{len(targets)} parsers × {FUZZ_EXAMPLES} generated inputs",
        "every input gives a value or an `InputError` with a short message (parse_email: "
        "a result), never another exception",
    )


# ---------------------------------------------------------------------------------- security

FAKE_TOKEN = "pat-na1-0d15ea5e-5ecb-4c7e-9a3b-c0ffee5ec7e7"
FAKE_SECRET = "whsec-7f3a9c1e5b2d4f6a8c0e1d3b5a7f9c2e"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def capture_logs() -> Iterator[_Capture]:
    """Every log record of every logger at DEBUG: the root and (see `all_loggers_debug`) the
    loggers that libraries quieted themselves (the SDK sets urllib3's to WARNING)."""
    root = logging.getLogger()
    handler, level = _Capture(), root.level
    saved = {
        n: lg.level for n, lg in root.manager.loggerDict.items() if isinstance(lg, logging.Logger)
    }
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name, lvl in saved.items():
            logging.getLogger(name).setLevel(lvl)


def all_loggers_debug() -> None:
    for lg in list(logging.getLogger().manager.loggerDict.values()):
        if isinstance(lg, logging.Logger):
            lg.setLevel(logging.DEBUG)


def _exception_texts(exc: BaseException) -> list[str]:
    import traceback

    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


def _db_texts(db: Path) -> tuple[list[str], bytes]:
    """Every value of every column of every table, and the raw bytes of the DB and its WAL."""
    values: list[str] = []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                values.extend(str(v) for v in row if v is not None)
    raw = b"".join(
        Path(f"{db}{sfx}").read_bytes() for sfx in ("", "-wal") if Path(f"{db}{sfx}").exists()
    )
    return values, raw


@scenario("Security")
def secrets_never_leak(tmp: Path) -> Row:
    """A recognisable fake token (and webhook secret) through syncs, a 401, dead letters,
    settings errors, the CLI with DEBUG logs and the HTML report: it appears nowhere."""
    c = Checks()
    texts: dict[str, list[str]] = {}
    with capture_logs() as logs, sandbox(token=FAKE_TOKEN) as sb:
        db = tmp / "state.db"
        r = rig(sb, db)
        all_loggers_debug()
        try:
            grade = sb.portal.properties["leadscore_grade"]  # D rejected: write dead letters
            grade.options = [o for o in grade.options if o[0] != "D"]
            ok = r.pipeline.sync()
            c.expect(ok.dead_lettered > 0, "no write dead letter to inspect")
            sb.token = "rotated"  # the token is revoked: 401
            refused = r.pipeline.sync()
            c.equal(refused.status, "auth", "401 run status")
            texts["summaries"] = [ok.line(), refused.line(), refused.message]
            texts["reprs"] = [repr(r.adapter), str(r.adapter), repr(r.store), repr(r.pipeline)]
            try:
                r.adapter.check_properties()
            except Exception as exc:
                texts["401 exception"] = _exception_texts(exc)
        finally:
            r.close()
        settings = load_settings(hubspot_token=FAKE_TOKEN, hubspot_client_secret=FAKE_SECRET)
        texts["settings"] = [repr(settings), str(settings), settings.model_dump_json(),
                             str(settings.model_dump()), f"{settings}"]  # fmt: skip
        try:
            load_settings(hubspot_token=FAKE_TOKEN, retry_attempts="zero")
        except Exception as exc:
            texts["settings error"] = _exception_texts(exc)
        from connector.crm.hubspot import HubSpotAdapter as Adapter

        texts["adapter repr"] = [repr(Adapter(SecretStr(FAKE_TOKEN), sb.url))]
        # the CLI, as an operator runs it, with DEBUG logs where a command configures them
        sb.token = FAKE_TOKEN
        cli_db = tmp / "cli" / "state.db"
        env = child_env(sb, cli_db, token=FAKE_TOKEN)
        env.update(LEADSCORE_LOG_LEVEL="DEBUG", LEADSCORE_HUBSPOT_CLIENT_SECRET=FAKE_SECRET)
        # a second state DB on a portal the in-process runs scored: on purpose here
        env.update(LEADSCORE_ALLOW_FRESH_STATE="true")
        since = (datetime.now(UTC) - timedelta(days=400)).date().isoformat()
        html = tmp / "report.html"
        runs = [
            ["sync"],
            ["backfill", "--since", since],
            ["explain", "dana.whitfield@acme-analytics.com"],
            ["status"],
            ["dead-letters"],
            ["report", "--html", str(html)],
        ]
        cli_out: list[str] = []
        for args in runs:
            p = run_child(args, env, tmp)
            cli_out += [p.stdout, p.stderr]
        sb.token = "rotated"
        p = run_child(["sync"], env, tmp)
        c.equal(p.returncode, 5, "`leadscore sync` with a revoked token: exit code")
        cli_out += [p.stdout, p.stderr]
        texts["CLI output"] = cli_out
        texts["HTML report"] = [html.read_text(encoding="utf-8")] if html.exists() else []
        c.expect(html.exists(), "no HTML report written")
    texts["logs"] = logs.lines
    c.expect(any("urllib3" in ln for ln in logs.lines), "DEBUG logs were not captured")
    for name, found in texts.items():
        for secret in (FAKE_TOKEN, FAKE_SECRET):
            hits = [t for t in found if secret in t or secret[8:24] in t]
            c.expect(not hits, f"{name} shows a secret: {hits[0][:300] if hits else ''}")
    for path in (db, cli_db):
        values, raw = _db_texts(path)
        c.expect(len(values) > 1000, f"{path.name}: only {len(values)} values to search")
        for secret in (FAKE_TOKEN, FAKE_SECRET):
            c.expect(not any(secret in v for v in values), f"{path.name}: a column holds it")
            c.expect(secret.encode() not in raw, f"{path.name}: the file bytes hold it")
    return c.row(
        "Security",
        "the token and the webhook secret never in logs (DEBUG, every logger), exceptions "
        "(str, repr, traceback), reprs, settings dumps, the state DB or the HTML report",
        f"2 syncs + a 401 in-process, {len(runs) + 1} CLI runs (sync, backfill, explain, status, "
        "dead-letters, report --html, a 401); every log record at DEBUG, every DB value and "
        "the raw DB/WAL bytes",
        "not found anywhere (searched for the whole secret and for a 16-character piece)",
    )


@scenario("Security")
def webhook_signatures(tmp: Path) -> Row:
    import ast
    import inspect

    from connector.worker import webhooks

    c = Checks()
    body = json.dumps([{"eventId": 1, "subscriptionType": "contact.propertyChange"}]).encode()
    uri = "https://hooks.example.com/webhooks/hubspot?x=1"
    now = 1_800_000_000_000
    ts = str(now)
    good = webhooks.signature_v3(FAKE_SECRET, "POST", uri, body, ts)

    def verdict(sig: str | None, stamp: str | None, at: int = now) -> bool:
        return webhooks.verify_v3(FAKE_SECRET, "POST", uri, body, sig, stamp, now_ms=at).ok

    checks = {
        "a valid signature passes": verdict(good, ts),
        "a wrong signature fails": not verdict(good[:-4] + "AAAA", ts),
        "a signature for another body fails": not webhooks.verify_v3(
            FAKE_SECRET, "POST", uri, body + b" ", good, ts, now_ms=now
        ).ok,
        "no signature fails": not verdict(None, ts),
        "no timestamp fails": not verdict(good, None),
        "a replay 5 min + 1 s later fails": not verdict(good, ts, now + 301_000),
        "a timestamp 5 min + 1 s ahead fails": not verdict(good, ts, now - 301_000),
        "4 min later still passes": verdict(good, ts, now + 240_000),
    }
    for name, passed in checks.items():
        c.expect(passed, name)
    tree = ast.parse(inspect.getsource(webhooks))
    digests = [
        n for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        and n.func.attr == "compare_digest"
    ]  # fmt: skip
    c.expect(digests, "signatures are not compared with hmac.compare_digest")
    plain = [
        n.lineno for n in ast.walk(tree)
        if isinstance(n, ast.Compare) and any(isinstance(o, ast.Eq | ast.NotEq) for o in n.ops)
        and any("sig" in ast.unparse(x).lower() or "expected" in ast.unparse(x).lower()
                for x in (n.left, *n.comparators))
    ]  # fmt: skip
    c.expect(not plain, f"signatures compared with == at line(s) {plain}")
    return c.row(
        "Security",
        "webhook signatures (v3): checked in constant time; replays outside the 5-minute window "
        "and tampered bodies rejected",
        f"{len(checks)} requests + a scan of connector/worker/webhooks.py",
        "`hmac.compare_digest` only, never `==`; stale, future, unsigned and tampered requests "
        "refused, fresh ones accepted",
    )


_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|REPLACE)\b\s")


def sql_built_from_data() -> list[str]:
    """file:line of every f-string, %-format or .format() that builds SQL text in connector/."""
    import ast

    found: list[str] = []
    for path in sorted((ROOT / "connector").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            text: str | None = None
            if isinstance(node, ast.JoinedStr) and any(
                isinstance(v, ast.FormattedValue) for v in node.values
            ):
                text = "".join(
                    v.value for v in node.values
                    if isinstance(v, ast.Constant) and isinstance(v.value, str)
                )  # fmt: skip
            elif (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Mod | ast.Add)
                and isinstance(node.left, ast.Constant)
                and isinstance(node.left.value, str)
                and not isinstance(node.right, ast.Constant)
            ):
                text = node.left.value
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "format"
                and isinstance(node.func.value, ast.Constant)
                and isinstance(node.func.value.value, str)
            ):
                text = node.func.value.value
            if text and _SQL.search(text):
                found.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}")
    return found


@scenario("Security")
def sql_parameterized(tmp: Path) -> Row:
    import ast

    c = Checks()
    found = sql_built_from_data()
    c.expect(not found, f"SQL text built from values at {found}")
    calls = 0
    for path in sorted((ROOT / "connector").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("execute", "executemany"):
                calls += 1
    # and a hostile value is data: a contact named like an injection round-trips
    with sandbox() as sb:
        evil = "x'); DROP TABLE contacts; --"
        sb.portal.contacts["120"].properties["lastname"] = evil
        r = rig(sb, tmp / "state.db")
        try:
            r.pipeline.sync()
            got = r.store.get_contact(CRM, "120")
            c.expect(got is not None and got.last_name == evil, "the value did not round-trip")
            c.equal(r.store.count_contacts(CRM), 54, "live contacts after the injection try")
        finally:
            r.close()
    c.expect(calls > 20, f"only {calls} execute calls found: the scan is broken")
    return c.row(
        "Security",
        "SQL always parameterized",
        "every module of connector/ scanned (AST: f-strings, %, + and .format() that build "
        "SQL text), 1 injection-shaped value synced",
        "no SQL text is built from values; the injection-shaped name is stored as data",
    )


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


@scenario("Security")
def files_owner_only(tmp: Path) -> Row:
    c = Checks()
    modes: dict[str, str] = {}
    old = os.umask(0o022)  # a typical umask: files would be born 0644
    try:
        with sandbox() as sb:
            db = tmp / "state.db"
            env = child_env(sb, db)
            run_child(["sync"], env, tmp)
            for sfx in ("", "-wal", "-shm"):
                f = Path(f"{db}{sfx}")
                if f.exists():
                    modes[f"state DB{sfx}"] = _mode(f)
            keep = tmp / "demo.db"
            html = tmp / "report.html"
            run_child(["--state", str(db), "report", "--html", str(html)], env, tmp)
            if html.exists():
                modes["report --html"] = _mode(html)
            store = StateStore.open(keep)
            try:
                store.set_job("probe", {"x": 1})  # while open: the -wal and -shm exist
                for sfx in ("", "-wal", "-shm"):
                    modes[f"state DB{sfx} (open)"] = _mode(Path(f"{keep}{sfx}"))
            finally:
                store.close()
    finally:
        os.umask(old)
    open_gaps = {k: v for k, v in modes.items() if v != "0o600" and not k.startswith("state")}
    for k in modes:
        if k.startswith("state DB"):
            c.equal(modes[k], "0o600", f"{k} mode")
    c.expect("report --html" in modes, "the report was not written")
    outcome = "the state DB, its -wal and -shm: 0600"
    gaps = tuple(
        f"{k} is created {v[2:]} (the process umask), not owner-only"
        for k, v in sorted(open_gaps.items())
    )
    if gaps:
        outcome += "; OPEN: " + "; ".join(gaps)
    return c.row(
        "Security",
        "files created owner-only (0600) under a 022 umask: the state DB and exported files",
        f"{len(modes)} files",
        outcome,
        gaps,
    )


@scenario("Security")
def sandboxes_loopback_only(tmp: Path) -> Row:
    from connector.sandbox.base import SandboxServer
    from connector.sandbox.hubspot import HubSpotApp, Portal
    from connector.sandbox.marketo import MarketoSandbox

    c = Checks()
    tried = 0
    for host in ("0.0.0.0", "", "::", "localhost", "192.168.1.10"):
        tried += 1
        try:
            SandboxServer(HubSpotApp(Portal()), host=host)
            c.expect(False, f"a sandbox bound {host!r}")
        except (ValueError, OSError):
            pass
    with sandbox() as sb:
        c.equal(sb._server._server.server_address[0], "127.0.0.1", "HubSpot sandbox address")
    with MarketoSandbox.start() as mk:
        c.equal(mk._server._server.server_address[0], "127.0.0.1", "Marketo sandbox address")
    return c.row(
        "Security",
        "the sandboxes bind loopback only",
        f"{tried} other bind addresses, 2 running sandboxes",
        "every other address refused; HubSpot and Marketo sandboxes listen on 127.0.0.1",
    )


# ------------------------------------------------------------------------- the doc and main


HEADER = """# Reliability: what the worker survives

Generated by `python tests/reliability_matrix.py` from the scenarios in that file; every row is
also a test (`tests/test_reliability_*.py`, `tests/test_security.py`) that runs the scenario and
fails when it no longer holds or when this table is stale. Do not edit by hand.

Faults and crashes run a full sync of the demo portal (`build_demo_portal()`, 54 live contacts,
~2,300 events; 3 search pages, 4 events pages, 1 e-mail page, 6 write batches of 10) against the
HubSpot sandbox on 127.0.0.1, with a fixed seed and a fixed clock, and compare the end state to a
clean run: the sandbox's stored `leadscore_*` properties and `lifecyclestage` of every contact,
the state DB (scores, values written, contacts, events, backlog), and the exact list of writes
HubSpot applied (each must be applied once). "Killed" in-process means the DB files are copied
at that instant (what SIGKILL leaves on disk) and a new process starts from the copy; the
`leadscore sync` and `leadscore backfill` rows use real processes and SIGKILL. Backfills cover
400 days, the demo portal's whole history.

"""


def render(rows: list[Row]) -> str:
    lines = [HEADER.rstrip("\n"), ""]
    for area in AREAS:
        lines.append(f"## {area}")
        lines.append("")
        lines.append("| area | fault / bad input | tried | outcome |")
        lines.append("|---|---|---|---|")
        lines.extend(r.line() for r in rows if r.area == area)
        lines.append("")
    return "\n".join(lines)


def doc_lines(path: Path = DOC) -> set[str]:
    if not path.exists():
        return set()
    return {ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.startswith("| ")}


def run_scenario(name: str, tmp: Path) -> None:
    """What each test does: run the scenario, require it to hold and its row to be the one in
    docs/reliability.md; a row that states an open issue makes the test xfail (strictly: the
    row changes when the issue is fixed, and the stale doc then fails the test)."""
    import pytest

    row = SCENARIOS[name].run(tmp)
    assert row.ok, f"{name}:\n" + "\n".join(row.problems[:20])
    assert row.line() in doc_lines(), (
        f"docs/reliability.md is stale: no row\n{row.line()}\n"
        "run `.venv/bin/python tests/reliability_matrix.py` and commit the result"
    )
    if row.gaps:
        pytest.xfail("open: " + "; ".join(row.gaps))


def names(area: str) -> list[str]:
    return [n for n, sc in SCENARIOS.items() if sc.area == area]


def run_all(only: list[str] | None = None) -> list[Row]:
    rows: list[Row] = []
    for name, sc in SCENARIOS.items():
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory(prefix=f"leadscore-{name}-") as tmp:
            row = sc.run(Path(tmp))
        status = "ok" if row.ok else "FAILED"
        print(f"{status:6} {name}: {row.tried} -> {row.outcome}", file=sys.stderr)
        for p in row.problems[:10]:
            print(f"       {p}", file=sys.stderr)
        rows.append(row)
    return rows


def write_doc(rows: list[Row], path: Path = DOC) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render(rows), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader sees the old file or the new one


def main(argv: list[str]) -> int:
    if argv[:1] == ["child"]:
        child_main(argv[1], argv[2:])
        return 0
    check = "--check" in argv
    only = [a for a in argv if not a.startswith("--")] or None
    rows = run_all(only)
    failed = [r for r in rows if not r.ok]
    if check:
        stale = [r for r in rows if r.line() not in doc_lines()]
        for r in stale:
            print(f"stale: {r.line()}", file=sys.stderr)
        return 1 if failed or stale else 0
    if only:
        print("--only: the doc is written from a full run only", file=sys.stderr)
        return 1 if failed else 0
    if failed:
        print(f"{len(failed)} scenario(s) failed; docs/reliability.md not written", file=sys.stderr)
        return 1
    write_doc(rows)
    print(f"wrote {DOC.relative_to(ROOT)} ({len(rows)} rows)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
