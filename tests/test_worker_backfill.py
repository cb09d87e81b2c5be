"""`leadscore backfill`: interrupted anywhere and rerun, it ends in exactly the state of an
uninterrupted backfill, writes nothing twice, and never moves the live cursors."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.errors import ConfigError, StopRunError
from connector.sandbox.demo_portal import build_portal
from connector.worker.backfill import job_name, run_backfill

from .conftest import NOW, Harness, make_harness

SINCE = NOW - timedelta(days=400)
LIVE = {
    "contacts": json.dumps({"since": "2026-10-31T00:00:00.000Z", "position": None}),
    "events:events": json.dumps({"position": None, "high_water": "2026-10-31T00:00:00.000Z"}),
    "events:email": json.dumps({"position": None, "high_water": "2026-10-31T00:00:00.000Z"}),
}


@pytest.fixture(scope="module")
def portal() -> dict[str, Any]:
    return build_portal(240, events_per_contact=2, seed=11, email_events_per_contact=1)


def harness(tmp_path: Path, name: str, portal: dict[str, Any]) -> Iterator[Harness]:
    (tmp_path / name).mkdir()
    for h in make_harness(tmp_path / name, json.loads(json.dumps(portal))):
        h.adapter.page_size = 50  # 5 contact pages
        h.adapter.event_page_size = 100
        for stream, value in LIVE.items():  # the live sync has been running for a while
            h.store.set_cursor("hubspot", stream, value)
        yield h


def cursors(h: Harness) -> dict[str, str | None]:
    return {s: h.store.get_cursor("hubspot", s) for s in LIVE}


def state(h: Harness) -> dict[str, Any]:
    contacts = sorted(h.store.iter_contacts("hubspot", include_inactive=True), key=lambda c: c.id)
    ids = [c.id for c in contacts]
    events = sorted(
        (e.source, e.source_id, e.contact_id, e.type, e.occurred_at.isoformat())
        for cid in ids
        for e in h.store.events_for("hubspot", cid)
    )
    return {
        "contacts": contacts,
        "events": events,
        "scores": sorted(h.store.iter_scores("hubspot"), key=lambda s: s.contact_id),
        "written": h.store.get_written_many("hubspot", ids),
        "pending": h.store.pending_write_ids("hubspot"),
        "cursors": cursors(h),
        "dead_letters": h.store.count_open_dead_letters("hubspot"),
    }


class Boom(RuntimeError):
    pass


def interrupt(h: Harness, where: str) -> None:
    """Make the next backfill die (or be stopped, like Ctrl-C) at `where`."""
    p = h.pipeline
    count = [0]
    if where == "contacts page 3":
        real_c = p.save_contact_page

        def save_contact(page: Any, summary: Any) -> set[str]:
            count[0] += 1
            if count[0] == 3:  # inside the page's transaction: rolled back with the job update
                raise Boom(where)
            return real_c(page, summary)

        p.save_contact_page = save_contact  # type: ignore[method-assign]
    elif where == "events page 2":
        real_e = p.save_event_page

        def save_event(page: Any, summary: Any) -> set[str]:
            count[0] += 1
            if count[0] == 2:
                raise Boom(where)
            return real_e(page, summary)

        p.save_event_page = save_event  # type: ignore[method-assign]
    elif where == "second write batch":
        real_w = h.adapter.write

        def write(writes: Any) -> Any:
            count[0] += 1
            if count[0] == 2:
                raise Boom(where)
            return real_w(writes)

        h.adapter.write = write  # type: ignore[method-assign]
    elif where == "ctrl-c after 2 pages":

        def checkpoint(at: str) -> None:
            if at == "page":
                count[0] += 1
                if count[0] == 2:
                    raise StopRunError("interrupted (SIGINT)")

        p.checkpoint = checkpoint
    else:  # pragma: no cover
        raise AssertionError(where)


def restore(h: Harness) -> None:
    for name in ("save_contact_page", "save_event_page"):
        h.pipeline.__dict__.pop(name, None)
    h.adapter.__dict__.pop("write", None)
    h.pipeline.checkpoint = None


@pytest.mark.parametrize(
    "where", ["contacts page 3", "events page 2", "second write batch", "ctrl-c after 2 pages"]
)
def test_an_interrupted_backfill_resumes_to_the_state_of_an_uninterrupted_one(
    tmp_path: Path, portal: dict[str, Any], where: str
) -> None:
    for ref in harness(tmp_path, "reference", portal):
        done = run_backfill(ref.pipeline, SINCE, NOW)
        assert done.summary.status == "ok", done.summary.message
        expected = state(ref)
        expected_writes = Counter(ref.written_ids())
        expected_job = ref.store.get_job(job_name("hubspot"))
    assert expected["cursors"] == {k: v for k, v in LIVE.items()}  # never moved
    assert len(expected["contacts"]) == 240 and len(expected["events"]) >= 480
    assert expected["pending"] == [] and set(expected_writes.values()) == {1}

    for h in harness(tmp_path, "interrupted", portal):
        interrupt(h, where)
        if where.startswith("ctrl-c"):
            stopped = run_backfill(h.pipeline, SINCE, NOW)
            assert stopped.summary.status == "stopped"
        else:
            with pytest.raises(Boom):
                run_backfill(h.pipeline, SINCE, NOW)
            last = h.store.last_runs("hubspot", 1)[0]
            assert (last.kind, last.status) == ("backfill", "failed")
        job = h.store.get_job(job_name("hubspot"))
        assert job is not None and job["stage"] != "done"
        assert cursors(h) == LIVE  # the live cursors are untouched mid-way too
        if where == "contacts page 3":
            assert (job["stage"], job["pages"]) == ("contacts", 2)
            stored = sorted(int(c.id) for c in h.store.iter_contacts("hubspot"))
            assert len(stored) == 100 and job["position"] == str(stored[-1])
        restore(h)
        resumed = run_backfill(h.pipeline, SINCE, NOW)
        assert resumed.resumed
        assert resumed.summary.status == "ok", resumed.summary.message
        assert state(h) == expected
        assert Counter(h.written_ids()) == expected_writes  # nothing written twice
        job = h.store.get_job(job_name("hubspot"))
        assert job is not None and expected_job is not None
        assert job["stage"] == "done"
        assert (job["pages"], job["contacts"], job["events"]) == (
            expected_job["pages"],
            expected_job["contacts"],
            expected_job["events"],
        )


def test_an_unfinished_backfill_of_another_window_needs_restart(
    tmp_path: Path, portal: dict[str, Any]
) -> None:
    for h in harness(tmp_path, "h", portal):
        interrupt(h, "ctrl-c after 2 pages")
        assert run_backfill(h.pipeline, SINCE, NOW).summary.status == "stopped"
        restore(h)
        with pytest.raises(ConfigError, match="--restart"):
            run_backfill(h.pipeline, SINCE + timedelta(days=1), NOW)
        fresh = run_backfill(h.pipeline, SINCE + timedelta(days=1), NOW, restart=True)
        assert fresh.summary.status == "ok" and not fresh.resumed
        with pytest.raises(ConfigError, match="before"):
            run_backfill(h.pipeline, NOW, NOW)


def test_backfill_command_shows_progress_and_resumes(
    tmp_path: Path, portal: dict[str, Any], no_log_handler: None
) -> None:
    for h in harness(tmp_path, "cli", portal):
        env = {
            "LEADSCORE_ENV_FILE": str(tmp_path / "none.env"),
            "LEADSCORE_HUBSPOT_BASE_URL": h.sb.url,
            "LEADSCORE_HUBSPOT_TOKEN": h.sb.token,
            "LEADSCORE_STATE_PATH": str(tmp_path / "cli" / "state.db"),
            "LEADSCORE_HUBSPOT_SEARCH_PER_SECOND": "1000",
            "LEADSCORE_HUBSPOT_SEARCH_PAGE_SIZE": "50",
        }
        # an unfinished backfill of this window, as Ctrl-C leaves it
        interrupt(h, "ctrl-c after 2 pages")
        assert run_backfill(h.pipeline, SINCE, NOW).summary.status == "stopped"
        restore(h)
        args = ["backfill", "--since", "2025-09-27T12:00:00Z", "--until", "2026-11-01T12:00:00Z"]
        result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "Resuming backfill" in result.output
        assert "contacts" in result.output and "page(s)" in result.output
        assert "Resuming backfill 2025-09-27 12:00 UTC → 2026-11-01 12:00 UTC" in result.output
        assert "at stage contacts (2 page(s) already committed)" in result.output
        assert "240/240" in result.output and "5 page(s)" in result.output
        assert "done: 7 page(s), 240 contact(s)" in result.output
        assert "live cursors untouched" in result.output
        assert cursors(h) == LIVE
        assert len(set(h.written_ids())) == 240
        other = CliRunner().invoke(
            cli, ["backfill", "--since", "not a date"], env=env, catch_exceptions=False
        )
        assert other.exit_code == 2 and "--since" in other.output
