"""A full rescore shared among processes by contact-id range gives exactly what one process gives:
the same preview, the same saved scores, the same CRM writes, each once."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.enrich.enricher import build_enricher
from connector.ops import parallel
from connector.ops.parallel import by_id_range, plan_workers
from connector.ops.rescore import apply_rescore, preview_rescore, recompute_all
from connector.pipeline import Enricher
from connector.settings import load_settings
from connector.state import store as stmod
from connector.state.store import LAST_ID, StateStore
from connector.synth import synth_dataset
from connector.types import Contact

from .conftest import NOW, Harness
from .test_ops_rescore import (
    PRODUCT_15,
    THRESHOLD_80,
    changed_model,
    model_file,
    read_only_enricher,
)

CRM = "hubspot"


def writable_enricher(store: StateStore) -> Enricher:
    return build_enricher(load_settings(), cache=store.company_cache)


@pytest.fixture
def two_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes even for a 50-contact portal (the real minimum is 20,000 per process)."""
    monkeypatch.setattr(parallel, "MIN_CONTACTS_PER_WORKER", 1)


def stored_scores(store: StateStore) -> dict[str, tuple[object, ...]]:
    return {
        s.contact_id: (s.score, s.grade, s.mql_reason, s.model_version, s.reasons)
        for s in store.iter_scores(CRM)
    }


def filled_store(path: Path, n: int, archived: int = 0) -> StateStore:
    store = StateStore.open(path)
    contacts = [c for c, _, _ in synth_dataset(n, 0, NOW, seed=3)]
    with store.transaction():
        store.upsert_contacts(CRM, contacts, at=NOW)
    for c in contacts[:archived]:
        store.mark_archived(CRM, c.id, NOW)
    return store


def test_id_ranges_cover_every_live_contact_once_in_equal_shares(tmp_path: Path) -> None:
    store = filled_store(tmp_path / "s.db", 1003, archived=10)
    live = sorted(c.id for c in store.iter_contacts(CRM))
    assert len(live) == 993
    for parts in (1, 2, 3, 7):
        ranges = store.split_live_ids(CRM, parts)
        assert len(ranges) == parts
        assert ranges[0][0] == "" and ranges[-1][1] == LAST_ID
        assert all(a[1] == b[0] for a, b in pairwise(ranges))  # contiguous
        shares = [[i for i in live if lo < i <= hi] for lo, hi in ranges]
        assert [i for share in shares for i in share] == live
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
        # the store's own range reads agree with the cut
        got = [
            [c.id for c, _ in store.iter_contacts_with_event_rows(CRM, after=lo, upto=hi)]
            for lo, hi in ranges
        ]
        assert got == shares
    assert store.split_live_ids(CRM, 5000) == store.split_live_ids(CRM, 993)
    store.close()


