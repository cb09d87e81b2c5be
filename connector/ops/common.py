"""Helpers shared by the operator commands: settings and the state DB from the click context,
an enricher that never writes, rescoring stored contacts, and small formatting."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, NamedTuple, NoReturn

import click

from connector.enrich.cache import CacheEntry, CompanyCache
from connector.errors import ConnectorError
from connector.progress import contacts_progress as contacts_progress  # re-exported
from connector.scoring import score_rows_many
from connector.scoring.engine import keeping_hit_times
from connector.state.store import LAST_ID, StateStore
from connector.types import Contact, Enrichment, Reason, ScoreResult
from connector.types import shown_signed as signed

if TYPE_CHECKING:
    from rich.console import Console

    from connector.model.loader import LoadedModel
    from connector.pipeline import Enricher
    from connector.settings import Settings

SCORE_BATCH = 500
# a full rescore reads and scores its contacts this many at a time, each batch a read of its
# own, and saves them SCORE_BATCH at a time: the rows of a large read were mostly out of the
# CPU's caches by the time they were scored (measured on a 1M-contact DB, compiled, one
# process: 100,000 contacts by id range in 4.6-4.8 s of CPU read 20 or 50 at a time against
# 5.2-5.5 s read 1,000 at a time; the members of 5,000 accounts, 50,000 contacts by id, in
# 5.5-5.6 s read 10-20 at a time, 5.8 s at 75, 6.2-6.4 s at 150-300 and 6.3-6.6 s read a
# batch of whole accounts, 500+, at once)
READ_BATCH = 20


# ------------------------------------------------------------------------ enrichment


class ReadOnlyCompanyCache:
    """The state DB's enrichment cache for reading; new answers stay in memory, so an analysis
    (dry run, simulation) never writes to the DB."""

    __slots__ = ("_base", "_mem")

    def __init__(self, base: CompanyCache) -> None:
        self._base = base
        self._mem: dict[str, CacheEntry] = {}

    def get(self, domain: str) -> CacheEntry | None:
        return self._mem.get(domain.lower()) or self._base.get(domain)

    def put(self, entry: CacheEntry) -> None:
        self._mem[entry.domain.lower()] = entry


def analysis_enricher(settings: Settings, store: StateStore) -> Enricher | None:
    """The enricher `connector.app` builds, over a read-only view of the state DB's cache."""
    try:
        from connector.enrich.enricher import build_enricher
    except ImportError:  # pragma: no cover - enrichment not in this build
        return None
    return build_enricher(settings, cache=ReadOnlyCompanyCache(store.company_cache))


# ------------------------------------------------------------------------ rescoring


def rescore_stored(
    store: StateStore,
    crm: str,
    models: Sequence[LoadedModel],
    enricher: Enricher | None,
    now: datetime,
    *,
    batch: int = SCORE_BATCH,
    after: str = "",
    upto: str = LAST_ID,
    contact_ids: Sequence[str] | None = None,
) -> Iterator[Rescored]:
    """Every live stored contact (with an id in `(after, upto]`, or of `contact_ids`) scored
    with its stored events and enrichment with each model (`score_rows_many`: one walk over a
    contact's events for all), as of `now` (exactly what a sync would compute). Streamed in
    batches of `batch` contacts, in id order, each batch one read of the state DB (a full
    rescore's are small, `READ_BATCH`: their events are scored while the rows just read are
    still in the CPU's caches); writes nothing."""
    pairs = store.iter_contacts_with_event_rows(
        crm, contact_ids, batch=batch, after=after, upto=upto
    )
    while True:
        chunk = list(islice(pairs, batch))
        if not chunk:
            return
        found: dict[str, Enrichment] = {}
        if enricher is not None:
            emails = [c.email for c, _ in chunk if c.email]
            found = {k.lower(): v for k, v in enricher.enrich_many(emails, now).items()}
        for contact, events in chunk:
            enrichment = found.get((contact.email or "").lower())
            results = score_rows_many(contact, events, enrichment, models, now)
            yield Rescored(contact, enrichment, results)


def with_hit_times(
    models: Sequence[LoadedModel], rescored: Iterator[Rescored]
) -> Iterator[Rescored]:
    """`rescored`, the results of `models` carrying each rule reason's event times (what
    account scoring reads of a member: `scoring.accounts.member_part`, `scored_hits`), from
    the times the scorer parsed already."""
    with ExitStack() as keep:
        for model in models:
            keep.enter_context(keeping_hit_times(model))
        yield from rescored


class Rescored(NamedTuple):
    contact: Contact
    enrichment: Enrichment | None
    results: tuple[ScoreResult, ...]


# ------------------------------------------------------------------------ CLI plumbing


def settings_from(ctx: click.Context, **more: object) -> Settings:
    """Settings with the global `--crm`/`--state` options (exits 2 on a bad configuration)."""
    from connector.cli import _settings

    return _settings(ctx, **more)


def load_model_or_exit(path: str) -> LoadedModel:
    from connector.cli import _load_model_or_exit

    return _load_model_or_exit(path)


def console() -> Console:
    from connector.cli import _console

    return _console()


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def refuse_beside_a_run_worker(store: StateStore, then: str) -> None:
    """Exit 6 (as for a locked DB) when a `leadscore run` worker uses this state DB: a command
    that rewrites what the worker reads and writes (`rescore`, `optimize`) waits for it to
    stop. `then`: what to do once it is stopped ("stop it, {then}")."""
    holder = store.run_lease_holder()
    if holder is None:
        return
    fail(
        f"a `leadscore run` worker (pid {holder['pid']} on {holder['host']}) is using "
        f"{store.path}; stop it, {then}",
        6,
    )


def open_existing_store(settings: Settings) -> StateStore:
    """The state DB, which must exist already (these commands never create one)."""
    path = settings.state_path
    if not path.exists():
        from connector.settings import state_path_label

        fail(
            f"no state DB at {state_path_label(path)}; run `leadscore sync` first "
            "(or pass --state PATH)"
        )
    try:
        return StateStore.open(path)
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)


# ------------------------------------------------------------------------ formatting


def pct(x: float | None) -> str:
    """A rate for people: 33%, 4.5%, — when there is nothing to divide by."""
    if x is None:
        return "—"
    if 0 < x < 0.1:
        return f"{x * 100:.1f}%"
    return f"{x * 100:.0f}%"


def reason_line(r: Reason) -> str:
    """One reason as a rep reads it: `+25 pricing page twice in 7 days`, `fit +30 decision-making
    title`, `fit: competitor domain`, `grade B: manager title`."""
    if r.rule in ("grade", "fit_base"):
        return r.text
    if r.kind == "fit":
        if r.points == 0:
            return f"fit: {r.text}"
        points = signed(r.points)  # the engine's profile reasons start with their points
        return f"fit {r.text}" if r.text.startswith(points + " ") else f"fit {points} {r.text}"
    return f"{signed(r.points)} {r.text}"


def iso_min(dt: datetime | None) -> str:
    return "—" if dt is None else dt.strftime("%Y-%m-%d %H:%M")