def test_the_live_contacts_index_follows_archives_merges_and_returns(tmp_path: Path) -> None:
    """Counting and cutting read the index of the live contacts (migration 005): it must drop
    an archived or merged contact and take back one the CRM returns."""
    store = filled_store(tmp_path / "s.db", 40, archived=3)
    ids = sorted(c.id for c in store.iter_contacts(CRM))
    for sql in (stmod._COUNT_LIVE_CONTACTS, stmod._LIVE_ID_AT):
        plan = store.db.execute("EXPLAIN QUERY PLAN " + sql, (CRM, 0)[: sql.count("?")])
        assert "USING INDEX contacts_live" in plan.fetchall()[0][3]
    store.merge_contacts(CRM, ids[0], ids[1], NOW)
    returned = next(c for c, _, _ in synth_dataset(40, 0, NOW, seed=3))  # archived above
    with store.transaction():
        store.upsert_contacts(CRM, [returned], at=NOW)
    live = sorted(c.id for c in store.iter_contacts(CRM))
    assert len(live) == 40 - 3 - 1 + 1 and returned.id in live and ids[0] not in live
    assert store.count_contacts(CRM) == len(live)
    assert store.count_contacts(CRM, include_inactive=True) == 40
    cut = store.split_live_ids(CRM, 2)[0][1]
    assert cut == live[len(live) // 2 - 1]
    store.close()


def test_small_portals_and_one_worker_run_in_this_process(tmp_path: Path) -> None:
    store = filled_store(tmp_path / "s.db", 50)
    assert plan_workers(store, CRM, 8) == 1  # 50 contacts: not worth a process
    assert plan_workers(store, CRM, 1) == 1
    with pytest.raises(ValueError, match="workers must be >= 1"):
        plan_workers(store, CRM, 0)
    pids = by_id_range(store, CRM, lambda st, lo, hi: (os.getpid(), st is store), 8)
    assert pids == [(os.getpid(), True)]
    store.close()


def test_workers_are_processes_and_a_failing_range_fails_the_whole(
    tmp_path: Path, two_workers: None
) -> None:
    store = filled_store(tmp_path / "s.db", 40)
    assert plan_workers(store, CRM, 2) == 2
    got = by_id_range(
        store, CRM, lambda st, lo, hi: (os.getpid(), st.count_contacts(CRM), lo, hi), 2
    )
    assert len(got) == 2 and all(pid != os.getpid() for pid, *_ in got)
    assert got[0][2] == "" and got[0][3] == got[1][2] and got[1][3] == LAST_ID

    def fails_on_second(st: StateStore, lo: str, hi: str) -> int:
        if lo:
            raise ValueError(f"range after {lo} failed")
        return 1

    with pytest.raises(ValueError, match=r"range after .* failed"):
        by_id_range(store, CRM, fails_on_second, 2)
    store.close()


def test_parallel_preview_is_the_one_process_preview(
    demo: Harness, tmp_path: Path, two_workers: None
) -> None:
    assert demo.pipeline.sync().status == "ok"
    model = changed_model(tmp_path, "p15", PRODUCT_15, THRESHOLD_80)
    one = preview_rescore(
        demo.store, CRM, model, read_only_enricher(demo.store), NOW, keep_after=True, sample=5
    )
    two = preview_rescore(
        demo.store,
        CRM,
        model,
        read_only_enricher(demo.store),
        NOW,
        keep_after=True,
        sample=5,
        workers=2,
        enricher_for=read_only_enricher,
    )
    assert one.score_changes > 10 and one.new_mqls > 0  # a preview with something in it
    assert asdict(two) == asdict(one)


def test_parallel_apply_saves_and_writes_exactly_what_the_preview_said(
    demo: Harness, tmp_path: Path, two_workers: None
) -> None:
    assert demo.pipeline.sync().status == "ok"
    model = changed_model(tmp_path, "p15", PRODUCT_15, THRESHOLD_80)
    preview = preview_rescore(
        demo.store, CRM, model, read_only_enricher(demo.store), NOW, keep_after=True
    )
    demo.sb.clear_log()
    applied = apply_rescore(demo.pipeline, model, workers=2, enricher_for=writable_enricher)
    assert applied.rescore is not None and applied.exit_code == 0
    assert applied.rescore.scored == preview.contacts
    # each changed contact written once, nobody else
    assert sorted(demo.written_ids()) == sorted(preview.write_ids)
    assert applied.written == preview.to_write
    stored = {s.contact_id: (s.score, s.grade, s.mql_reason) for s in demo.store.iter_scores(CRM)}
    assert {k: stored[k] for k in preview.after} == preview.after
    assert demo.store.pending_write_ids(CRM) == []
    again = preview_rescore(demo.store, CRM, model, read_only_enricher(demo.store), NOW)
    assert (again.to_write, again.score_changes) == (0, 0)


def test_parallel_recompute_leaves_the_state_a_single_process_apply_leaves(
    demo: Harness, tmp_path: Path, two_workers: None
) -> None:
    """The same synced DB twice: a one-process apply on one copy, the two-process recompute
    on the other. The same scores with the same reasons; the contacts the recompute puts on
    the write backlog are exactly those the apply wrote."""
    assert demo.pipeline.sync().status == "ok"
    model = changed_model(tmp_path, "p15", PRODUCT_15, THRESHOLD_80)
    copy = tmp_path / "copy.db"
    with sqlite3.connect(copy) as dst:
        demo.store.db.conn.backup(dst)
    demo.sb.clear_log()
    apply_rescore(demo.pipeline, model, workers=1)
    written = sorted(demo.written_ids())
    assert written  # the model change has something to write
    other = StateStore.open(copy)
    scored, backlog = recompute_all(
        other, CRM, model, NOW, enricher_for=writable_enricher, workers=2
    )
    assert (scored, backlog) == (other.count_contacts(CRM), len(written))
    assert sorted(other.pending_write_ids(CRM)) == written
    assert stored_scores(other) == stored_scores(demo.store)
    other.close()


def test_range_reads_leave_out_archived_and_merged_contacts(tmp_path: Path) -> None:
    store = filled_store(tmp_path / "s.db", 6, archived=1)
    ids = sorted(c.id for c in store.iter_contacts(CRM))
    store.merge_contacts(CRM, ids[0], ids[1], NOW + timedelta(minutes=1))
    got = [c.id for c, _ in store.iter_contacts_with_event_rows(CRM)]
    assert got == ids[1:]
    assert all(isinstance(c, Contact) for c, _ in store.iter_contacts_with_event_rows(CRM))
    store.close()


def test_cli_rescore_with_workers_previews_and_writes_what_one_process_would(
    demo: Harness, tmp_path: Path, two_workers: None
) -> None:
    assert demo.pipeline.sync().status == "ok"
    path = str(model_file(tmp_path, "t80", THRESHOLD_80))
    state = str(tmp_path / "state.db")

    def would_update(*extra: str) -> int:
        res = CliRunner().invoke(
            cli, ["--state", state, "rescore", "--dry-run", "--model", path, *extra]
        )
        assert res.exit_code == 0, res.output
        m = re.search(r"Would update (\d+) contact", res.output)
        assert m is not None, res.output
        return int(m.group(1))

    expected = would_update("--workers", "1")
    assert expected > 0
    assert would_update("--workers", "2") == expected
    demo.sb.clear_log()
    env = {
        "LEADSCORE_HUBSPOT_TOKEN": demo.sb.token,
        "LEADSCORE_HUBSPOT_BASE_URL": demo.sb.url,
        "LEADSCORE_RESCORE_WORKERS": "2",
    }
    res = CliRunner().invoke(cli, ["--state", state, "rescore", "--model", path], env=env)
    assert res.exit_code == 0, res.output
    assert f"wrote {expected} contact(s) (the preview said {expected})" in res.output
    assert len(demo.written_ids()) == len(set(demo.written_ids())) == expected
    bad = CliRunner().invoke(cli, ["--state", state, "rescore", "--dry-run", "--workers", "0"])
    assert bad.exit_code == 2
    assert "--workers" in bad.output


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_hears_every_contact_once(tmp_path: Path, two_workers: None, workers: int) -> None:
    """What the jobs `tick` reaches the caller's callback, from this process or the workers',
    and adds up to the contacts done: the preview's and the recompute's progress bars."""
    store = filled_store(tmp_path / "s.db", 60, archived=5)
    model = changed_model(tmp_path, "p15", PRODUCT_15, THRESHOLD_80)
    heard: list[int] = []
    preview = preview_rescore(store, CRM, model, None, NOW, workers=workers, progress=heard.append)
    assert preview.contacts == 55 and sum(heard) == 55 and all(n > 0 for n in heard)
    heard.clear()
    scored, _ = recompute_all(store, CRM, model, NOW, workers=workers, progress=heard.append)
    assert scored == sum(heard) == 55
    assert parallel._TICK is None  # nobody listens once it is over
    store.close()


def test_a_worker_killed_mid_job_fails_the_run_instead_of_hanging(
    tmp_path: Path, two_workers: None
) -> None:
    """Progress goes through shared memory without a lock: a worker that dies (the OOM
    killer, SIGKILL) leaves nothing held, and the caller gets an error at once."""
    store = filled_store(tmp_path / "s.db", 40)

    def dies_on_second(st: StateStore, lo: str, hi: str) -> int:
        parallel.tick(3)
        if lo:
            os.kill(os.getpid(), signal.SIGKILL)
        return 1

    heard: list[int] = []
    with pytest.raises(BrokenProcessPool):
        by_id_range(store, CRM, dies_on_second, 2, progress=heard.append)
    assert sum(heard) <= 6
    store.close()


def test_the_progress_bar_shows_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    from connector.ops.common import contacts_progress

    with contacts_progress("Previewing model v2: 5 contacts", 5) as advance:
        advance(3)
    assert capsys.readouterr().err == ""  # logs and pipes get the summary lines alone
    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    with contacts_progress("Previewing model v2: 5 contacts", 5) as advance:
        advance(3)
        drawn = capsys.readouterr().err
    assert "Previewing model v2: 5 contacts" in drawn and "3/5" in drawn
